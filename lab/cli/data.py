"""Bringing the person's own data: `lab data`."""
from __future__ import annotations

from pathlib import Path

import click

from lab.cli.base import cli, echo


def _mapping(ctx, param, values: tuple[str, ...]) -> dict[str, str]:
    mapped = {}
    for value in values:
        field, sep, column = value.partition("=")
        if not sep or not field or not column:
            raise click.BadParameter(f"{value!r}: expected FIELD=COLUMN, e.g. question=text", ctx, param)
        mapped[field] = column
    return mapped


@cli.command("data")
@click.argument("source")
@click.argument("out", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--shape", type=click.Choice(["binary", "pairwise"]), default="binary", show_default=True,
              help="binary rows {question, choice, label}; pairwise rows {prompt, first, second, label}.")
@click.option("--split", default="train", show_default=True,
              help="The split to read, with datasets' slices: train[:500], test[500:].")
@click.option("--subset", help="A Hub dataset's configuration (subset) name.")
@click.option("--text-column", "-t", "text_columns", multiple=True, callback=_mapping, metavar="FIELD=COLUMN",
              help="The column each text field comes from (repeatable); default: the column of the field's name.")
@click.option("--label-column", default="label", show_default=True, help="The column of the labels (two classes).")
@click.option("--id-column", help="The column of row ids; default: `id` where there is one, else none.")
@click.option("--positive", metavar="VALUE", help="The label value that becomes 1, where the classes do not say.")
@click.option("--as-split", type=click.Choice(["labelled", "train", "test"]), default="train", show_default=True,
              help="The lab split this file is for (names rows without an id: <split>-<line>).")
def data(source: str, out: Path, shape: str, split: str, subset: str | None, text_columns: dict[str, str],
         label_column: str, id_column: str | None, positive: str | None, as_split: str) -> None:
    """Turn a Hub dataset or a local CSV/TSV/JSONL/Parquet file into one JSONL split of the hf kind.

    \b
      lab data google/boolq data/boolq/train.jsonl --split "train[:2000]" --label-column answer \\
          --text-column choice=passage
      lab data prefs.parquet data/chat/test.jsonl --shape pairwise --as-split test
    """
    from lab.task.hf.convert import convert, load_table

    rows, columns = load_table(source, split, subset)
    done = convert(rows, columns, out, shape, as_split, text_columns, label_column, id_column, positive, source)
    mapping = ", ".join(f"{value!r} -> {label}" for value, label in done.label_map.items())
    echo(f"wrote {done.rows} {shape} rows to {done.path} ({done.positives} with label 1; labels {mapping})")
