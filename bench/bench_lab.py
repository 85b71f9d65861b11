"""Runs the whole lab on this machine and prints what a person would want to know about it.

    python bench/bench_lab.py [--minutes 30] [--config lab.toml] [--state .lab]

Figures: time from `lab start` to every agent working; the supervisor's and the runners' own CPU
and memory beside the experiments they run; forum writes per second with nine writers; experiments
per hour; the lab's best dev PGR at checkpoints (10 and 30 minutes by default). The lab runs in a
temporary folder whose testbed is copied from --state (prepared with `lab init` first if missing).
"""
from __future__ import annotations

import argparse
import json
import multiprocessing
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parents[1]
LAB = [sys.executable, "-m", "lab.cli"]


def lab(*args: str, cwd: Path) -> str:
    return subprocess.run([*LAB, *args], cwd=cwd, check=True, capture_output=True, text=True).stdout


def copy_testbed(state: Path, dest: Path) -> None:
    skip = {"lab.db", "lab.db-wal", "lab.db-shm", "run", "worktrees"}
    shutil.copytree(state, dest, ignore=lambda src, names: [n for n in names if n in skip])


def _writer(path: str, author: str, count: int) -> None:
    from lab.store import forum, open_db

    db = open_db(path)
    for i in range(count):
        forum.post(db, author, "observation", f"{author} finding {i}", "a body of a typical length " * 8,
                   None, {"pgr": 0.1})
    db.conn.close()


def forum_writes_per_second(folder: Path, writers: int = 9, each: int = 300) -> float:
    from lab.store import open_db

    path = str(folder / "forum-bench.db")
    open_db(path).conn.close()
    ctx = multiprocessing.get_context("spawn")
    procs = [ctx.Process(target=_writer, args=(path, f"agent-{i}", each)) for i in range(writers)]
    start = time.perf_counter()
    for p in procs:
        p.start()
    for p in procs:
        p.join()
    elapsed = time.perf_counter() - start
    assert all(p.exitcode == 0 for p in procs)
    return writers * each / elapsed


def lab_processes(folder: Path) -> dict[str, list[psutil.Process]]:
    marker = str(folder / "lab.toml")
    found: dict[str, list[psutil.Process]] = {"supervisor": [], "runner": []}
    for p in psutil.process_iter(["cmdline"]):
        cmd = p.info["cmdline"] or []
        if marker in cmd:
            if "lab.agents.supervisor" in cmd:
                found["supervisor"].append(p)
            elif "lab.agents.runner" in cmd:
                found["runner"].append(p)
    return found


def busy_cpu_s() -> float:
    """CPU seconds the whole machine has spent busy since boot."""
    t = psutil.cpu_times()
    return t.user + t.nice + t.system + getattr(t, "irq", 0) + getattr(t, "softirq", 0)


