"""The `hf` task kind end to end on CPU: tiny random-weight models built from a config, tiny JSONL data,
the real `lab init` (weak teacher, views, ceilings), the baselines as submissions with their integrity
checks, and the one-line errors of bad data. Nothing is downloaded (HF_HUB_OFFLINE=1)."""
from __future__ import annotations

import json
import os

import pytest

from conftest import have_bwrap, run_lab
from tiny_hf import (BINARY_LABEL_WORDS, BINARY_TEMPLATE, PAIRWISE_LABEL_WORDS, PAIRWISE_TEMPLATE, all_words,
                     make_tiny_model, tiny_jsonl_datasets)

TOML = """\
[lab]
sandbox = "{sandbox}"

[task]
kind = "hf"
dev = "prefs"
heldout = ["fruit"]
seeds = 2

[task.hf]
strong = "models/strong"
weak = "models/weak"

[task.hf.strong_training]
epochs = 3
lr = 3e-3
batch_size = 16
max_length = 48
lora_r = 4
lora_alpha = 8

[task.hf.weak_training]
epochs = 1
lr = 1e-3
batch_size = 16
max_length = 48
lora_r = 2
lora_alpha = 4

[task.hf.datasets.prefs]
shape = "pairwise"
labelled = "data/pairwise/labelled.jsonl"
train = "data/pairwise/train.jsonl"
test = "data/pairwise/test.jsonl"
template = {pairwise_template}
label_words = {pairwise_words}

[task.hf.datasets.fruit]
shape = "binary"
labelled = "data/binary/labelled.jsonl"
train = "data/binary/train.jsonl"
test = "data/binary/test.jsonl"
template = {binary_template}
label_words = {binary_words}

[scorer]
seeds = 2
check_seeds = 1
timeout_s = 300
memory_mb = 8192
parallel = 2
"""


SANDBOX = "bwrap" if have_bwrap() or os.environ.get("CI") else "none"


@pytest.fixture(scope="module")
def hf_lab(tmp_path_factory):
    os.environ["HF_HUB_OFFLINE"] = "1"
    folder = tmp_path_factory.mktemp("hf")
    make_tiny_model(folder / "models" / "strong", all_words(), seed=0, hidden=32, layers=2)
    make_tiny_model(folder / "models" / "weak", all_words(), seed=1, hidden=16, layers=1)
    tiny_jsonl_datasets(folder / "data", n=48)
    (folder / "lab.toml").write_text(TOML.format(
        sandbox=SANDBOX,
        pairwise_template=json.dumps(PAIRWISE_TEMPLATE), pairwise_words=json.dumps(PAIRWISE_LABEL_WORDS),
        binary_template=json.dumps(BINARY_TEMPLATE), binary_words=json.dumps(BINARY_LABEL_WORDS)))
    result = run_lab("init", cwd=folder)
    assert result.returncode == 0, result.stdout + result.stderr
    return folder, result


def test_init_trains_the_teacher_writes_the_views_and_fixes_the_ceilings(hf_lab):
    folder, result = hf_lab
    assert "prefs" in result.stdout and "fruit" in result.stdout
    view = folder / ".lab" / "data" / "prefs"
    train = [json.loads(line) for line in (view / "train.jsonl").read_text().splitlines()]
    test = [json.loads(line) for line in (view / "test.jsonl").read_text().splitlines()]
    assert len(train) == len(test) == 24                    # the other half of each is the private replica's
    assert set(train[0]) == {"id", "prompt", "first", "second", "weak_soft"}      # no label
    assert set(test[0]) == {"id", "prompt", "first", "second"}
    assert all(0.0 <= r["weak_soft"] <= 1.0 for r in train)
    meta = json.loads((view / "meta.json").read_text())
    assert meta["kind"] == "hf" and meta["shape"] == "pairwise" and meta["label_words"] == PAIRWISE_LABEL_WORDS
    assert meta["strong_model"] == str((folder / "models" / "strong").resolve())
    replica = [json.loads(line) for line in (folder / ".lab" / "private" / "prefs_private" / "view" / "train.jsonl")
               .read_text().splitlines()]
    assert len(replica) == 24 and not {r["id"] for r in replica} & {r["id"] for r in train}
    teachers = {name: set(json.loads((folder / ".lab" / "private" / name / "labels.json").read_text())["teacher"])
                for name in ("prefs", "prefs_private", "fruit")}
    assert len(teachers["prefs"]) == len(teachers["prefs_private"]) == 16     # thirds of 48: public, replica, check
    assert not teachers["prefs"] & teachers["prefs_private"]
    for dataset in ("prefs", "prefs_private", "fruit"):
        baseline = json.loads((folder / ".lab" / "private" / dataset / "baselines.json").read_text())
        assert 0 <= baseline["weak_acc"] <= 1 and 0 <= baseline["second_teacher_acc"] <= 1
        assert len(baseline["ceiling_accs"]) == 2 and baseline["ceiling_commit"]
    for checked in ("prefs_private", "fruit"):
        assert (folder / ".lab" / "private" / checked / "teacher_b_view" / "train.jsonl").exists()
    # each seed's teacher is cached: a second init reuses everything
    again = run_lab("init", cwd=folder, check=True)
    assert "reused the prepared testbed" in again.stdout


