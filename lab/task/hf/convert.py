"""A Hub dataset or a local CSV, TSV, JSONL or Parquet file turned into one split of the `hf` kind's JSONL, through
`datasets`: the shape's text fields taken from the columns the person names, labels mapped to 0 and 1, every row
then checked by the same validator that `lab init` runs (lab.task.hf.jsonl), and the file written whole or not at all.
"""
from __future__ import annotations

import json
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

from lab.task.hf.jsonl import SHAPES, DatasetError, read_rows

LOCAL_BUILDERS = {".csv": ("csv", {}), ".tsv": ("csv", {"sep": "\t"}), ".jsonl": ("json", {}), ".json": ("json", {}),
                  ".parquet": ("parquet", {})}
# Two-valued label columns that name their positive class themselves (compared lower-cased, as text)
KNOWN_PAIRS = [("0", "1"), ("false", "true"), ("no", "yes"), ("negative", "positive"), ("neg", "pos"),
               ("incorrect", "correct"), ("wrong", "right"), ("bad", "good")]


@dataclass(frozen=True)
class Converted:
    path: Path
    rows: int
    positives: int
    label_map: dict[str, int]     # each label value as written in the source -> 0 or 1


def load_table(source: str, split: str = "train", subset: str | None = None) -> tuple[list[dict], list[str]]:
    """The rows and column names of one split: a local file read by its kind, or a Hub dataset (from the local cache
    when offline). `split` takes `datasets`' slices too: "train[:500]", "train[500:1500]"."""
    import datasets

    datasets.disable_progress_bars()
    path = Path(source).expanduser()
    if path.suffix.lower() in LOCAL_BUILDERS or path.exists():
        if not path.is_file():
            raise DatasetError(f"{source}: no such file (expected a CSV, TSV, JSONL or Parquet file, or a Hub dataset)")
        if path.suffix.lower() not in LOCAL_BUILDERS:
            raise DatasetError(f"{source}: unknown kind of file {path.suffix!r}; expected one of "
                               f"{', '.join(LOCAL_BUILDERS)}")
        builder, options = LOCAL_BUILDERS[path.suffix.lower()]
        # a cache of its own, removed after: a local file is read once, and the person's Hub cache stays as it was
        with tempfile.TemporaryDirectory(prefix="lab-data-") as cache:
            try:
                table = datasets.load_dataset(builder, data_files=str(path), split=split, cache_dir=cache, **options)
                return table.with_format(None).to_list(), table.column_names
            except (ValueError, KeyError) as exc:   # a split that is not there (pyarrow's parse errors are ValueErrors)
                raise DatasetError(f"{source}: {_first_line(exc)}") from None
            except datasets.exceptions.DatasetGenerationError as exc:
                cause = exc.__cause__ or exc
                raise DatasetError(f"{source}: cannot be read as {builder} ({_first_line(cause)})") from None
    try:
        table = datasets.load_dataset(source, subset, split=split)
    except ConnectionError as exc:
        raise DatasetError(f"{source}: not a local file, and not on the Hub or in the local cache ({_first_line(exc)}); "
                           f"fetch it once with `hf download --repo-type dataset {source}` on a machine with network "
                           "access") from None
    except (ValueError, FileNotFoundError) as exc:
        raise DatasetError(f"{source}: {_first_line(exc)}") from None
    return table.with_format(None).to_list(), table.column_names


