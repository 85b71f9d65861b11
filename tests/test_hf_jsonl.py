"""The hf task kind's JSONL datasets: good files load, and each bad one is refused in one exact line."""
import json
import time

import pytest

from lab.task.hf.jsonl import SHAPES, DatasetError, Row, Splits, agent_row, read_rows, read_splits


def write(path, lines):
    """Lines may be dicts (written as JSON) or raw strings (written as they are, plus a newline)."""
    path.write_text("".join((line if isinstance(line, str) else json.dumps(line)) + "\n" for line in lines),
                    encoding="utf-8")
    return path


def binary(i, label=1, **extra):
    return {"question": f"q{i}?", "choice": f"c{i}", "label": label, **extra}


def pairwise(i, label=0, **extra):
    return {"prompt": f"p{i}", "first": f"a{i}", "second": f"b{i}", "label": label, **extra}


def test_shapes():
    assert SHAPES == {"binary": ("question", "choice"), "pairwise": ("prompt", "first", "second")}


def test_binary_rows_without_ids_get_split_and_line_ids(tmp_path):
    path = write(tmp_path / "train.jsonl", [binary(1, 1, source="web"), "", "   ", binary(2, False)])
    rows = read_rows(path, "binary", "train")
    assert rows == [
        Row(id="train-1", fields={"question": "q1?", "choice": "c1"}, label=1),
        Row(id="train-4", fields={"question": "q2?", "choice": "c2"}, label=0),
    ]
    assert isinstance(rows[1].label, int) and not isinstance(rows[1].label, bool)


def test_pairwise_rows_with_ids_keep_them_and_drop_extra_fields(tmp_path):
    path = write(tmp_path / "test.jsonl", [pairwise(1, 1, id="abc", meta={"x": 1}), pairwise(2, True, id=7)])
    rows = read_rows(path, "pairwise", "test")
    assert rows == [
        Row(id="abc", fields={"prompt": "p1", "first": "a1", "second": "b1"}, label=1),
        Row(id="7", fields={"prompt": "p2", "first": "a2", "second": "b2"}, label=1),
    ]
    assert list(rows[0].fields) == ["prompt", "first", "second"]


def test_a_utf8_bom_and_crlf_line_ends_are_tolerated(tmp_path):
    path = tmp_path / "bom.jsonl"
    path.write_bytes(b"\xef\xbb\xbf" + json.dumps(binary(1, id="é")).encode() + b"\r\n"
                     + json.dumps(binary(2)).encode() + b"\r\n")
    rows = read_rows(path, "binary", "labelled")
    assert [r.id for r in rows] == ["é", "labelled-2"]


def test_agent_row_shows_the_text_and_soft_label_but_never_the_label():
    row = Row(id="x", fields={"question": "q", "choice": "c"}, label=1)
    assert agent_row(row) == {"id": "x", "question": "q", "choice": "c"}
    assert agent_row(row, 0.25) == {"id": "x", "question": "q", "choice": "c", "weak_soft": 0.25}
    assert agent_row(row, 0) == {"id": "x", "question": "q", "choice": "c", "weak_soft": 0.0}


P = "data/chat/train.jsonl"


@pytest.mark.parametrize("shape, lines, message", [
    ("binary", [binary(1), binary(2, 2)], f'{P} line 2: field "label" is 2; expected 0 or 1 (or false/true)'),
    ("binary", [binary(1, 0.0)], f'{P} line 1: field "label" is 0.0; expected 0 or 1 (or false/true)'),
    ("binary", [binary(1, "1")], f'{P} line 1: field "label" is "1"; expected 0 or 1 (or false/true)'),
    ("binary", [binary(1, None)], f'{P} line 1: field "label" is null; expected 0 or 1 (or false/true)'),
    ("binary", [binary(1, [1])], f'{P} line 1: field "label" is a list; expected 0 or 1 (or false/true)'),
    ("binary", ['{"question": "q", "choice": "c", "label": NaN}'],
     f'{P} line 1: field "label" is NaN; expected 0 or 1 (or false/true)'),
    ("pairwise", [pairwise(1), pairwise(2), {"prompt": "p", "first": "a", "label": 1}],
     f'{P} line 3: missing field "second" (pairwise rows need prompt, first, second, label)'),
    ("binary", [{"question": "q", "choice": "c"}],
     f'{P} line 1: missing field "label" (binary rows need question, choice, label)'),
    ("pairwise", [binary(1)], f'{P} line 1: missing field "prompt" (pairwise rows need prompt, first, second, label)'),
    ("binary", ["", '{"question": "q", "choice": "c" "label": 1}'],
     f"{P} line 2: not JSON (Expecting ',' delimiter at column 33)"),
    ("binary", ["[1, 2]"], f"{P} line 1: not a JSON object but a list; binary rows need question, choice, label"),
    ("binary", [binary(1), binary(2), binary(3), {"question": 4, "choice": "c", "label": 1}],
     f'{P} line 4: field "question" is a number; expected a non-empty string'),
    ("binary", [{"question": "q", "choice": "  ", "label": 1}],
     f'{P} line 1: field "choice" is empty; expected a non-empty string'),
    ("pairwise", [{"prompt": "p", "first": None, "second": "b", "label": 1}],
     f'{P} line 1: field "first" is null; expected a non-empty string'),
    ("binary", [binary(1, id="abc"), binary(2, id="abc")], f'{P} line 2: duplicate id "abc" (first on line 1)'),
    ("binary", [binary(1), binary(2, id=3), binary(3, id="3")], f'{P} line 3: duplicate id "3" (first on line 2)'),
    ("binary", [binary(1), binary(2, id="train-1")], f'{P} line 2: duplicate id "train-1" (first on line 1)'),
    ("binary", [binary(1, id=1.5)], f'{P} line 1: field "id" is a number; expected a non-empty string or an integer'),
    ("binary", [binary(1, id=True)], f'{P} line 1: field "id" is a boolean; expected a non-empty string or an integer'),
    ("binary", [binary(1, id="")], f'{P} line 1: field "id" is empty; expected a non-empty string or an integer'),
    ("binary", [], f"{P}: empty; expected at least one row"),
    ("binary", ["", "  "], f"{P}: empty; expected at least one row"),
])
def test_each_bad_file_gives_exactly_one_line(tmp_path, monkeypatch, shape, lines, message):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "data" / "chat").mkdir(parents=True)
    write(tmp_path / P, lines)
    from pathlib import Path
    with pytest.raises(DatasetError) as raised:
        read_rows(Path(P), shape, "train")
    assert str(raised.value) == message
    assert "\n" not in str(raised.value)


