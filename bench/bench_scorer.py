"""Times `lab init` (cold and cached), one method run, and one full submission on this machine.

    python bench/bench_scorer.py [--config lab.toml]

Works in a fresh temporary state folder, so the cold init really computes every feature.
"""
from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parents[1]


def timed_lab(*args: str, cwd: Path) -> float:
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "lab.cli", *args], cwd=cwd, check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", type=Path, default=ROOT / "lab.toml")
    args = parser.parse_args()
    from lab import config
    from lab.sandbox import make_sandbox
    from lab.scaffold import TEMPLATE
    from lab.scorer.runner import MethodRunner
    from lab.scorer.scorer import Scorer
    from lab.store import open_db

    print(f"machine: {psutil.cpu_count()} cores, {psutil.virtual_memory().total / 2**30:.0f} GiB; "
          f"config {args.config}")
    with tempfile.TemporaryDirectory(prefix="lab-bench-") as tmp:
        folder = Path(tmp)
        shutil.copy(args.config, folder / "lab.toml")
        cold = timed_lab("init", cwd=folder)
        print(f"lab init, cold (features, teachers, ceilings): {cold:7.1f} s")
        cached = timed_lab("init", cwd=folder)
        print(f"lab init, cached:                              {cached:7.1f} s")

        cfg = config.load(folder / "lab.toml")
        scorer = Scorer(cfg, open_db(cfg.state_dir / "lab.db"), make_sandbox(cfg.lab.sandbox), progress=False)
        dev = cfg.task.dev
        start = time.perf_counter()
        runner = MethodRunner(scorer.sandbox, scorer.limits, scorer.scratch)
        run = runner.run(TEMPLATE, "methods/vanilla.py", scorer.testbed.view(dev), 0, dev)
        assert run.ok, run.error
        print(f"one method run (vanilla, {dev}, sandboxed):  {time.perf_counter() - start:7.1f} s")
        result = scorer.score_path(TEMPLATE / "methods" / "vanilla.py")
        checks = cfg.scorer.check_seeds * len(cfg.task.checked)
        runs = cfg.scorer.seeds * len(cfg.task.scored) + checks
        print(f"one full submission ({runs} runs: {cfg.scorer.seeds} seeds x {len(cfg.task.scored)} sets "
              f"+ {checks} second-teacher, {cfg.scorer.parallel} at a time): "
              f"{result.duration_s:.1f} s")
        print(f"vanilla dev PGR {result.dev.pgr:+.3f} ± {result.dev.pgr_se:.3f}")


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    main()
