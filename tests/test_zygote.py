"""The runners' zygote: runners forked with their imports done, set up as `python -m lab.agents.runner` was, that
die with the supervisor; a killed zygote is replaced and its agents start again; a supervisor restarted while the
previous one's runners still stop never runs two runners of one agent. Real lab, scripted agents.
"""
from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time

import psutil

from conftest import lab_status, make_lab, requires_bwrap, run_lab, wait_for
from lab.agents import pidfiles
from lab.state_layout import StateLayout

pytestmark = requires_bwrap

WORK = [{"step": "work", "calls": [{"name": "shell", "arguments": {"command": "sleep 0.3; echo working"}}]}]
LONG = [{"step": "long", "calls": [{"name": "shell", "arguments": {"command": "sleep 7411"}}]}]


def processes(folder, module: str) -> list[psutil.Process]:
    marker = str(folder / "lab.toml")
    found = []
    for p in psutil.process_iter(["cmdline"]):
        cmd = p.info["cmdline"] or []
        try:
            if module in cmd and marker in cmd and p.status() != psutil.STATUS_ZOMBIE:
                found.append(p)
        except psutil.Error:
            pass
    return found


def running_agents(folder, dead: set[int] = frozenset()) -> bool:
    report = lab_status(folder)
    return report["running"] and all(a["state"] == "running" and a["pid"] not in dead for a in report["agents"])


