"""Short runs of bench/bench_chaos.py's fault injector against a real lab of two scripted agents, over several seeds:
runners, a sandboxed command and the supervisor killed with SIGKILL (the supervisor started again with `lab start`),
SQLite's write lock held, the state disk filled; every fault recovered from and nothing the agents were told they
wrote is lost. The seed orders the faults and picks their victims and the gaps between them."""
from __future__ import annotations

import random
import sys
import time
from pathlib import Path

import pytest

from conftest import lab_status, make_lab, requires_bwrap, run_lab, wait_for

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))
from bench_chaos import (Outcome, lost_writes, mount_state_tmpfs, print_summary, problems, reported_writes,  # noqa: E402
                         run_chaos, summarize, unfinished_submissions, unmount, Fault)

# every pass writes a line, commits it, posts and keeps a note: each write is one the agent is told about
TURNS = [
    {"step": "work", "calls": [{"name": "shell", "arguments": {"command": "sleep 2; date +%s%N >> log.txt"}}]},
    {"step": "commit", "calls": [{"name": "git_commit", "arguments": {"message": "chaos step"}}]},
    {"step": "post", "calls": [{"name": "forum_post", "arguments": {
        "kind": "observation", "title": "still here", "body": "a step survived"}}]},
    {"step": "note", "calls": [{"name": "notebook", "arguments": {"action": "append", "text": "one more step"}}]},
]
KINDS = ["runner", "sandboxed", "db_lock", "runner", "supervisor", "disk_full"]


@requires_bwrap
@pytest.mark.parametrize("seed", [7, 13, 29])
def test_every_fault_recovered_and_nothing_lost(lab_dir, tmp_path, seed):
    folder = tmp_path / "lab"
    on_tmpfs = mount_state_tmpfs(lab_dir / ".lab", folder / ".lab") is None
    rng = random.Random(seed)
    plan = [k for k in KINDS if on_tmpfs or k != "disk_full"]
    rng.shuffle(plan)
    try:
        make_lab(lab_dir, folder, TURNS, repeat=True, count=2, max_restarts=10)
        run_lab("start", "--detach", cwd=folder, check=True)
        try:
            wait_for(lambda: all(a["state"] == "running" for a in lab_status(folder)["agents"]), timeout=60,
                     what="both agents running")
            outcome = run_chaos(folder, list(plan), seconds=150, gap_s=(2, 4), rng=rng, state_on_tmpfs=on_tmpfs)
            time.sleep(3)     # a step or two after the last fault: its writes are reported, or lost
        finally:
            run_lab("stop", cwd=folder, check=True)

        injected = [f.kind for f in outcome.faults]
        assert sorted(injected) == sorted(plan), (injected, outcome.skipped)
        slow = [(f.detail, f.recovery_s) for f in outcome.faults if not f.recovered]
        assert not slow, slow
        written = {w["tool"] for w in reported_writes(folder / ".lab" / "lab.db")}
        assert written == {"git_commit", "forum_post", "notebook"}, written
        lost = lost_writes(folder)
        assert not any(lost.values()), lost
        assert not unfinished_submissions(folder / ".lab" / "lab.db")
    finally:
        if on_tmpfs:
            unmount(folder / ".lab")


def test_the_bench_names_what_was_not_recovered_and_claims_no_more_than_its_table(capsys):
    faults = [Fault("disk_full", time.time(), "state disk full for 3.3 s", recovered=False),
              Fault("runner", time.time(), "SIGKILL runner pid 1", recovered=True, recovery_s=2.4)]
    figures = summarize(Outcome(faults), {"posts": [], "notebook": [], "commits": []}, [])
    assert problems(figures) == [f"NOT recovered: disk_full at {time.strftime('%H:%M:%S', time.localtime(faults[0].at))}"
                                 " (state disk full for 3.3 s)"]
    print_summary(figures)
    out = capsys.readouterr().out
    assert "faults recovered: 1 of 2" in out and "every fault" not in out and "NOT recovered: disk_full" in out
