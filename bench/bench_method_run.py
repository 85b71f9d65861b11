"""Times one method run in the scorer's sandbox, and what the sandbox itself costs, on a prepared testbed.

    python bench/bench_method_run.py [--config lab.toml] [--repeat 5]

For the vanilla baseline, a recipe as the researcher agents write it (w2s/recipe.py, logconf loss,
self-training) and the elicit baseline (which runs the strong model): the median wall time of a
run in the scorer's sandbox (one thread, as `lab` scores) and of the same run outside it. Then the
sandbox alone: `python -c pass` inside and outside. Needs `lab init` done for --config.
"""
from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RECIPE = {"loss": "logconf", "keep": 0.8, "self_train_rounds": 1}


def median_s(run, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", type=Path, default=ROOT / "lab.toml")
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    from lab import config
    from lab.agents.backends import recipes
    from lab.sandbox import Bind, make_sandbox
    from lab.threads import thread_env
    from lab.scaffold import TEMPLATE
    from lab.scorer.runner import MethodRunner, limits_from
    from lab.task.testbed import Testbed

    cfg = config.load(args.config)
    sandbox = make_sandbox(cfg.lab.sandbox)
    limits = limits_from(cfg.scorer)
    testbed = Testbed(cfg.state_dir, cfg.task)
    data = testbed.view(cfg.task.dev)
    print(f"{os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f}; sandbox {sandbox.name}; "
          f"median of {args.repeat}")
    with tempfile.TemporaryDirectory(prefix="lab-bench-") as tmp:
        method = Path(tmp) / "method"
        shutil.copytree(TEMPLATE, method, ignore=shutil.ignore_patterns("__pycache__"))
        (method / "recipe.json").write_text(recipes.recipe_json(RECIPE))
        (method / "method.py").write_text(recipes.METHOD_PY)
        os.chmod(tmp, 0o755)
        runner = MethodRunner(sandbox, limits, Path(tmp) / "scratch")
        outside_env = {**os.environ, **thread_env(limits.threads)}   # the same threads as in the sandbox
        entries = {"vanilla": "methods/vanilla.py", f"recipe {recipes.describe(RECIPE)}": "method.py",
                   "elicit": "methods/elicit.py"}
        for name, entry in entries.items():
            def sandboxed():
                run = runner.run(method, entry, data, 0, cfg.task.dev)
                assert run.ok, run.error

            def outside():
                subprocess.run([sys.executable, str(method / entry), "--data", str(data), "--out",
                                str(Path(tmp) / "p.jsonl"), "--seed", "0"], check=True, env=outside_env, cwd=method)
            print(f"{name:55s} sandboxed {median_s(sandboxed, args.repeat):5.2f} s   "
                  f"outside {median_s(outside, args.repeat):5.2f} s", flush=True)
        code = Bind(method, "/method")

        def bare_sandboxed():
            assert sandbox.run([sys.executable, "-c", "pass"], [code], cwd=code, limits=limits).ok
        print(f"{'python -c pass':55s} sandboxed {median_s(bare_sandboxed, args.repeat):5.2f} s   outside "
              f"{median_s(lambda: subprocess.run([sys.executable, '-c', 'pass'], check=True), args.repeat):5.2f} s")


if __name__ == "__main__":
    main()