def test_proctitle_rewrites_the_command_line_within_its_room():
    probe = ("import sys, psutil; from lab.proctitle import set_cmdline; "
             "assert not set_cmdline(['x' * 4096]); "
             "assert set_cmdline(['python', '-m', 'lab.agents.runner', '--agent', 'agent-3']); "
             "print(repr([a for a in psutil.Process().cmdline() if a]))")
    done = subprocess.run([sys.executable, "-c", probe, "--room", "." * 60], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == repr(["python", "-m", "lab.agents.runner", "--agent", "agent-3"])


def test_runners_are_forked_by_the_zygote_and_set_up_as_their_own(lab_dir, tmp_path):
    folder = make_lab(lab_dir, tmp_path, WORK, repeat=True, count=2)
    run_lab("start", cwd=folder, check=True)
    try:
        wait_for(lambda: running_agents(folder), what="two running agents")
        supervisor, = processes(folder, "lab.agents.supervisor")
        zygote, = processes(folder, "lab.agents.zygote")
        assert zygote.ppid() == supervisor.pid
        runners = {p.info["cmdline"][p.info["cmdline"].index("--agent") + 1]: p
                   for p in processes(folder, "lab.agents.runner")}
        assert sorted(runners) == ["agent-1", "agent-2"]
        for name, runner in runners.items():
            assert runner.ppid() == zygote.pid
            assert os.getsid(runner.pid) == runner.pid                 # a session, and so an autogroup, of its own
            assert runner.cmdline()[runner.cmdline().index("--config") + 1] == str(folder / "lab.toml")
            assert os.readlink(f"/proc/{runner.pid}/fd/1") == str(folder / ".lab" / "run" / "logs" / f"{name}.log")
            assert os.readlink(f"/proc/{runner.pid}/fd/0") == os.devnull
        assert {a["pid"] for a in lab_status(folder)["agents"]} == {p.pid for p in runners.values()}
    finally:
        run_lab("stop", cwd=folder)
    assert not processes(folder, "lab.agents")


def test_a_killed_zygote_is_replaced_and_its_agents_start_again(lab_dir, tmp_path):
    folder = make_lab(lab_dir, tmp_path, WORK, repeat=True, count=2)
    run_lab("start", cwd=folder, check=True)
    try:
        wait_for(lambda: running_agents(folder), what="two running agents")
        zygote, = processes(folder, "lab.agents.zygote")
        old = {a["pid"] for a in lab_status(folder)["agents"]}
        zygote.kill()
        wait_for(lambda: running_agents(folder, dead=old), timeout=30, what="both agents running on new runners")
        new_zygote, = processes(folder, "lab.agents.zygote")
        assert new_zygote.pid != zygote.pid
        assert not any(psutil.pid_exists(pid) and psutil.Process(pid).status() != psutil.STATUS_ZOMBIE for pid in old)
    finally:
        run_lab("stop", cwd=folder)
    assert not processes(folder, "lab.agents")


def test_a_restarted_supervisor_waits_out_the_previous_runners_and_never_runs_two_of_an_agent(lab_dir, tmp_path):
    """Killed mid-command, the supervisor leaves runners that take the grace period to stop; the next `lab start`
    starts each agent only once its previous runner is gone."""
    folder = make_lab(lab_dir, tmp_path, LONG, repeat=True, count=2, grace_s=2)
    run_lab("start", cwd=folder, check=True)
    try:
        wait_for(lambda: all(a["step"] == "long" for a in lab_status(folder)["agents"]), what="both agents in sleep")
        old = {a["pid"] for a in lab_status(folder)["agents"]}
        supervisor, = processes(folder, "lab.agents.supervisor")
        supervisor.kill()
        seen_two = []

        def watch():
            # the command line as `processes` read it: a runner that exits in between reads as empty; a child a
            # runner forked reads as its runner until it execs (git, bwrap), so only a runner's parent counts
            found = processes(folder, "lab.agents.runner")
            pids = {p.pid for p in found}
            runners = []
            for p in found:
                try:
                    parent = p.ppid()
                except psutil.Error:
                    continue
                if parent not in pids:
                    runners.append((p.info["cmdline"][p.info["cmdline"].index("--agent") + 1], p.pid, parent))
            names = [name for name, _, _ in runners]
            if len(names) != len(set(names)):
                seen_two.append(runners)
            return running_agents(folder, dead=old)

        began = time.monotonic()
        run_lab("start", "--detach", cwd=folder, check=True)
        wait_for(watch, timeout=30, interval=0.05, what="both agents running on new runners")
        assert not seen_two, seen_two
        assert time.monotonic() - began < 15
    finally:
        run_lab("stop", cwd=folder)
    assert not processes(folder, "lab.agents")
    assert not [p for p in psutil.process_iter(["cmdline"]) if p.info["cmdline"] == ["sleep", "7411"]]


def test_a_left_runner_that_already_cleared_its_record_is_still_waited_for(lab_dir, tmp_path):
    """A stopping runner clears its pid from the agents' records before it exits: the next supervisor finds it by
    its pid file, asks it to stop and starts its agent only once it is gone."""
    folder = make_lab(lab_dir, tmp_path, WORK, repeat=True, count=2, grace_s=2)
    ended = tmp_path / "ended"
    pid_file = StateLayout(folder / ".lab").run.runner_pid("agent-1")
    stays = ("import signal, sys, time\n"
             "from pathlib import Path\n"
             "from lab.agents import pidfiles\n"
             "def stop(*_):\n"
             "    time.sleep(1.5)\n"
             f"    open({str(ended)!r}, 'w').write(repr(time.time()))\n"
             "    sys.exit(0)\n"
             "signal.signal(signal.SIGTERM, stop)\n"
             f"pidfiles.write_own(Path({str(pid_file)!r}))\n"
             "time.sleep(60)\n")
    left = subprocess.Popen([sys.executable, "-c", stays], start_new_session=True)
    try:
        wait_for(lambda: getattr(pidfiles.read(pid_file), "pid", None) == left.pid, what="the left runner")
        run_lab("start", cwd=folder, check=True)
        wait_for(lambda: running_agents(folder), what="two running agents")
        assert left.wait(timeout=10) == 0
        # the supervisor records when it started a runner (a process's create_time is only as exact as the boot time)
        with sqlite3.connect(folder / ".lab" / "lab.db") as db:
            started, = db.execute("SELECT created FROM events WHERE agent = 'agent-1' AND kind = 'state' "
                                  "AND summary LIKE 'started %' ORDER BY id").fetchone()
        assert started >= float(ended.read_text())
    finally:
        left.kill()
        run_lab("stop", cwd=folder)
    assert not processes(folder, "lab.agents")


def test_the_zygote_dies_with_a_killed_supervisor_and_takes_the_runners(lab_dir, tmp_path):
    folder = make_lab(lab_dir, tmp_path, WORK, repeat=True, count=2)
    run_lab("start", cwd=folder, check=True)
    wait_for(lambda: running_agents(folder), what="two running agents")
    supervisor, = processes(folder, "lab.agents.supervisor")
    os.kill(supervisor.pid, signal.SIGKILL)
    wait_for(lambda: not processes(folder, "lab.agents"), timeout=30, what="zygote and runners gone")
    assert all(a["state"] == "stopped" for a in lab_status(folder)["agents"])
