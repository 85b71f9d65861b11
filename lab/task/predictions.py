"""Reading a method's predictions file under the method contract, and scoring it against labels."""
from __future__ import annotations

import json
import math
from pathlib import Path

from lab import untrusted
from lab.errors import Blocked, MethodRejected, NotFound


def read_predictions(path: Path, expected_ids: list[str], max_bytes: int) -> dict[str, int]:
    """{id: label} for exactly the expected ids, or MethodRejected saying what is wrong and where."""
    # The method made this file: a link to a host file, a FIFO or a device is refused, never followed or read.
    try:
        content = untrusted.read_file(Path(path), max_bytes)
    except NotFound:
        raise MethodRejected("the method wrote no predictions file (expected JSONL at --out)") from None
    except Blocked as exc:
        raise MethodRejected(f"predictions file: {exc}".replace(f"{Path(path).name} is", "it is")) from None
    return parse_predictions(content, expected_ids)


def parse_predictions(content: bytes, expected_ids: list[str]) -> dict[str, int]:
    """{id: label} for exactly the expected ids, from a predictions file's bytes, or MethodRejected."""
    expected = set(expected_ids)
    labels: dict[str, int] = {}
    for number, raw in enumerate(content.split(b"\n"), start=1):
        if not raw.strip():
            continue
        where = f"predictions line {number}"
        try:
            row = json.loads(raw)
        except (json.JSONDecodeError, UnicodeDecodeError):
            raise MethodRejected(f"{where}: not a JSON object: {raw[:60]!r}") from None
        if not isinstance(row, dict) or "id" not in row or "label" not in row:
            raise MethodRejected(f"{where}: expected an object with 'id' and 'label', got {raw[:60]!r}")
        extra = set(row) - {"id", "label", "p1"}
        if extra:
            raise MethodRejected(f"{where}: unexpected keys {sorted(extra)} (allowed: id, label, p1)")
        key, label = row["id"], row["label"]
        if not isinstance(key, str) or key not in expected:
            raise MethodRejected(f"{where}: id {key!r} is not a test id")
        if key in labels:
            raise MethodRejected(f"{where}: id {key!r} is repeated")
        if isinstance(label, bool) or label not in (0, 1):
            raise MethodRejected(f"{where}: label {label!r} is not 0 or 1")
        if "p1" in row:
            p1 = row["p1"]
            if isinstance(p1, bool) or not isinstance(p1, (int, float)) or math.isnan(p1) or not 0 <= p1 <= 1:
                raise MethodRejected(f"{where}: p1 {p1!r} is not a probability in [0, 1]")
        labels[key] = int(label)
    missing = len(expected) - len(labels)
    if missing:
        example = next(i for i in expected_ids if i not in labels)
        raise MethodRejected(f"predictions miss {missing} of {len(expected)} test ids (for example {example!r})")
    return labels


def accuracy(predicted: dict[str, int], truth: dict[str, int]) -> float:
    return sum(predicted[i] == y for i, y in truth.items()) / len(truth)
