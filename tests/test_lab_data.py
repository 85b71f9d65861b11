"""`lab data`: a local CSV, JSONL or Parquet file (or a Hub dataset) made into one JSONL split of the hf kind,
checked by the validator `lab init` runs, written whole or not at all; bad input is one line and exit 2."""
from __future__ import annotations

import json
import os
import subprocess

import pytest

from conftest import LAB, run_lab
from lab.task.hf.convert import convert, load_table
from lab.task.hf.jsonl import DatasetError, read_rows


def lines(path):
    return [json.loads(line) for line in path.read_text().splitlines()]


def the_error(result) -> str:
    assert result.returncode == 2, result.stdout + result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("lab: error: ")]
    assert len(errors) == 1, result.stderr
    return errors[0]


def test_a_csv_with_named_classes_becomes_binary_rows(tmp_path):
    (tmp_path / "reviews.csv").write_text('text,verdict,sentiment\n"great, truly",yes,pos\nawful,no,neg\nfine,yes,pos\n')
    result = run_lab("data", "reviews.csv", "data/reviews/train.jsonl", "--text-column", "question=text",
                     "--text-column", "choice=verdict", "--label-column", "sentiment", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    out = tmp_path / "data" / "reviews" / "train.jsonl"
    assert lines(out) == [{"question": "great, truly", "choice": "yes", "label": 1},
                          {"question": "awful", "choice": "no", "label": 0},
                          {"question": "fine", "choice": "yes", "label": 1}]
    assert "wrote 3 binary rows" in result.stdout and "'neg' -> 0, 'pos' -> 1" in result.stdout
    assert [r.id for r in read_rows(out, "binary", "train")] == ["train-1", "train-2", "train-3"]
    assert sorted(os.listdir(out.parent)) == ["train.jsonl"]        # no staging file left behind


def test_a_jsonl_of_the_pairwise_shape_keeps_its_ids_and_boolean_labels(tmp_path):
    rows = [{"id": f"p{i}", "prompt": "help me", "first": "no", "second": "sure", "label": i % 2 == 0, "extra": i}
            for i in range(4)]
    (tmp_path / "prefs.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    result = run_lab("data", "prefs.jsonl", "test.jsonl", "--shape", "pairwise", "--as-split", "test", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    got = lines(tmp_path / "test.jsonl")
    assert [r["id"] for r in got] == ["p0", "p1", "p2", "p3"] and [r["label"] for r in got] == [1, 0, 1, 0]
    assert "extra" not in got[0]


def test_a_parquet_split_is_sliced_and_its_positive_class_named(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pa.table({"question": ["2+2?", "3+3?", "capital of France?", "5+5?"],
                      "answer": ["4", "7", "Paris", "11"], "grade": ["right", "off", "right", "off"]})
    pq.write_table(table, tmp_path / "math.parquet")
    result = run_lab("data", "math.parquet", "labelled.jsonl", "--split", "train[:3]", "--text-column", "choice=answer",
                     "--label-column", "grade", "--positive", "right", "--as-split", "labelled", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert [(r["choice"], r["label"]) for r in lines(tmp_path / "labelled.jsonl")] == [("4", 1), ("7", 0), ("Paris", 1)]


def test_an_empty_text_is_the_validators_line_about_the_source_row_and_nothing_is_written(tmp_path):
    (tmp_path / "bad.csv").write_text("question,choice,label\nname a fruit ?,apple,1\nname a fruit ?,   ,0\n")
    (tmp_path / "out.jsonl").write_text("what was there before\n")
    error = the_error(run_lab("data", "bad.csv", "out.jsonl", cwd=tmp_path))
    assert error == 'lab: error: bad.csv row 2: field "choice" is empty; expected a non-empty string'
    assert (tmp_path / "out.jsonl").read_text() == "what was there before\n"
    assert sorted(os.listdir(tmp_path)) == ["bad.csv", "out.jsonl"]


@pytest.mark.parametrize("args, message", [
    (["-t", "choice=answer", "--label-column", "stars"], "bad.csv: the label column 'stars' has 3 values (1, 2, 3); expected two classes"),
    (["-t", "choice=answer", "--label-column", "mood"], "bad.csv: the label column 'mood' has values happy, sad; say which one is label 1 "
                                 "with --positive VALUE"),
    (["-t", "choice=answer", "--label-column", "mood", "--positive", "glad"], "--positive 'glad' is not a value of the label column 'mood'"),
    (["-t", "choice=answer", "--label-column", "nope"], "bad.csv: no label column 'nope' (columns: question, answer, stars, mood)"),
    (["--label-column", "mood", "--positive", "happy"], "bad.csv has no column 'choice' (columns: question, answer, "
                                                        "stars, mood); binary rows need question, choice: name each "
                                                        "one's column with --text-column choice=COLUMN"),
])
def test_bad_columns_and_labels_are_one_line(tmp_path, args, message):
    (tmp_path / "bad.csv").write_text("question,answer,stars,mood\na,b,1,happy\nc,d,2,sad\ne,f,3,happy\n")
    assert message in the_error(run_lab("data", "bad.csv", "out.jsonl", *args, cwd=tmp_path))
    assert not (tmp_path / "out.jsonl").exists()


def test_a_missing_file_and_an_unknown_kind_are_one_line(tmp_path):
    assert "nothere.csv: no such file" in the_error(run_lab("data", "nothere.csv", "o.jsonl", cwd=tmp_path))
    (tmp_path / "table.xlsx").write_text("not read\n")
    assert "unknown kind of file '.xlsx'" in the_error(run_lab("data", "table.xlsx", "o.jsonl", cwd=tmp_path))


def test_a_hub_dataset_missing_offline_says_how_to_fetch_it(tmp_path):
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "HF_HOME": str(tmp_path / "hf")}
    result = subprocess.run([*LAB, "data", "nobody/no-such-dataset", "o.jsonl"], cwd=tmp_path, env=env,
                            capture_output=True, text=True, timeout=300)
    error = the_error(result)
    assert "nobody/no-such-dataset: not a local file, and not on the Hub or in the local cache" in error
    assert "hf download --repo-type dataset nobody/no-such-dataset" in error


def test_what_is_written_is_what_lab_init_reads(tmp_path):
    """In process, on the datasets path: a table's integer classes (as a ClassLabel column gives them)."""
    rows = [{"question": f"q{i}", "choice": f"c{i}", "label": i % 2, "id": 100 + i} for i in range(5)]
    (tmp_path / "t.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    table, columns = load_table(str(tmp_path / "t.jsonl"))
    done = convert(table, columns, tmp_path / "out.jsonl", "binary", source="t.jsonl")
    assert (done.rows, done.positives, done.label_map) == (5, 2, {"0": 0, "1": 1})
    assert [r.id for r in read_rows(done.path, "binary", "train")] == ["100", "101", "102", "103", "104"]
    with pytest.raises(DatasetError, match="unknown dataset shape"):
        convert(table, columns, tmp_path / "x.jsonl", "ternary")
