"""Times the person's side of the lab beside nine busy agents: `lab` commands, the TUI's first frame and its quit.

    python bench/bench_responsive.py [--repeats 5] [--warmup 30] [--config lab.toml] [--state .lab]

In a temporary folder with a copy of a prepared testbed (bench_lab.copy_testbed; `lab init` first where
--state has none), it starts the lab (`lab start --detach`: nine agents by default), waits until every
agent has finished a tool call and --warmup seconds more, then times, beside the working agents:
`lab --help`, `lab status`, `lab forum`, `lab score` (the leaderboard), `lab log` (each run --repeats
times, as a person runs them: the venv's `lab` in the lab's folder), and `lab tui` in a 160x48 tmux pane:
launch to the first frame that shows the agents (and the CPU its load line shows), and `q` to the
process's exit. Then it stops the lab and times the same on the quiet machine, on the same state. It
prints the median and max of each, with the machine's load average and busy CPU while measuring.
Goals (issue 11): commands <= 0.3 s on a quiet machine and <= 1 s beside the agents; the TUI's first
frame <= 2 s and its quit <= 1 s beside them.

Python's bytecode caches count: where PYTHONDONTWRITEBYTECODE is set, the commands run without it, with
their caches in the temporary folder (PYTHONPYCACHEPREFIX), as they would after an ordinary install.
"""
from __future__ import annotations

import argparse
import os
import re
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil

from bench_lab import ROOT, copy_testbed, ensure_testbed, lab, wait_until_working
from bench_tui import BenchError, Terminal, first_cpu, wait_exit, wait_ready

COMMANDS = [["--help"], ["status"], ["forum"], ["score"], ["log"]]
TUI_MARKERS = [re.compile(r"\bagent-\d+\b.*\b(running|starting|stopped|crashed|paused)\b"), re.compile(r"CPU\s+\d+%")]


def lab_command() -> list[str]:
    """The `lab` a person types: the console script beside this Python, else `python -m lab`."""
    script = Path(sys.executable).with_name("lab")
    return [str(script)] if script.exists() else [sys.executable, "-m", "lab"]


def command_env(folder: Path) -> dict[str, str]:
    env = dict(os.environ)
    if env.pop("PYTHONDONTWRITEBYTECODE", None):
        env["PYTHONPYCACHEPREFIX"] = str(folder / "pycache")
    return env


class Busy:
    """The machine's load average and busy CPU (% of all cores) over a stretch of measuring."""

    def __enter__(self):
        psutil.cpu_percent(interval=None)
        self.load = os.getloadavg()[0]
        return self

    def __exit__(self, *exc):
        self.cpu = psutil.cpu_percent(interval=None)

    def __str__(self):
        return f"load average {self.load:.1f}, CPU busy {self.cpu:.0f}%"


def time_commands(folder: Path, env: dict, repeats: int) -> dict[str, list[float]]:
    lab_cmd = lab_command()
    times: dict[str, list[float]] = {}
    for args in COMMANDS:
        name = " ".join(args)
        subprocess.run([*lab_cmd, *args], cwd=folder, env=env, capture_output=True)   # caches warm, as in use
        for _ in range(repeats):
            begin = time.perf_counter()
            done = subprocess.run([*lab_cmd, *args], cwd=folder, env=env, capture_output=True, text=True)
            elapsed = time.perf_counter() - begin
            if done.returncode != 0:
                raise BenchError(f"lab {name} exited {done.returncode}: {done.stderr.strip()[-500:]}")
            times.setdefault(name, []).append(elapsed)
    return times


def time_tui(folder: Path, env: dict, repeats: int, timeout: float) -> tuple[list[float], list[float], list[str]]:
    term = Terminal(folder)
    # the pane's shell gets this process's environment: change it there as `env` changes it
    changes = [f"unset {k}" for k in os.environ if k not in env]
    changes += [f"export {k}={shlex.quote(v)}" for k, v in env.items() if os.environ.get(k) != v]
    command = "; ".join([*changes, f"exec {shlex.join(lab_command())} tui"])
    starts, quits, cpus = [], [], []
    try:
        for i in range(repeats):
            name = f"tui{i}"
            launched = time.perf_counter()
            term.start(name, command, folder)
            elapsed, _seen = wait_ready(term, name, launched, TUI_MARKERS, [], timeout)
            starts.append(elapsed)
            cpus.append(first_cpu(term.screen(name)) or "?")
            time.sleep(1.0)                 # past the first refreshes, as a person would be
            quits.append(wait_exit(term, name, timeout))
            term.stop(name)
    finally:
        term.close()
    return starts, quits, cpus


def report(title: str, busy: Busy, commands: dict[str, list[float]], tui: tuple, goal_s: float) -> None:
    print(f"{title} ({busy}):")
    for name, values in commands.items():
        print(f"  lab {name:<8} median {statistics.median(values):.2f} s, max {max(values):.2f} s "
              f"over {len(values)} (goal <= {goal_s:g} s)")
    starts, quits, cpus = tui
    print(f"  lab tui  first frame with the agents: median {statistics.median(starts):.2f} s, max {max(starts):.2f} s "
          f"(load line CPU on it: {', '.join(cpus)}); q to exit: median {statistics.median(quits):.2f} s, "
          f"max {max(quits):.2f} s over {len(starts)}", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5, help="runs of each command in each phase")
    parser.add_argument("--tui-repeats", type=int, default=3, help="TUI launches in each phase")
    parser.add_argument("--warmup", type=float, default=30, help="seconds of agents' work before measuring")
    parser.add_argument("--config", type=Path, default=ROOT / "lab.toml")
    parser.add_argument("--state", type=Path, default=ROOT / ".lab")
    parser.add_argument("--timeout", type=float, default=60.0, help="give up on a TUI launch after this long")
    args = parser.parse_args()

    ensure_testbed(args.config, args.state)
    print(f"machine: {psutil.cpu_count()} cores, {psutil.virtual_memory().total / 2**30:.0f} GiB; "
          f"lab: {' '.join(lab_command())}", flush=True)
    with tempfile.TemporaryDirectory(prefix="lab-bench-responsive-") as tmp:
        folder = Path(tmp)
        copy_testbed(args.state, folder / ".lab")
        shutil.copy(args.config, folder / "lab.toml")
        env = command_env(folder)
        from lab import config
        from lab.store import open_db

        names = config.load(folder / "lab.toml").agents.names
        began = time.time()
        lab("start", "--detach", cwd=folder)
        try:
            db = open_db(folder / ".lab" / "lab.db")
            working = wait_until_working(db, names, began)
            db.conn.close()
            print(f"{len(names)} agents working {max(working.values()):.1f} s after `lab start`; "
                  f"{args.warmup:g} s more before measuring", flush=True)
            time.sleep(args.warmup)
            with Busy() as busy:
                commands = time_commands(folder, env, args.repeats)
                tui = time_tui(folder, env, args.tui_repeats, args.timeout)
            report(f"beside {len(names)} working agents", busy, commands, tui, 1.0)
        finally:
            stop_began = time.monotonic()
            lab("stop", cwd=folder)
            print(f"lab stop: {time.monotonic() - stop_began:.1f} s", flush=True)
        time.sleep(2.0)
        with Busy() as busy:
            commands = time_commands(folder, env, args.repeats)
            tui = time_tui(folder, env, args.tui_repeats, args.timeout)
        report("with the lab stopped", busy, commands, tui, 0.3)


if __name__ == "__main__":
    try:
        main()
    except BenchError as exc:
        sys.exit(f"bench_responsive: {exc}")
