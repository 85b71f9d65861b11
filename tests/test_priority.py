"""The person's side never starves: the lab's daemons, the agents' sandboxed commands and the scorer's runs sit
below the person's tools in CPU priority (a low cgroup CPU weight where the machine offers one, else nice, on the
autogroup of each session too, since with autogroup scheduling every session is a CPU group of its own).
bench/bench_priority.py measures what that buys."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import psutil
import pytest

from conftest import lab_status, make_lab, requires_bwrap, run_lab, wait_for
from lab.sandbox.cgroups import (DAEMONS, LAB_NICE, RUN_NICE, V1_CPU_SHARES, V2_CPU_WEIGHT, Cgroups,
                                 autogroup_enabled, detect)

MACHINE = detect()
CPU_CGROUPS = "cpu" in MACHINE.controllers


def cpu_cgroup(pid: int | str) -> str:
    """The process's cgroup in the hierarchy that weighs the CPU ("" where there is none)."""
    for line in Path(f"/proc/{pid}/cgroup").read_text().splitlines():
        _, controllers, path = line.split(":", 2)
        if ("cpu" in controllers.split(",") and MACHINE.version == 1) or (controllers == "" and MACHINE.version == 2):
            return path
    return ""


def autogroup_nice(pid: int | str) -> int | None:
    try:
        shown = Path(f"/proc/{pid}/autogroup").read_text()
    except OSError:
        return None
    if not shown.strip():
        return 0    # the root autogroup (a process whose session began before autogroups, as in CI): shown as nothing
    return int(shown.split("nice")[1])


def weight(path: Path) -> int:
    return int((path / ("cpu.weight" if MACHINE.version == 2 else "cpu.shares")).read_text())


@requires_bwrap
def test_daemons_and_sandboxed_commands_run_below_the_person(lab_dir, tmp_path):
    folder = make_lab(lab_dir, tmp_path, [{"step": "sleep", "calls": [
        {"name": "shell", "arguments": {"command": "sleep 4711"}}]}], repeat=True, count=2)
    run_lab("start", "--detach", cwd=folder, check=True)
    try:
        sleepers = lambda: [p for p in psutil.process_iter(["cmdline"]) if p.info["cmdline"] == ["sleep", "4711"]]
        wait_for(lambda: len(sleepers()) == 2, what="both agents' sandboxed sleeps")
        report = lab_status(folder)
        daemons = [report["supervisor_pid"]] + [a["pid"] for a in report["agents"]]
        commands = [p.pid for p in sleepers()]
        person = os.getpid()
        if CPU_CGROUPS:
            lab = MACHINE.parents["cpu"]
            assert weight(lab) == (V2_CPU_WEIGHT if MACHINE.version == 2 else V1_CPU_SHARES)
            assert weight(lab) < weight(lab.parent)      # below the person's tools, its siblings
            for pid in daemons:
                assert cpu_cgroup(pid).endswith(f"/lab/{DAEMONS}"), (pid, cpu_cgroup(pid))
            for pid in commands:
                assert "/lab/agent-" in cpu_cgroup(pid) and "/run-" in cpu_cgroup(pid), cpu_cgroup(pid)
                assert f"/{DAEMONS}/" not in cpu_cgroup(pid)    # beside the daemons, not below them
            assert "/lab" not in cpu_cgroup(person)
        else:
            for pid in daemons:
                assert psutil.Process(pid).nice() == LAB_NICE
            for pid in commands:
                assert psutil.Process(pid).nice() == RUN_NICE
        if autogroup_enabled():
            # each daemon's session is an autogroup of its own: lowered too (it matters where no cgroup weighs it)
            for pid in daemons:
                assert autogroup_nice(pid) == LAB_NICE, pid
            assert autogroup_nice(person) == 0
    finally:
        run_lab("stop", cwd=folder, check=True)


@pytest.mark.skipif(not autogroup_enabled(), reason="the kernel's autogroup scheduling is off")
def test_without_cgroups_a_daemon_lowers_its_nice_and_its_sessions_autogroup():
    script = ("import os; from lab.sandbox.cgroups import Cgroups, lower_own_priority; "
              "print(lower_own_priority(Cgroups())); print(os.getpriority(os.PRIO_PROCESS, 0)); "
              "print(open('/proc/self/autogroup').read().strip())")
    # a session of its own, as the supervisor has: lowering it leaves the caller's autogroup alone
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, start_new_session=True,
                          timeout=60)
    said, nice, group = done.stdout.splitlines()
    assert said.startswith(f"nice {LAB_NICE}") and int(nice) == LAB_NICE and group.endswith(f"nice {LAB_NICE}")
    assert autogroup_nice(os.getpid()) == 0


@pytest.mark.skipif(not CPU_CGROUPS, reason="this machine offers no cgroup CPU control the lab can use")
def test_a_daemons_runs_go_beside_it_not_below_it():
    """A runner lives in lab/daemons; the cgroups it finds for its agent's runs are the lab's, not nested ones."""
    script = ("from lab.sandbox.cgroups import detect, lower_own_priority; print(lower_own_priority(detect())); "
              "detect.cache_clear(); print(detect().parents['cpu'])")
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    joined, parent = done.stdout.splitlines()
    assert joined == f"cpu cgroup {MACHINE.parents['cpu'] / DAEMONS}", done.stderr
    assert Path(parent) == MACHINE.parents["cpu"]
    assert Cgroups().join_daemons() is None
