"""How long a healthy method run goes without using CPU: the measure behind `[scorer] stall_s`.

    python bench/bench_stall.py --config lab.toml [--busy 4] [--seeds 2]

Runs each of the task's baseline methods (lab/scaffold/template/methods, what `lab score --baselines` scores) in the
scorer's sandbox under the scorer's limits, as the scorer runs them (lowered below the person's work), beside `--busy`
processes that keep every core busy at the person's priority, as nine agents' experiments would. Meanwhile it reads
the run's CPU time, and the time its threads waited on a run queue for a CPU, every 0.1 s and reports, per run, the
longest stretch in which the run used under 1% of a core (lab.sandbox.stall.MIN_CPU_SHARE), by CPU time alone and by
CPU time and waits together (the stall rule's measure): the longest a healthy run looked hung. The stall window must be
many times the worst of these. Needs `lab init` done for --config, root and bwrap.
"""
from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SAMPLE_S = 0.1
BURN = "while True: pass"


def longest_quiet_s(samples: list[tuple[float, float]], share: float) -> float:
    """The longest interval between two samples (time, CPU seconds) over which the CPU used was under `share` of it."""
    longest = 0.0
    for i, (t0, c0) in enumerate(samples):
        for t1, c1 in samples[i + 1:]:
            if t1 - t0 > longest and c1 - c0 < share * (t1 - t0):
                longest = t1 - t0
    return longest


def run_cpu_s(uid: int) -> tuple[float, set[int]]:
    """CPU time of this process's descendants running as `uid` (the sandboxed method and its children), and their
    pids."""
    from lab.sandbox.cgroups import _descendants, tree_cpu_seconds

    mine = set(_descendants(os.getpid()))
    owned = {pid for pid in mine if _uid_of(pid) == uid}
    roots = [pid for pid in owned if _parent_of(pid) not in owned]
    return sum(tree_cpu_seconds(pid) for pid in roots), owned


def _status(pid: int) -> dict[str, str]:
    try:
        lines = Path(f"/proc/{pid}/status").read_text().splitlines()
    except OSError:
        return {}
    return dict(line.split(":\t", 1) for line in lines if ":\t" in line)


def _uid_of(pid: int) -> int | None:
    uid = _status(pid).get("Uid")
    return int(uid.split()[0]) if uid else None


def _parent_of(pid: int) -> int | None:
    parent = _status(pid).get("PPid")
    return int(parent) if parent else None


def measure_run(runner, method: Path, entry: str, data: Path, seed: int,
                uid: int) -> tuple[float, float, float, bool, str]:
    """(longest stretch under 1% by CPU alone, by CPU and waits, duration, ok, why not) of one run, sampled from
    beside it."""
    from lab.sandbox.stall import MIN_CPU_SHARE, runqueue_waits

    outcome = {}
    thread = threading.Thread(target=lambda: outcome.update(run=runner.run(method, entry, data, seed, "dev")))
    start = time.monotonic()
    thread.start()
    samples, both, peak, waits, waited = [], [], 0.0, {}, 0.0
    while thread.is_alive():
        cpu, pids = run_cpu_s(uid)
        peak = max(peak, cpu)     # the tree's total drops as the run's processes end: keep the most
        for tid, wait in runqueue_waits(pids).items():
            waited += max(0.0, wait - waits.get(tid, 0.0))
            waits[tid] = wait
        now = time.monotonic() - start
        samples.append((now, peak))
        both.append((now, peak + waited))
        time.sleep(SAMPLE_S)
    thread.join()
    run = outcome["run"]
    return (longest_quiet_s(samples, MIN_CPU_SHARE), longest_quiet_s(both, MIN_CPU_SHARE),
            time.monotonic() - start, run.ok, run.error or "")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", type=Path, default=ROOT / "lab.toml")
    parser.add_argument("--busy", type=int, default=os.cpu_count() or 1, help="busy processes beside the runs")
    parser.add_argument("--seeds", type=int, default=2)
    args = parser.parse_args()
    from lab import config
    from lab.scaffold import TEMPLATE, baselines_for
    from lab.sandbox import make_sandbox
    from lab.scorer.runner import MethodRunner, limits_from
    from lab.task.testbed import Testbed

    cfg = config.load(args.config)
    sandbox = make_sandbox(cfg.lab.sandbox, warn=lambda line: None)
    if sandbox.uid is None:
        sys.exit("bench_stall needs the lab to run as root, each run under a uid of its own (to find its processes)")
    limits = limits_from(cfg.scorer)
    data = Testbed(cfg.state_dir, cfg.task).view(cfg.task.dev)
    busy = [subprocess.Popen([sys.executable, "-c", BURN]) for _ in range(args.busy)]
    worst = worst_cpu_alone = 0.0
    print(f"{os.cpu_count()} cores, {args.busy} busy processes beside each run, load average "
          f"{os.getloadavg()[0]:.1f}; sandbox {sandbox.name}; stall_s now {limits.stall_s:g} s")
    print(f"{'method':<12} {'seed':>4} {'run s':>7} {'longest under 1% of a core: CPU alone':>38} "
          f"{'CPU and waits':>14}")
    try:
        with tempfile.TemporaryDirectory(prefix="lab-bench-stall-") as tmp:
            method = Path(tmp) / "method"
            shutil.copytree(TEMPLATE, method, ignore=shutil.ignore_patterns("__pycache__"))
            os.chmod(tmp, 0o755)
            runner = MethodRunner(sandbox, limits, Path(tmp) / "scratch")
            for name in baselines_for(cfg.task):
                for seed in range(args.seeds):
                    alone, quiet, took, ok, why = measure_run(runner, method, f"methods/{name}.py", data, seed,
                                                              sandbox.uid)
                    worst, worst_cpu_alone = max(worst, quiet), max(worst_cpu_alone, alone)
                    print(f"{name:<12} {seed:>4} {took:>7.1f} {alone:>36.1f} s {quiet:>12.1f} s"
                          + ("" if ok else f"  failed: {why}"), flush=True)
    finally:
        for proc in busy:
            proc.kill()
            proc.wait()
    print(f"longest stretch a healthy run used under 1% of a core: {worst_cpu_alone:.1f} s by CPU time alone, "
          f"{worst:.1f} s by CPU time and waits for a CPU, the stall rule's measure (stall_s = {limits.stall_s:g} s "
          f"is {limits.stall_s / max(worst, SAMPLE_S):.0f} x that)")


if __name__ == "__main__":
    main()