def overhead(folder: Path) -> dict[str, float]:
    """Own CPU seconds and memory of the lab's processes (supervisor and runners) now."""
    out = {"supervisor_cpu_s": 0.0, "supervisor_rss_mb": 0.0, "runners_cpu_s": 0.0, "runners_rss_mb": 0.0}
    for kind, procs in lab_processes(folder).items():
        name = "runners" if kind == "runner" else "supervisor"
        for p in procs:
            try:
                t, rss = p.cpu_times(), p.memory_info().rss / 2**20
            except psutil.Error:
                continue
            out[f"{name}_cpu_s"] += t.user + t.system
            out[f"{name}_rss_mb"] += rss
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=30)
    parser.add_argument("--checkpoints", default="10,30", help="minutes at which to read the best PGR")
    parser.add_argument("--config", type=Path, default=ROOT / "lab.toml")
    parser.add_argument("--state", type=Path, default=ROOT / ".lab")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    parser.add_argument("--no-baselines", action="store_true", help="start without the baselines scored")
    args = parser.parse_args()
    checkpoints = sorted(float(c) for c in args.checkpoints.split(",") if float(c) <= args.minutes)

    if not (args.state / "private" / "testbed.json").exists():
        lab("--config", str(args.config), "init", cwd=ROOT)
    figures: dict = {"machine": f"{psutil.cpu_count()} cores, {psutil.virtual_memory().total / 2**30:.0f} GiB"}
    with tempfile.TemporaryDirectory(prefix="lab-bench-") as tmp:
        folder = Path(tmp)
        copy_testbed(args.state, folder / ".lab")
        shutil.copy(args.config, folder / "lab.toml")
        figures["forum_writes_per_s_nine_writers"] = round(forum_writes_per_second(folder), 1)
        print(f"forum writes per second, nine writers: {figures['forum_writes_per_s_nine_writers']}", flush=True)
        if not args.no_baselines:  # as `make lab` does: the baselines are on the leaderboard when agents start
            begin = time.monotonic()
            lab("score", "--baselines", cwd=folder)
            figures["baselines_s"] = round(time.monotonic() - begin, 1)
            print(f"lab score --baselines: {figures['baselines_s']} s", flush=True)

        start, busy_start = time.monotonic(), busy_cpu_s()
        lab("start", cwd=folder)
        count = None
        while True:
            report = json.loads(lab("status", "--json", cwd=folder))
            count = len(report["agents"])
            working = [a for a in report["agents"] if a["state"] == "running" and a["step"]]
            if count and len(working) == count:
                break
            time.sleep(0.5)
        figures["start_to_all_working_s"] = round(time.monotonic() - start, 1)
        print(f"lab start to {count} agents working: {figures['start_to_all_working_s']} s", flush=True)

        best_at: dict[str, float | None] = {}
        samples = []
        for minute in sorted(set(checkpoints + [args.minutes])):
            while time.monotonic() - start < minute * 60:
                time.sleep(min(30.0, max(0.1, minute * 60 - (time.monotonic() - start))))
                samples.append(overhead(folder))
            report = json.loads(lab("status", "--json", cwd=folder))
            best_at[f"{minute:g}"] = report["lab"]["best_pgr"]
            print(f"after {minute:g} min: best dev PGR {report['lab']['best_pgr']}, "
                  f"{report['lab']['experiments']} experiments, {report['lab']['submissions']} submissions, "
                  f"{report['lab']['forum_posts']} posts", flush=True)
        elapsed_h = (time.monotonic() - start) / 3600
        final = overhead(folder)
        busy = busy_cpu_s() - busy_start
        report = json.loads(lab("status", "--json", cwd=folder))
        figures.update({
            "agents": count, "minutes": args.minutes, "best_dev_pgr_at_minutes": best_at,
            "experiments_per_hour": round(report["lab"]["experiments"] / elapsed_h, 1),
            "submissions": report["lab"]["submissions"], "forum_posts": report["lab"]["forum_posts"],
            "states": {a["name"]: a["state"] for a in report["agents"]},
            "machine_busy_cpu_s": round(busy, 1),
            "supervisor_cpu_s": round(final["supervisor_cpu_s"], 1),
            "runners_cpu_s": round(final["runners_cpu_s"], 1),
            # everything else the machine did: the sandboxed experiments and the scorer's method runs
            "experiments_and_scoring_cpu_s": round(busy - final["supervisor_cpu_s"] - final["runners_cpu_s"], 1),
            "lab_overhead_share": round((final["supervisor_cpu_s"] + final["runners_cpu_s"]) / max(busy, 1e-9), 3),
            "supervisor_rss_mb": round(sum(s["supervisor_rss_mb"] for s in samples) / max(1, len(samples)), 1),
            "runners_rss_mb_total": round(sum(s["runners_rss_mb"] for s in samples) / max(1, len(samples)), 1),
        })
        board = lab("score", cwd=folder)
        stop_start = time.monotonic()
        lab("stop", cwd=folder)
        figures["stop_s"] = round(time.monotonic() - stop_start, 1)
        figures["processes_left"] = sum(len(v) for v in lab_processes(folder).values())
    print(json.dumps(figures, indent=2))
    print(board)
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2) + "\n")


if __name__ == "__main__":
    main()
