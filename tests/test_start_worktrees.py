"""The supervisor makes the agents' worktrees side by side: each a repository of its own on its own branch,
started from the scaffold, and a second start finds them made."""
from __future__ import annotations

import os

from conftest import make_lab
from lab import config
from lab.agents import worktrees


def test_worktrees_are_made_side_by_side_each_on_its_branch(lab_dir, tmp_path):
    cfg = config.load(make_lab(lab_dir, tmp_path, turns=[], count=6) / "lab.toml")
    worktrees.prepare(cfg, cfg.agents.names)
    for name in cfg.agents.names:
        worktree = cfg.sandboxes_dir / name
        assert (worktree / ".git" / "HEAD").read_text().strip() == f"ref: refs/heads/{name}"
        assert (worktree / "method.py").is_file() and (worktree / "w2s" / "select.py").is_file()
        assert not (worktree / "w2s" / "select.py").is_symlink()
    made = {name: os.lstat(cfg.sandboxes_dir / name / ".git").st_ino for name in cfg.agents.names}
    worktrees.prepare(cfg, cfg.agents.names)      # made already: nothing is made again
    assert made == {name: os.lstat(cfg.sandboxes_dir / name / ".git").st_ino for name in cfg.agents.names}


def test_a_worktree_that_cannot_be_made_fails_its_agent_and_lab_start_says_why(lab_dir, tmp_path):
    from conftest import lab_status, run_lab, wait_for

    folder = make_lab(lab_dir, tmp_path, [{"step": "wait", "calls": [{"name": "shell", "arguments": {
        "command": "sleep 0.5"}}]}], repeat=True, count=2)
    (folder / "sandboxes").mkdir()
    (folder / "sandboxes" / "agent-2").write_text("not a folder")
    try:
        done = run_lab("start", "--detach", cwd=folder, check=True)
        assert "agent-2 could not start:" in done.stderr and "is not a folder" in done.stderr
        states = wait_for(lambda: (s := {a["name"]: a["state"] for a in lab_status(folder)["agents"]})
                          and s["agent-1"] == "running" and s, what="agent-1 running")
        assert states["agent-2"] == "failed"
    finally:
        run_lab("stop", cwd=folder)
