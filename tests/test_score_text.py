"""The one formatter of score figures (lab.score_text) on the store's typed rows (lab.store.scores): each figure's
text, and a leaderboard row as the CLI and the report print it."""
from __future__ import annotations

import json

import pytest

from conftest import run_lab, write_config
from lab import config, score_text
from lab.report.gather import gather
from lab.report.markdown import leaderboard as report_leaderboard
from lab.store import open_db, submissions
from lab.store.scores import Following

FOLLOWING = {"following": 0.4, "se": 0.0728, "with_teacher": 31, "against": 2, "z": 5.0,
             "pairs": [{"set": "tweets", "seed": 0, "following": 0.4, "disagreements": 80},
                       {"set": "imdb", "seed": 0, "following": 0.4, "disagreements": 80}]}


def _score(dataset: str, role: str, pgr: float | None, se: float = 0.02) -> dict:
    if pgr is None:
        return {"dataset": dataset, "role": role, "status": "failed", "error": "timed out"}
    return {"dataset": dataset, "role": role, "status": "ok", "acc": 0.7, "pgr": pgr, "pgr_se": se, "weak_acc": 0.66,
            "ceiling_acc": 0.77, "seeds": [0, 1], "per_seed_acc": [0.7, 0.7]}


@pytest.fixture
def lab(tmp_path):
    cfg = config.load(write_config(tmp_path))
    db = open_db(cfg.state_dir / "lab.db")
    sid = submissions.record_submission(
        db, agent="agent-1", commit_sha="c" * 40, path="method.py", tree_hash="t", fingerprint="f", seeds=[0, 1],
        sandbox="none", duration_s=1.0, teacher_dependence=FOLLOWING,
        scores=[_score(cfg.task.dev, "dev", 0.72), _score(cfg.task.private, "private", 0.6213, 0.0151),
                *[_score(d, "heldout", None if i else -0.13) for i, d in enumerate(cfg.task.heldout)]],
        flags=[{"kind": "heldout_gap", "message": "m", "evidence": {}}, {"kind": "failed", "message": "m"}])
    cleared = submissions.get(db, sid).flags[0].id
    submissions.clear_flag(db, cleared, "fine")
    yield cfg, db, sid
    db.conn.close()


def test_a_pgr_with_and_without_its_standard_error():
    assert score_text.pgr(None) == "-" and score_text.pgr(None, 0.1) == "-"
    assert score_text.pgr(0.1234) == "+0.123" and score_text.pgr(-0.5) == "-0.500"
    assert score_text.pgr(0.1234, 0.0456) == "+0.123 ± 0.046"
    assert score_text.pgr(0.1234, 0.0456, tight=True) == "+0.123±0.046"      # the TUI's narrow tables


def test_the_teacher_check_and_flags():
    following = Following.from_record(FOLLOWING)
    assert (following.pairs, following.sets) == (2, ["imdb", "tweets"])
    assert score_text.follows_teacher(following) == "+31/-2" and score_text.follows_teacher(None) == "-"
    assert score_text.teacher_check(following) == (
        "its predictions moved with the teacher on 31 texts and against it on 2 (z +5.0), where two teachers disagree, "
        "over 2 pairs of runs on imdb, tweets; following +0.400 ± 0.073 (1: copies it, 0: ignores it)")
    # issue 13's teacher dependence had other keys: no teacher check to show
    assert Following.from_record({"difference": 0.2, "se": 0.05}) is None and Following.from_record(None) is None
    assert score_text.flags([]) == "-" and score_text.flags(["heldout_gap", "failed"]) == "heldout_gap, failed"


def test_a_leaderboard_row_reads_the_same_in_the_cli_and_the_report(lab):
    cfg, db, sid = lab
    task = cfg.task
    sub = submissions.leaderboard(db)[0]
    assert sub.id == sid and sub.ranked_pgr == sub.private_pgr == 0.6213 and sub.dev_pgr == 0.72
    assert score_text.score(sub.score_of(task.heldout[1])) == "failed" and score_text.score(None) == "-"
    row = score_text.board_row(sub, task.private, task.dev, task.heldout)
    # private, public, each held-out set, the teacher check, the open flags (the cleared one left out)
    assert row == ["+0.621 ± 0.015", "+0.720 ± 0.020", "-0.130 ± 0.020", "failed", "+31/-2", "failed"]

    printed = run_lab("score", cwd=cfg.root, check=True).stdout.splitlines()
    assert printed[2].split()[4:] == [cell for figure in row for cell in figure.split()]
    markdown = report_leaderboard(gather(cfg, db)).splitlines()
    assert markdown[-1].split(" | ")[5:] == row[:-1] + [f"{row[-1]} |"]

    shown = json.loads(run_lab("score", "--json", cwd=cfg.root, check=True).stdout)[0]
    assert shown["teacher_following"] == FOLLOWING and [f["kind"] for f in shown["flags"]] == ["failed"]
