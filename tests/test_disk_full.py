"""A full state disk: the lab survives it by itself and goes on when space returns.

The supervisor keeps running and no agent crashes, is given up or reads as stuck: a tool call under way when the disk
fills is a tool error the agent reads (StateDiskFull), and the loop's own records wait for space; nothing an agent
was told it wrote is lost. The disk is real: a small tmpfs mounted as the lab's `.lab` (root only), or a database
whose connection SQLite lets grow no more (the same SQLITE_FULL).
"""
from __future__ import annotations

import os
import shutil
import sqlite3
import sys
import threading
import time
from pathlib import Path

import pytest

from conftest import lab_status, make_lab, requires_bwrap, run_lab, wait_for
from lab.agents.tools import Toolbox, ToolContext
from lab.agents.turns import ToolCall
from lab.disk_full import is_full, patiently
from lab.errors import StateDiskFull
from lab.store import open_db

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))
from bench_chaos import lost_writes, mount_state_tmpfs, reported_writes, unmount  # noqa: E402

TURNS = [
    {"step": "work", "calls": [{"name": "shell", "arguments": {"command": "sleep 1; date +%s%N >> log.txt"}}]},
    {"step": "commit", "calls": [{"name": "git_commit", "arguments": {"message": "a step"}}]},
    {"step": "post", "calls": [{"name": "forum_post", "arguments": {
        "kind": "observation", "title": "still here", "body": "a step survived"}}]},
    {"step": "note", "calls": [{"name": "notebook", "arguments": {"action": "append", "text": "one more step"}}]},
]


def full_database(path: Path) -> sqlite3.Connection:
    """A lab database whose connection can grow no more: SQLite answers SQLITE_FULL, as on a full disk."""
    db = open_db(path)
    pages = db.execute("PRAGMA page_count").fetchone()[0]
    db.execute(f"PRAGMA max_page_count = {pages}")
    return db


def test_a_full_disk_is_told_from_other_errors(tmp_path):
    db = full_database(tmp_path / "lab.db")
    with pytest.raises(sqlite3.OperationalError) as caught:
        db.execute("INSERT INTO events (agent, created, kind, summary, data) VALUES (?, 0, 'x', ?, '{}')",
                   ["agent-1", "x" * 100_000])
    assert is_full(caught.value)
    assert is_full(OSError(28, "No space left on device")) and is_full(StateDiskFull("full"))
    assert not is_full(sqlite3.OperationalError("no such table: nowhere")) and not is_full(OSError(13, "denied"))


def test_a_write_waits_for_space_and_gives_up_when_told(tmp_path):
    from lab.store import forum

    db = full_database(tmp_path / "lab.db")
    body = "a long finding " * 4000
    with pytest.raises(sqlite3.OperationalError):
        patiently(forum.post, db, "agent-1", "observation", "t", body, give_up=lambda: True)
    threading.Timer(1.5, lambda: db.execute("PRAGMA max_page_count = 1000000")).start()   # space returns
    began = time.monotonic()
    post_id = patiently(forum.post, db, "agent-1", "observation", "t", body)
    assert time.monotonic() - began >= 1.0
    assert forum.read(db, post_id)["body"] == body


def test_a_tool_that_meets_a_full_disk_is_a_tool_error_the_agent_reads(lab_dir, tmp_path):
    from lab import config
    from lab.sandbox import make_sandbox
    from lab.sandbox.workspace import Workspace
    from lab.scaffold.repo import research_repo_path

    cfg = config.load(make_lab(lab_dir, tmp_path, TURNS, count=1) / "lab.toml")
    db = full_database(cfg.state_dir / "lab.db")
    sandbox = make_sandbox(cfg.lab.sandbox, warn=lambda line: None, user="agent-1")
    workspace = Workspace.ensure(cfg.sandboxes_dir, research_repo_path(cfg.state_dir), "agent-1", sandbox)
    toolbox = Toolbox(ToolContext(agent="agent-1", cfg=cfg, db=db, sandbox=sandbox, workspace=workspace,
                                  data_view=cfg.state_dir / "data", scorer=None))
    result = toolbox.execute(ToolCall("c1", "forum_post", {"kind": "observation", "title": "t",
                                                          "body": "a finding " * 20000}))
    assert result.is_error and result.data["kind"] == "StateDiskFull"
    assert "state disk is full" in result.output and "nothing was written" in result.output


def fill(folder: Path) -> Path:
    filler = folder / "filler"
    with open(filler, "wb", buffering=0) as out:
        try:
            while True:
                out.write(b"\0" * 2**20)
        except OSError:
            pass
    return filler


@requires_bwrap
@pytest.mark.skipif(os.geteuid() != 0, reason="mounting a tmpfs for the state folder needs root")
def test_the_lab_outlives_a_full_state_disk_and_goes_on_when_space_returns(lab_dir, tmp_path):
    folder = make_lab(lab_dir, tmp_path / "lab", TURNS, repeat=True, count=2, max_restarts=2)
    shutil.move(folder / ".lab", tmp_path / "state")
    why_not = mount_state_tmpfs(tmp_path / "state", folder / ".lab")
    if why_not:
        pytest.skip(why_not)
    try:
        shutil.copytree(tmp_path / "state", folder / ".lab", dirs_exist_ok=True)
        run_lab("start", "--detach", cwd=folder, check=True)
        try:
            wait_for(lambda: all(a["state"] == "running" for a in lab_status(folder)["agents"]), timeout=60,
                     what="both agents running")
            wait_for(lambda: len(reported_writes(folder / ".lab" / "lab.db")) >= 6, timeout=60, what="some steps")
            before = lab_status(folder)
            filler = fill(folder / ".lab")
            time.sleep(12)                       # longer than a step: every agent meets the full disk
            during = lab_status(folder)
            filler.unlink()
            last_write = max(w["created"] for w in reported_writes(folder / ".lab" / "lab.db"))
            freed = time.time()
            wait_for(lambda: sum(w["created"] > freed for w in reported_writes(folder / ".lab" / "lab.db")) >= 4,
                     timeout=60, what="the agents writing again")
            after = lab_status(folder)
        finally:
            run_lab("stop", cwd=folder)
        assert during["running"] and during["supervisor_pid"] == before["supervisor_pid"]
        assert after["supervisor_pid"] == before["supervisor_pid"]
        for a, b in zip(before["agents"], after["agents"]):
            assert b["state"] == "running" and b["restarts"] == a["restarts"] and b["pid"] == a["pid"], b
        assert last_write < freed
        assert not any(lost_writes(folder).values())
    finally:
        unmount(folder / ".lab")
