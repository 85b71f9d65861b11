"""The real `lab tui` and `lab start` in a real terminal (tmux): keys in, screen text out."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time

import pytest

from conftest import lab_status, make_lab, requires_bwrap, run_lab, wait_for
from tui_helpers import seeded_lab

from lab.store import commands, open_db

requires_tmux = pytest.mark.skipif(not shutil.which("tmux") and not os.environ.get("CI"),
                                   reason="tmux is not installed (CI installs it and runs this)")


class Terminal:
    """A tmux session on its own server, running one command in a window of a given size."""

    def __init__(self, command: str, cwd, width: int = 100, height: int = 30):
        self.tmux = ["tmux", "-L", f"labtest-{os.getpid()}-{time.monotonic_ns()}", "-f", "/dev/null"]
        subprocess.run([*self.tmux, "new-session", "-d", "-s", "lab", "-x", str(width), "-y", str(height), "-c",
                        str(cwd), f"{command}; echo TERMINAL-EXIT=$?; sleep 600"], check=True)

    def screen(self) -> str:
        return subprocess.run([*self.tmux, "capture-pane", "-p", "-t", "lab"], capture_output=True,
                              text=True).stdout

    def wait(self, *texts: str, timeout: float = 30) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            shown = self.screen()
            if all(t in shown for t in texts):
                return shown
            time.sleep(0.1)
        raise AssertionError(f"the screen never showed {texts}; it shows:\n{self.screen()}")

    def keys(self, *keys: str, literal: bool = False) -> None:
        subprocess.run([*self.tmux, "send-keys", "-t", "lab", *(["-l"] if literal else []), *keys], check=True)
        time.sleep(0.15)

    def close(self) -> None:
        subprocess.run([*self.tmux, "kill-server"], capture_output=True)


@requires_tmux
def test_lab_tui_in_a_real_terminal(tmp_path):
    cfg = seeded_lab(tmp_path)
    term = Terminal(f"{sys.executable} -m lab.cli tui", tmp_path)
    try:
        term.wait("agent-1", "agent-3", "leaderboard", "private dev")
        term.keys("f")
        term.wait("threads, newest first")
        term.keys("/")
        time.sleep(0.5)                               # the search box takes the focus
        term.keys("logconf", literal=True)
        term.wait("logconf")                           # typed into the box, not read as keys by the table
        term.keys("Enter")
        term.wait("search: logconf")
        term.keys("v")
        term.wait("flagged submissions", "to review")
        term.keys("?")
        term.wait("lab: keys", "Disqualify")
        term.keys("Escape")
        time.sleep(0.3)
        term.keys("d")
        term.wait("agents (enter: open")
        term.keys("Down", "m")
        term.wait("Message to agent-2")
        time.sleep(0.5)
        term.keys("hello from a real terminal", literal=True)
        term.wait("hello from a real terminal")
        term.keys("Enter")
        db = open_db(cfg.state_dir / "lab.db")
        wait_for(lambda: any(c["body"] == "hello from a real terminal" for c in commands.history(db, "agent-2")),
                 timeout=10, what="the message in the database")
        term.keys("Enter")
        term.wait("Transcript", "Notebook", "direction:")
        term.keys("Escape")    # alone: escape and a key at once read as alt+key
        time.sleep(0.3)
        term.keys("q")
        term.wait("TERMINAL-EXIT=0")
    finally:
        term.close()


@requires_bwrap
@requires_tmux
def test_lab_start_attaches_the_dashboard_and_quitting_leaves_the_lab_running(lab_dir, tmp_path):
    folder = make_lab(lab_dir, tmp_path, [], count=3)
    toml = folder / "lab.toml"
    toml.write_text(toml.read_text().replace('backend = "scripted"', 'backend = "researcher"'))
    term = Terminal(f"{sys.executable} -m lab.cli start", folder, width=140, height=36)
    try:
        shown = term.wait("agent-3", "running (pid", timeout=120)
        assert "agents (enter: open" in shown
        wait_for(lambda: term.screen().count(" running ") >= 3, timeout=60, what="three agents running on screen")
        term.keys("q")
        term.wait("the lab goes on running", "TERMINAL-EXIT=0")
        status = lab_status(folder)
        assert status["running"] and all(a["state"] == "running" for a in status["agents"])
    finally:
        term.close()
        run_lab("stop", cwd=folder)
