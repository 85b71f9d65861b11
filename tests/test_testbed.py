"""What `lab init` lays down: the agents' view, the private store, and a cache that is checked."""
import json
import shutil

import numpy as np

from conftest import run_lab
from lab.task.testbed import Testbed


def test_the_agents_view_holds_no_labels(lab_dir, cfg):
    view = lab_dir / ".lab" / "data" / "rotten_tomatoes"
    assert sorted(p.name for p in view.iterdir()) == ["README.md", "features", "meta.json", "test.jsonl", "train.jsonl"]
    train = [json.loads(line) for line in (view / "train.jsonl").open()]
    test = [json.loads(line) for line in (view / "test.jsonl").open()]
    assert set(train[0]) == {"id", "text", "weak_soft"}
    assert set(test[0]) == {"id", "text"}
    assert len(train) == 400 and len(test) == 200
    assert all(0 <= row["weak_soft"] <= 1 for row in train)
    features = np.load(view / "features" / "train.npy")
    assert features.shape == (400, 7, 384) and features.dtype == np.float32
    assert json.loads((view / "meta.json").read_text())["layers"] == 7
    # Only the dev task has an agents' view; the held-out sets live in the private store.
    assert sorted(p.name for p in (lab_dir / ".lab" / "data").iterdir()) == ["rotten_tomatoes"]
    for heldout in ("imdb", "tweets"):
        assert (lab_dir / ".lab" / "private" / heldout / "view" / "test.jsonl").exists()


def test_splits_do_not_overlap_and_are_balanced(cfg):
    testbed = Testbed.load(cfg)
    for dataset in cfg.task.datasets:
        splits = {s: testbed.labels(dataset, s) for s in ("teacher", "train", "test")}
        ids = [set(v) for v in splits.values()]
        assert not (ids[0] & ids[1]) and not (ids[0] & ids[2]) and not (ids[1] & ids[2])
        assert abs(sum(splits["test"].values()) - len(splits["test"]) / 2) <= 1


def test_baselines_are_fixed_over_seeds_and_leave_a_gap(cfg):
    testbed = Testbed.load(cfg)
    for dataset in cfg.task.datasets:
        base = testbed.baseline(dataset)
        assert base.seeds == [0, 1] and len(base.ceiling_accs) == 2
        assert 0.5 < base.weak_acc < base.ceiling_acc <= 1


def test_a_second_init_reuses_the_cache(lab_dir):
    result = run_lab("init", cwd=lab_dir, check=True)
    assert result.stdout.startswith("reused the prepared testbed")
    assert "rotten_tomatoes  dev" in result.stdout


def test_a_corrupt_or_missing_file_is_one_clear_line(tmp_path, lab_dir):
    copy = tmp_path / "lab"
    shutil.copytree(lab_dir, copy, symlinks=True, ignore=shutil.ignore_patterns("lab.db*", "cache"))
    features = copy / ".lab" / "data" / "rotten_tomatoes" / "features" / "test.npy"
    features.write_bytes(b"not numpy")
    result = run_lab("score", "--baselines", cwd=copy)
    assert result.returncode == 2
    assert result.stderr.strip() == f"lab: error: testbed file {features} was changed or is corrupt (run `lab init --force`)"
    features.unlink()
    result = run_lab("score", "--baselines", cwd=copy)
    assert result.stderr.strip() == f"lab: error: testbed file {features} is missing (run `lab init --force`)"
    (copy / ".lab" / "private" / "testbed.json").write_text("{")
    result = run_lab("score", cwd=copy)  # the leaderboard needs no testbed
    assert result.returncode == 0
    result = run_lab("score", "--method", str(copy), cwd=copy)
    assert "testbed.json is corrupt (run `lab init --force`)" in result.stderr