def test_text_that_is_not_utf8_names_the_line(tmp_path):
    path = tmp_path / "latin.jsonl"
    path.write_bytes(json.dumps(binary(1)).encode() + b"\n" + b'{"question": "caf\xe9"}\n')
    with pytest.raises(DatasetError) as raised:
        read_rows(path, "binary", "train")
    assert str(raised.value) == f"{path} line 2: not UTF-8 text (byte 18 of the line)"


def test_a_missing_file_is_named(tmp_path):
    with pytest.raises(DatasetError) as raised:
        read_rows(tmp_path / "nope.jsonl", "binary", "test")
    assert str(raised.value) == f"{tmp_path / 'nope.jsonl'}: no such file"


def test_an_unknown_shape_is_refused(tmp_path):
    with pytest.raises(DatasetError) as raised:
        read_rows(write(tmp_path / "t.jsonl", [binary(1)]), "ranking", "test")
    assert str(raised.value) == 'unknown dataset shape "ranking"; expected one of binary, pairwise'


def files(tmp_path, labelled, train, test, shape=binary):
    return {split: write(tmp_path / f"{split}.jsonl", [shape(i, i % 2, **({"id": k} if k else {}))
                                                      for i, k in enumerate(keys)])
            for split, keys in (("labelled", labelled), ("train", train), ("test", test))}


def test_read_splits_reads_all_three(tmp_path):
    splits = read_splits(files(tmp_path, [None, None], [None] * 3, ["t1", "t2"], pairwise), "pairwise")
    assert isinstance(splits, Splits)
    assert [r.id for r in splits.labelled] == ["labelled-1", "labelled-2"]
    assert [r.id for r in splits.train] == ["train-1", "train-2", "train-3"]
    assert [r.id for r in splits.test] == ["t1", "t2"]
    assert [r.label for r in splits.train] == [0, 1, 0]


def test_ids_shared_by_train_and_test_are_a_leak_naming_both_files(tmp_path):
    given = files(tmp_path, [None], ["a", "b", "c", "d"], ["x", "c", "d"])
    with pytest.raises(DatasetError) as raised:
        read_splits(given, "binary")
    assert str(raised.value) == (
        f"{given['train']} line 3 and {given['test']} line 2: "
        'id "c" is in both train and test (2 shared ids in all); test rows must not be in a training split')


def test_ids_shared_by_the_labelled_split_and_test_are_a_leak_too(tmp_path):
    given = files(tmp_path, ["x"], ["a"], ["x"])
    with pytest.raises(DatasetError) as raised:
        read_splits(given, "binary")
    assert str(raised.value) == (
        f"{given['labelled']} line 1 and {given['test']} line 1: "
        'id "x" is in both labelled and test; test rows must not be in a training split')


def test_labelled_and_train_may_share_ids(tmp_path):
    splits = read_splits(files(tmp_path, ["a", "b"], ["a", "b"], ["c"]), "binary")
    assert [r.id for r in splits.train] == ["a", "b"]


def test_a_missing_split_or_file_in_read_splits(tmp_path):
    given = files(tmp_path, [None], [None], [None])
    with pytest.raises(DatasetError) as raised:
        read_splits({"labelled": given["labelled"], "train": given["train"]}, "binary")
    assert str(raised.value) == 'no file given for split "test"; expected labelled, train, test'
    with pytest.raises(DatasetError) as raised:
        read_splits({**given, "dev": given["test"]}, "binary")
    assert str(raised.value) == 'unknown split "dev"; expected labelled, train, test'
    given["test"].unlink()
    with pytest.raises(DatasetError) as raised:
        read_splits(given, "binary")
    assert str(raised.value) == f"{given['test']}: no such file"


def test_fifty_thousand_rows_validate_quickly(tmp_path):
    path = tmp_path / "big.jsonl"
    with path.open("w") as handle:
        for i in range(50_000):
            handle.write(json.dumps(pairwise(i, i % 2, id=f"r{i}", extra="x" * 50)) + "\n")
    start = time.perf_counter()
    rows = read_rows(path, "pairwise", "train")
    elapsed = time.perf_counter() - start
    assert len(rows) == 50_000 and rows[-1].id == "r49999"
    assert elapsed < 5, f"50,000 rows took {elapsed:.2f} s"
