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
    for unseen in ("rotten_tomatoes_private", "imdb", "tweets"):
        assert (lab_dir / ".lab" / "private" / unseen / "view" / "test.jsonl").exists()
        assert (lab_dir / ".lab" / "private" / unseen / "teacher_b_view" / "train.jsonl").exists()


def test_the_private_replica_is_fresh_texts_of_the_same_task_labelled_by_a_teacher_of_the_same_kind(cfg):
    testbed = Testbed.load(cfg)
    public, private = cfg.task.dev, cfg.task.private
    assert private == "rotten_tomatoes_private"
    rows = {name: {split: testbed.labels(name, split) for split in ("teacher", "train", "test")}
            for name in (public, private)}
    # a teacher no agent has seen, trained alike on as many labelled texts of its own (lab/task/testbed.py says why)
    assert len(rows[public]["teacher"]) == len(rows[private]["teacher"])
    assert not set(rows[public]["teacher"]) & set(rows[private]["teacher"])
    for split in ("train", "test"):                                       # the same sizes, no text shared
        assert len(rows[public][split]) == len(rows[private][split])
        assert not set(rows[public][split]) & set(rows[private][split])
    texts = lambda name, split: {r["text"] for r in
                                 (json.loads(line) for line in (testbed.view(name) / f"{split}.jsonl").open())}
    assert not texts(public, "train") & texts(private, "train") and not texts(public, "test") & texts(private, "test")
    # teachers of one kind: about as good on the replica as the public one on the public set
    assert abs(testbed.baseline(public).weak_acc - testbed.baseline(private).weak_acc) < 0.1


def test_every_unseen_set_has_a_second_teacher_of_the_same_kind_trained_on_other_texts(cfg):
    testbed = Testbed.load(cfg)
    for name in cfg.task.checked:
        first = {r["id"]: r for r in (json.loads(line) for line in (testbed.view(name) / "train.jsonl").open())}
        second = {r["id"]: r for r in (json.loads(line) for line in (testbed.teacher_b_view(name) / "train.jsonl").open())}
        assert first.keys() == second.keys() and all(first[i]["text"] == second[i]["text"] for i in first)
        assert (testbed.teacher_b_view(name) / "test.jsonl").read_bytes() == (testbed.view(name) / "test.jsonl").read_bytes()
        a = np.array([first[i]["weak_soft"] > 0.5 for i in first])
        b = np.array([second[i]["weak_soft"] > 0.5 for i in first])
        assert 0.02 < np.mean(a != b) < 0.5, name        # two teachers: they disagree on some texts, not most
        base = json.loads((testbed.private_dir(name) / "baselines.json").read_text())
        assert abs(base["weak_acc"] - base["second_teacher_acc"]) < 0.12, (name, base)
        teachers = testbed.teachers(name)
        assert set(teachers["a"]) == set(teachers["b"]) == set(testbed.test_ids(name))


def test_splits_do_not_overlap_and_are_balanced(cfg):
    testbed = Testbed.load(cfg)
    for dataset in cfg.task.scored:
        splits = {s: testbed.labels(dataset, s) for s in ("teacher", "train", "test")}
        ids = [set(v) for v in splits.values()]
        assert not (ids[0] & ids[1]) and not (ids[0] & ids[2]) and not (ids[1] & ids[2])
        assert abs(sum(splits["test"].values()) - len(splits["test"]) / 2) <= 1


def test_baselines_are_fixed_over_seeds_and_leave_a_gap(cfg):
    testbed = Testbed.load(cfg)
    for dataset in cfg.task.scored:
        base = testbed.baseline(dataset)
        assert base.seeds == [0, 1] and len(base.ceiling_accs) == 2
        assert 0.5 < base.weak_acc < base.ceiling_acc <= 1


def test_a_second_init_reuses_the_cache(lab_dir):
    result = run_lab("init", cwd=lab_dir, check=True)
    assert result.stdout.startswith("reused the prepared testbed")
    assert "rotten_tomatoes          public dev" in result.stdout
    assert "rotten_tomatoes_private  private dev" in result.stdout


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
