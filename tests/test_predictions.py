import json

import pytest

from lab.errors import MethodRejected
from lab.task.predictions import accuracy, read_predictions

IDS = ["a", "b", "c"]


def write(tmp_path, lines):
    path = tmp_path / "p.jsonl"
    path.write_text("".join(line if isinstance(line, str) else json.dumps(line) + "\n" for line in lines))
    return path


def test_valid_predictions(tmp_path):
    path = write(tmp_path, [{"id": "a", "label": 1, "p1": 0.9}, {"id": "b", "label": 0}, {"id": "c", "label": 1}])
    labels = read_predictions(path, IDS, 10_000)
    assert labels == {"a": 1, "b": 0, "c": 1}
    assert accuracy(labels, {"a": 1, "b": 1, "c": 1}) == pytest.approx(2 / 3)


@pytest.mark.parametrize("lines, message", [
    ([{"id": "a", "label": 1}, {"id": "b", "label": 0}], "miss 1 of 3 test ids"),
    ([{"id": "a", "label": 1}, {"id": "a", "label": 0}], "line 2: id 'a' is repeated"),
    ([{"id": "z", "label": 1}], "line 1: id 'z' is not a test id"),
    ([{"id": "a", "label": 2}], "line 1: label 2 is not 0 or 1"),
    ([{"id": "a", "label": True}], "label True is not 0 or 1"),
    (['{"id": "a", "label": NaN}\n'], "is not 0 or 1"),
    (['{"id": "a", "label": 1, "p1": NaN}\n'], "p1 nan is not a probability"),
    ([{"id": "a", "label": 1, "p1": 1.5}], "p1 1.5 is not a probability"),
    (["garbage\n"], "line 1: not a JSON object"),
    ([[1, 2]], "expected an object with 'id' and 'label'"),
    ([{"id": "a", "label": 1, "gold": 1}], "unexpected keys ['gold']"),
])
def test_bad_predictions_say_exactly_what_is_wrong(tmp_path, lines, message):
    with pytest.raises(MethodRejected, match=message.replace("[", r"\[").replace("]", r"\]")):
        read_predictions(write(tmp_path, lines), IDS, 10_000)


def test_too_large_a_file_is_refused_before_reading(tmp_path):
    path = write(tmp_path, [{"id": "a", "label": 1}] * 100)
    with pytest.raises(MethodRejected, match="over the limit of 100 bytes"):
        read_predictions(path, IDS, 100)


def test_a_missing_file_is_refused(tmp_path):
    with pytest.raises(MethodRejected, match="no predictions file"):
        read_predictions(tmp_path / "none.jsonl", IDS, 100)