def convert(rows: list[dict], columns: list[str], out: Path, shape: str, split: str = "train",
            text_columns: dict[str, str] | None = None, label_column: str = "label", id_column: str | None = None,
            positive: str | None = None, source: str = "the source") -> Converted:
    """Write `rows` (dicts of a table with `columns`) as `shape`'s JSONL at `out`; DatasetError with one line on the
    first problem, and then nothing is written."""
    if shape not in SHAPES:
        raise DatasetError(f'unknown dataset shape "{shape}"; expected one of {", ".join(SHAPES)}')
    fields = _field_columns(shape, columns, text_columns or {}, source)
    if label_column not in columns:
        raise DatasetError(f"{source}: no label column {label_column!r} (columns: {', '.join(columns)}); "
                           "name it with --label-column")
    if id_column is not None and id_column not in columns:
        raise DatasetError(f"{source}: no id column {id_column!r} (columns: {', '.join(columns)})")
    if id_column is None and "id" in columns:
        id_column = "id"
    if not rows:
        raise DatasetError(f"{source}: no rows in this split")
    label_map = _label_map([row[label_column] for row in rows], positive, label_column, source)
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    handle, staging = tempfile.mkstemp(prefix=f".{out.name}.", suffix=".part", dir=out.parent)
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as file:
            for row in rows:
                line = {"id": _id(row[id_column])} if id_column else {}
                line.update({field: row[column] for field, column in fields.items()})
                line["label"] = label_map[_key(row[label_column])]
                file.write(json.dumps(line, ensure_ascii=False) + "\n")
        try:
            checked = read_rows(Path(staging), shape, split)
        except DatasetError as exc:     # the validator's own line, about the source's row rather than the staging file
            raise DatasetError(str(exc).replace(f"{staging} line ", f"{source} row ")) from None
        os.chmod(staging, 0o644)
        os.replace(staging, out)
    except BaseException:
        Path(staging).unlink(missing_ok=True)
        raise
    return Converted(out, len(checked), sum(r.label for r in checked), label_map)


def _field_columns(shape: str, columns: list[str], given: dict[str, str], source: str) -> dict[str, str]:
    """Each of the shape's text fields -> the column it comes from (a column of the field's own name by default)."""
    fields = SHAPES[shape]
    unknown = sorted(set(given) - set(fields))
    if unknown:
        raise DatasetError(f"{shape} rows have no field {unknown[0]!r}; their text fields are {', '.join(fields)}")
    chosen = {field: given.get(field, field) for field in fields}
    for field, column in chosen.items():
        if column not in columns:
            how = f"column {column!r} is not in {source}" if field in given else f"{source} has no column {field!r}"
            raise DatasetError(f"{how} (columns: {', '.join(columns)}); {shape} rows need {', '.join(fields)}: "
                               f"name each one's column with --text-column {field}=COLUMN")
    return chosen


def _key(value) -> str:
    """A label value as text, the way a person would write it on the command line."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _label_map(values: list, positive: str | None, column: str, source: str) -> dict[str, int]:
    missing = next((i for i, v in enumerate(values, start=1) if v is None), None)
    if missing is not None:
        raise DatasetError(f"{source} row {missing}: the label ({column!r}) is empty; expected one of two classes")
    classes = sorted(dict.fromkeys(_key(v) for v in values))
    if len(classes) > 2:
        shown = ", ".join(classes[:5]) + (", ..." if len(classes) > 5 else "")
        raise DatasetError(f"{source}: the label column {column!r} has {len(classes)} values ({shown}); "
                           "expected two classes")
    if positive is not None:
        if positive not in classes:
            raise DatasetError(f"--positive {positive!r} is not a value of the label column {column!r} "
                               f"(values: {', '.join(classes)})")
        return {value: int(value == positive) for value in classes}
    lowered = {value.lower(): value for value in classes}
    for negative_word, positive_word in KNOWN_PAIRS:
        if set(lowered) <= {negative_word, positive_word}:
            return {value: int(value.lower() == positive_word) for value in classes}
    raise DatasetError(f"{source}: the label column {column!r} has values {', '.join(classes)}; say which one is "
                       "label 1 with --positive VALUE")


def _id(value) -> str | int | None:
    """An id as the validator takes it (a string or an integer); a missing one stays null, for it to name."""
    return value if value is None or (isinstance(value, int) and not isinstance(value, bool)) else str(value)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    return text.splitlines()[0]