def test_baselines_are_scored_as_submissions_with_their_integrity_checks(hf_lab):
    folder, _ = hf_lab
    result = run_lab("score", "--baselines", "--json", cwd=folder, timeout=1200)
    assert result.returncode == 0, result.stdout + result.stderr
    baselines = json.loads(result.stdout)["baselines"]
    assert sorted(baselines) == ["methods/confident.py", "methods/logconf.py", "methods/vanilla.py"]
    for entry, scored in baselines.items():
        assert scored["failed"] == {}, (entry, scored["failed"])
        assert set(scored["datasets"]) == {"prefs", "prefs_private", "fruit"}
        roles = {name: d["role"] for name, d in scored["datasets"].items()}
        assert roles == {"prefs": "dev", "prefs_private": "private", "fruit": "heldout"}
        assert len(scored["datasets"]["prefs"]["seeds"]) == 2
        # the teacher check ran, with the second teacher, on the replica and the held-out set
        pairs = scored["teacher_following"]["pairs"] if scored["teacher_following"] else []
        assert {p["set"] for p in pairs} <= {"prefs_private", "fruit"}
    board = run_lab("score", "--json", cwd=folder, check=True)
    assert len(json.loads(board.stdout)) == 3


def test_a_bad_row_is_one_line_naming_file_line_and_field(tmp_path):
    os.environ["HF_HUB_OFFLINE"] = "1"
    make_tiny_model(tmp_path / "models" / "strong", all_words(), hidden=16, layers=1)
    make_tiny_model(tmp_path / "models" / "weak", all_words(), hidden=16, layers=1)
    paths = tiny_jsonl_datasets(tmp_path / "data", n=24)
    lines = paths["binary"]["train"].read_text().splitlines()
    lines[6] = lines[6].replace('"label": 1', '"label": 3').replace('"label": 0', '"label": 3')
    paths["binary"]["train"].write_text("\n".join(lines) + "\n")
    (tmp_path / "lab.toml").write_text(TOML.format(
        sandbox=SANDBOX, pairwise_template=json.dumps(PAIRWISE_TEMPLATE), pairwise_words=json.dumps(PAIRWISE_LABEL_WORDS),
        binary_template=json.dumps(BINARY_TEMPLATE), binary_words=json.dumps(BINARY_LABEL_WORDS)))
    result = run_lab("init", cwd=tmp_path)
    assert result.returncode == 2
    error = result.stderr.splitlines()[-1]      # (sandbox = "none" warns first)
    assert result.stderr.endswith(error + "\n") and error.startswith("lab: error: ")
    assert error.endswith('data/binary/train.jsonl line 7: field "label" is 3; expected 0 or 1 (or false/true)')
    assert not (tmp_path / ".lab" / "private" / "testbed.json").exists()


def test_a_model_missing_from_the_cache_says_how_to_fetch_it(tmp_path):
    os.environ["HF_HUB_OFFLINE"] = "1"
    tiny_jsonl_datasets(tmp_path / "data", n=24)
    toml = TOML.format(sandbox=SANDBOX, pairwise_template=json.dumps(PAIRWISE_TEMPLATE),
                       pairwise_words=json.dumps(PAIRWISE_LABEL_WORDS), binary_template=json.dumps(BINARY_TEMPLATE),
                       binary_words=json.dumps(BINARY_LABEL_WORDS))
    (tmp_path / "lab.toml").write_text(toml.replace('strong = "models/strong"', 'strong = "nobody/no-such-model"'))
    result = run_lab("init", cwd=tmp_path)
    assert result.returncode == 2 and result.stderr.splitlines()[-1].startswith("lab: error: ")
    assert "hf download nobody/no-such-model" in result.stderr.splitlines()[-1]
