"""Times `lab stop` while every agent is in the middle of a CPU-bound sandboxed command, the slow case.

    python bench/bench_stop.py [--repeat 3] [--agents 9] [--grace 10] [--config lab.toml] [--state .lab]

Each round starts a lab of scripted agents in a temporary folder (the testbed copied from --state,
prepared with `lab init` first if missing), waits until each agent runs `while True: pass` in its
sandbox, then runs `lab stop` and prints how long it took, when the first and the last runner and
the supervisor were gone, and checks that nothing of the lab is left and every agent is recorded
as stopped. A running tool call gets agents.grace_s (--grace) before it is killed, so a stop takes
at least that long: what is measured is the rest.
"""
from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

import psutil

from bench_lab import LAB, ROOT, copy_testbed, ensure_testbed, lab

BUSY = "python3 -c 'while True: pass'"


def lab_processes(marker: str) -> dict[int, str]:
    found = {}
    for proc in psutil.process_iter(["cmdline"]):
        cmd = proc.info["cmdline"] or []
        if marker in cmd:
            found[proc.pid] = "supervisor" if "lab.agents.supervisor" in cmd else "runner"
    return found


def busy_commands() -> set[int]:
    return {p.pid for p in psutil.process_iter(["cmdline"]) if (p.info["cmdline"] or [])[-2:] == ["-c", "while True: pass"]}


def alive(pids) -> set[int]:
    found = set()
    for pid in pids:
        try:
            if psutil.Process(pid).status() != psutil.STATUS_ZOMBIE:
                found.add(pid)
        except psutil.Error:
            pass
    return found


def one_stop(config: Path, state: Path, agents: int, grace: float) -> dict[str, float]:
    with tempfile.TemporaryDirectory(prefix="lab-bench-stop-") as tmp:
        folder = Path(tmp)
        copy_testbed(state, folder / ".lab")
        text = config.read_text().split("\n[agents]")[0]
        (folder / "lab.toml").write_text(
            text + f'\n[agents]\ncount = {agents}\nbackend = "scripted"\nscript = "script.json"\ngrace_s = {grace}\n'
                   "shell_timeout_s = 3600\n")
        (folder / "script.json").write_text(json.dumps({"turns": [{"step": "busy", "calls": [
            {"name": "shell", "arguments": {"command": BUSY}}]}], "repeat": True}))
        before = busy_commands()
        lab("start", "--detach", cwd=folder)
        deadline = time.monotonic() + 300
        while len(busy_commands() - before) < agents:
            if time.monotonic() > deadline:
                raise SystemExit("the agents did not all start their commands within 300 s")
            time.sleep(0.2)
        time.sleep(1.0)
        marker = str(folder / "lab.toml")
        procs = lab_processes(marker)
        commands = busy_commands() - before
        start = time.monotonic()
        cli = subprocess.Popen([*LAB, "stop"], cwd=folder, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        gone: dict[int, float] = {}
        while cli.poll() is None:
            running = alive(procs)
            for pid in procs:
                if pid not in running and pid not in gone:
                    gone[pid] = time.monotonic() - start
            time.sleep(0.02)
        took = time.monotonic() - start
        if cli.returncode != 0:
            raise SystemExit(f"lab stop exited {cli.returncode}: {cli.stderr}")
        status = json.loads(subprocess.run([*LAB, "status", "--json"], cwd=folder, capture_output=True,
                                           text=True).stdout)
        left = alive(set(lab_processes(marker)) | commands)
        runners = [t for pid, t in gone.items() if procs[pid] == "runner"]
        return {"stop_s": took, "first_runner_s": min(runners, default=float("nan")),
                "last_runner_s": max(runners, default=float("nan")),
                "supervisor_s": next((t for pid, t in gone.items() if procs[pid] == "supervisor"), float("nan")),
                "left": len(left),
                "stopped": sum(a["state"] == "stopped" for a in status["agents"])}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--agents", type=int, default=9)
    parser.add_argument("--grace", type=float, default=10)
    parser.add_argument("--config", type=Path, default=ROOT / "lab.toml")
    parser.add_argument("--state", type=Path, default=ROOT / ".lab")
    args = parser.parse_args()
    ensure_testbed(args.config, args.state)
    rounds = []
    for i in range(args.repeat):
        r = one_stop(args.config, args.state, args.agents, args.grace)
        rounds.append(r)
        print(f"round {i + 1}: `lab stop` {r['stop_s']:.2f} s (grace {args.grace:g} s); runners gone "
              f"{r['first_runner_s']:.2f}-{r['last_runner_s']:.2f} s, supervisor {r['supervisor_s']:.2f} s; "
              f"{r['stopped']}/{args.agents} recorded stopped, {r['left']} process(es) left", flush=True)
    print(f"median of {len(rounds)}: `lab stop` {statistics.median(r['stop_s'] for r in rounds):.2f} s, "
          f"{statistics.median(r['stop_s'] for r in rounds) - args.grace:.2f} s beyond the grace period")


if __name__ == "__main__":
    main()
