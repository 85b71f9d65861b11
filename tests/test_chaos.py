"""A short run of bench/bench_chaos.py's fault injector against a real lab of two scripted agents: runners,
a sandboxed command and the supervisor killed with SIGKILL (the supervisor started again with `lab start`),
SQLite's write lock held; every fault recovered from and nothing the agents were told they wrote is lost."""
from __future__ import annotations

import random
import sys
from pathlib import Path

from conftest import lab_status, make_lab, requires_bwrap, run_lab, wait_for

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))
from bench_chaos import lost_writes, reported_writes, run_chaos, unfinished_submissions  # noqa: E402

# every pass writes a line, commits it, posts and keeps a note: each write is one the agent is told about
TURNS = [
    {"step": "work", "calls": [{"name": "shell", "arguments": {"command": "sleep 2; date +%s%N >> log.txt"}}]},
    {"step": "commit", "calls": [{"name": "git_commit", "arguments": {"message": "chaos step"}}]},
    {"step": "post", "calls": [{"name": "forum_post", "arguments": {
        "kind": "observation", "title": "still here", "body": "a step survived"}}]},
    {"step": "note", "calls": [{"name": "notebook", "arguments": {"action": "append", "text": "one more step"}}]},
]
PLAN = ["runner", "sandboxed", "db_lock", "runner", "supervisor", "runner"]


@requires_bwrap
def test_every_fault_recovered_and_nothing_lost(lab_dir, tmp_path):
    folder = make_lab(lab_dir, tmp_path / "lab", TURNS, repeat=True, count=2, max_restarts=10)
    run_lab("start", "--detach", cwd=folder, check=True)
    try:
        wait_for(lambda: all(a["state"] == "running" for a in lab_status(folder)["agents"]), timeout=60,
                 what="both agents running")
        outcome = run_chaos(folder, list(PLAN), seconds=150, gap_s=(2, 4), rng=random.Random(7),
                            state_on_tmpfs=False)
    finally:
        run_lab("stop", cwd=folder, check=True)

    injected = [f.kind for f in outcome.faults]
    assert sorted(injected) == sorted(PLAN), (injected, outcome.skipped)
    slow = [(f.detail, f.recovery_s) for f in outcome.faults if not f.recovered]
    assert not slow, slow
    written = {w["tool"] for w in reported_writes(folder / ".lab" / "lab.db")}
    assert written == {"git_commit", "forum_post", "notebook"}, written
    lost = lost_writes(folder)
    assert not any(lost.values()), lost
    assert not unfinished_submissions(folder / ".lab" / "lab.db")
