"""One lab, one supervisor: however starts race (several `lab start`s, the TUI's S, a supervisor started by hand),
exactly one supervisor runs on a state folder, and every start reports that one."""
from __future__ import annotations

import subprocess
import sys
import threading
import time

import psutil
import pytest

from conftest import LAB, lab_status, make_lab, requires_bwrap, run_lab, wait_for
from lab import config
from lab.agents.locks import EXIT_ALREADY_SUPERVISED

pytestmark = requires_bwrap

WORK = [{"step": "wait", "calls": [{"name": "shell", "arguments": {"command": "sleep 0.5"}}]}]


def supervisors(folder) -> list[int]:
    marker = str(folder / "lab.toml")
    return [p.pid for p in psutil.process_iter(["cmdline"])
            if "lab.agents.supervisor" in (p.info["cmdline"] or []) and marker in p.info["cmdline"]]


@pytest.fixture
def lab(lab_dir, tmp_path):
    folder = make_lab(lab_dir, tmp_path, WORK, repeat=True, count=2)
    yield folder
    run_lab("stop", cwd=folder)
    assert not supervisors(folder)


def test_concurrent_cli_starts_make_one_supervisor(lab):
    starts = [subprocess.Popen([*LAB, "start", "--detach"], cwd=lab, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               text=True) for _ in range(4)]
    outputs = [proc.communicate(timeout=300) for proc in starts]
    assert all(proc.returncode == 0 for proc in starts), outputs
    running = supervisors(lab)
    assert len(running) == 1, running
    started = [out for out, _ in outputs if "lab started" in out]
    already = [out for out, _ in outputs if "already running" in out]
    assert len(started) == 1 and len(already) == 3, outputs
    assert all(f"supervisor pid {running[0]}" in out for out, _ in outputs), outputs
    assert lab_status(lab)["supervisor_pid"] == running[0]


def test_the_tuis_start_racing_cli_starts_makes_one_supervisor(lab):
    """The TUI's S calls Steering.start_lab from a worker thread: here three at once, beside two CLI starts."""
    from lab.agents.steering import Steering
    from lab.sandbox import make_sandbox
    from lab.store import open_db

    cfg = config.load(lab / "lab.toml")
    results, errors = [], []

    def tui_start() -> None:
        db = open_db(cfg.state_dir / "lab.db")
        try:
            results.append(Steering(cfg, db, via="tui").start_lab(str(lab / "lab.toml"),
                                                                   make_sandbox(cfg.lab.sandbox, warn=lambda _: None)))
        except Exception as exc:   # reported below, with the others
            errors.append(exc)
        finally:
            db.conn.close()

    threads = [threading.Thread(target=tui_start) for _ in range(3)]
    clis = [subprocess.Popen([*LAB, "start", "--detach"], cwd=lab, stdout=subprocess.PIPE, text=True)
            for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=300)
    cli_out = [proc.communicate(timeout=300)[0] for proc in clis]
    assert not errors and all(proc.returncode == 0 for proc in clis), (errors, cli_out)
    running = supervisors(lab)
    assert len(running) == 1, running
    assert {r.running.pid for r in results} == set(running)
    fresh = sum(not r.already_running for r in results) + sum("lab started" in out for out in cli_out)
    assert fresh == 1, (results, cli_out)


def test_a_second_supervisor_leaves_at_once_with_a_clear_line(lab):
    run_lab("start", "--detach", cwd=lab, check=True)
    first = supervisors(lab)
    assert len(first) == 1
    start = time.monotonic()
    second = subprocess.run([sys.executable, "-m", "lab.agents.supervisor", "--config", str(lab / "lab.toml")],
                            cwd=lab, capture_output=True, text=True, timeout=120)
    assert second.returncode == EXIT_ALREADY_SUPERVISED, second.stdout + second.stderr
    assert f"another supervisor (pid {first[0]}) already runs the lab in {lab / '.lab'}" in second.stdout
    assert time.monotonic() - start < 30
    assert supervisors(lab) == first and lab_status(lab)["running"]


def test_supervisors_started_by_hand_at_once_leave_one(lab):
    """No `lab start` to serialise them: the supervisor's own lock decides."""
    argv = [sys.executable, "-m", "lab.agents.supervisor", "--config", str(lab / "lab.toml")]
    logs = [lab / f"supervisor-{i}.log" for i in range(3)]
    procs = [subprocess.Popen(argv, cwd=lab, stdout=log.open("w"), stderr=subprocess.STDOUT) for log in logs]
    wait_for(lambda: sum(p.poll() is not None for p in procs) == 2, timeout=120, what="two supervisors to leave")
    survivor = next(p for p in procs if p.poll() is None)
    for proc, log in zip(procs, logs):
        if proc is not survivor:
            assert proc.returncode == EXIT_ALREADY_SUPERVISED, log.read_text()
            assert "already runs the lab" in log.read_text()
    wait_for(lambda: lab_status(lab)["supervisor_pid"] == survivor.pid, what="the survivor ready")
    assert supervisors(lab) == [survivor.pid]
    run_lab("stop", cwd=lab, check=True)
    survivor.wait(timeout=60)
