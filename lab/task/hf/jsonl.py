"""Reading a user's JSONL dataset in one of the study's two shapes, checked row by row on load.

binary:   {"question": str, "choice": str, "label": 0|1}       label 1: the choice is a good answer
pairwise: {"prompt": str, "first": str, "second": str, "label": 0|1}   label 1: second is better

An optional "id" (a string or an integer) names a row; without one the id is `<split>-<line>`.
Labels are the integers 0 and 1 or the booleans false and true; nothing else (not 0.0, not "1").
Other fields are allowed and dropped, so agents never see them. Blank lines are skipped and a
UTF-8 byte-order mark is tolerated. The first problem stops the read with a DatasetError of one
line that names the file, the line, the field and what was expected.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from lab.errors import LabError

SHAPES = {"binary": ("question", "choice"), "pairwise": ("prompt", "first", "second")}
SPLITS = ("labelled", "train", "test")
_LABEL_EXPECTED = "expected 0 or 1 (or false/true)"


class DatasetError(LabError):
    """A dataset file is missing, malformed, or leaks test rows into a training split."""


@dataclass(frozen=True)
class Row:
    id: str
    fields: dict[str, str]
    label: int


@dataclass(frozen=True)
class Splits:
    labelled: list[Row]
    train: list[Row]
    test: list[Row]


def read_rows(path: Path, shape: str, split: str) -> list[Row]:
    """Every row of one split's file, validated; DatasetError on the first problem."""
    return _read(path, shape, split)[0]


def read_splits(files: dict[str, Path], shape: str) -> Splits:
    """The labelled, train and test splits; also refuses test ids that appear in a training split."""
    unknown = sorted(set(files) - set(SPLITS))
    if unknown:
        raise DatasetError(f'unknown split "{unknown[0]}"; expected labelled, train, test')
    for split in SPLITS:
        if split not in files:
            raise DatasetError(f'no file given for split "{split}"; expected labelled, train, test')
    read = {split: _read(Path(files[split]), shape, split) for split in SPLITS}
    test_lines = read["test"][1]
    for split in ("train", "labelled"):
        rows, lines = read[split]
        shared = [row.id for row in rows if row.id in test_lines]
        if shared:
            first = shared[0]
            more = f" ({len(shared)} shared ids in all)" if len(shared) > 1 else ""
            raise DatasetError(
                f"{files[split]} line {lines[first]} and {files['test']} line {test_lines[first]}: "
                f'id "{first}" is in both {split} and test{more}; test rows must not be in a training split')
    return Splits(labelled=read["labelled"][0], train=read["train"][0], test=read["test"][0])


def agent_row(row: Row, weak_soft: float | None = None) -> dict:
    """The row as agents see it: id and text fields, plus the teacher's soft label when given; no label."""
    out: dict[str, str | float] = {"id": row.id, **row.fields}
    if weak_soft is not None:
        out["weak_soft"] = float(weak_soft)
    return out


def _read(path: Path, shape: str, split: str) -> tuple[list[Row], dict[str, int]]:
    """The rows and, for each id, the line it came from."""
    if shape not in SHAPES:
        raise DatasetError(f'unknown dataset shape "{shape}"; expected one of {", ".join(SHAPES)}')
    if split not in SPLITS:
        raise DatasetError(f'unknown split "{split}"; expected {", ".join(SPLITS)}')
    names = SHAPES[shape]
    need = f"{shape} rows need {', '.join(names)}, label"
    rows: list[Row] = []
    lines: dict[str, int] = {}
    try:
        handle = path.open("rb")
    except FileNotFoundError:
        raise DatasetError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise DatasetError(f"{path}: is a directory; expected a JSONL file") from None
    except OSError as error:
        raise DatasetError(f"{path}: cannot be read ({error.strerror or error})") from None
    with handle:
        for number, raw in enumerate(handle, start=1):
            def fail(problem: str) -> DatasetError:
                return DatasetError(f"{path} line {number}: {problem}")

            try:
                text = raw.decode("utf-8")
            except UnicodeDecodeError as error:
                raise fail(f"not UTF-8 text (byte {error.start + 1} of the line)") from None
            if number == 1:
                text = text.removeprefix("\ufeff")
            if not text.strip():
                continue
            try:
                obj = json.loads(text)
            except json.JSONDecodeError as error:
                raise fail(f"not JSON ({error.msg} at column {error.colno})") from None
            if not isinstance(obj, dict):
                raise fail(f"not a JSON object but {_kind(obj)}; {need}")
            for name in (*names, "label"):
                if name not in obj:
                    raise fail(f'missing field "{name}" ({need})')
            fields = {}
            for name in names:
                value = obj[name]
                if not isinstance(value, str):
                    raise fail(f'field "{name}" is {_kind(value)}; expected a non-empty string')
                if not value.strip():
                    raise fail(f'field "{name}" is empty; expected a non-empty string')
                fields[name] = value
            label = obj["label"]
            if isinstance(label, bool):
                label = int(label)
            elif type(label) is not int or label not in (0, 1):
                raise fail(f'field "label" is {_show(label)}; {_LABEL_EXPECTED}')
            if "id" in obj:
                key = obj["id"]
                if isinstance(key, bool) or not isinstance(key, (str, int)):
                    raise fail(f'field "id" is {_kind(key)}; expected a non-empty string or an integer')
                key = str(key)
                if not key.strip():
                    raise fail('field "id" is empty; expected a non-empty string or an integer')
            else:
                key = f"{split}-{number}"
            if key in lines:
                raise fail(f'duplicate id "{key}" (first on line {lines[key]})')
            lines[key] = number
            rows.append(Row(id=key, fields=fields, label=label))
    if not rows:
        raise DatasetError(f"{path}: empty; expected at least one row")
    return rows, lines


def _kind(value) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "a list"
    return "an object"


def _show(value) -> str:
    """A JSON value as it was written, short enough for one line."""
    if isinstance(value, (list, dict)):
        return _kind(value)
    shown = json.dumps(value, ensure_ascii=False)
    return shown if len(shown) <= 40 else shown[:37] + "..."
