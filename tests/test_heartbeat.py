"""A lab that stops doing anything says so: the supervisor's loop and the scorer's queue beat, `lab status`, the TUI's
header and `lab report` name a heartbeat gone stale and for how long, and `lab start` replaces a frozen supervisor."""
import os
import signal
import time

import psutil

from conftest import lab_status, make_lab, requires_bwrap, run_lab, wait_for
from lab import heartbeat
from lab.heartbeat import Heartbeat, pulse


def test_a_pulse_counts_from_the_last_beat_and_never_from_a_previous_process(tmp_path):
    path = tmp_path / "x.beat"
    assert pulse(path, "x").age_s is None
    Heartbeat(path).beat()
    assert pulse(path, "x").age_s < 1 and not pulse(path, "x").stale
    os.utime(path, (time.time() - 60, time.time() - 60))
    old = pulse(path, "x")
    assert old.stale and "has not beaten for 60 s" in old.describe()
    # a process started 3 s ago that has not beaten yet: counted from its start, not from the old file
    assert 2 < pulse(path, "x", since=time.time() - 3).age_s < 4
    # one stuck since its start goes stale too
    assert pulse(tmp_path / "none.beat", "x", since=time.time() - 30).stale


def test_a_stopped_heartbeat_is_gone_and_a_late_beat_does_not_bring_it_back(tmp_path):
    heart = Heartbeat(tmp_path / "x.beat")
    heart.beat()
    heart.stop()
    heart.last = 0.0
    heart.beat()
    assert not (tmp_path / "x.beat").exists()


@requires_bwrap
def test_a_frozen_supervisor_is_named_everywhere_and_replaced_by_the_next_start(lab_dir, tmp_path):
    turns = [{"step": "wait", "calls": [{"name": "shell", "arguments": {"command": "sleep 1"}}]}]
    folder = make_lab(lab_dir, tmp_path / "lab", turns, repeat=True, count=1)
    run_lab("start", "--detach", cwd=folder, check=True)
    try:
        wait_for(lambda: lab_status(folder)["agents"][0]["state"] == "running", timeout=60, what="the agent running")
        status = lab_status(folder)
        beats = status["heartbeats"]
        assert beats["supervisor_s"] < 3 and beats["scorer_queue_s"] < 3, beats
        assert not status["warnings"]
        frozen = status["supervisor_pid"]
        os.kill(frozen, signal.SIGSTOP)    # alive to ps, doing nothing: what a deadlock looks like from outside
        time.sleep(heartbeat.STALE_AFTER_S + 1.5)

        status = lab_status(folder)
        assert status["running"] and status["supervisor_pid"] == frozen
        assert any("the supervisor has not beaten for" in w for w in status["warnings"]), status["warnings"]
        assert any("scorer's queue has not beaten for" in w for w in status["warnings"]), status["warnings"]
        text = run_lab("status", cwd=folder, check=True).stdout
        assert "warning: the supervisor has not beaten for" in text

        from lab import config
        from lab.tui.source import Source

        cfg = config.load(folder / "lab.toml")
        source = Source(cfg)
        assert "⚠ supervisor silent for" in source.header()
        assert "⚠ supervisor silent for" in source.dashboard().header

        report = run_lab("report", "--out", str(tmp_path / "report"), cwd=folder, check=True)
        text = (tmp_path / "report" / "report.md").read_text() if (tmp_path / "report" / "report.md").exists() \
            else report.stdout
        assert "the supervisor has not beaten for" in text

        started = run_lab("start", "--detach", cwd=folder, check=True)
        assert f"the supervisor (pid {frozen}) had not beaten for" in started.stderr, started.stderr
        assert not psutil.pid_exists(frozen) or psutil.Process(frozen).status() == psutil.STATUS_ZOMBIE
        status = lab_status(folder)
        assert status["running"] and status["supervisor_pid"] != frozen and not status["warnings"]
        wait_for(lambda: lab_status(folder)["agents"][0]["state"] == "running", timeout=60,
                 what="the agent running under the new supervisor")
    finally:
        run_lab("stop", cwd=folder)
