"""Times `lab start --detach` to every agent working, several times, on a copy of a prepared testbed.

    python bench/bench_start.py [--repeat 5] [--config lab.toml] [--state .lab]

Each round starts the lab in a fresh temporary folder (no worktrees yet, as at a first start), waits
until every agent has finished its first tool call, and stops it. It prints, per round, when
`lab start` returned (the supervisor ready) and when the first and the last agent were working,
with the machine's load average; then the medians. bench_lab.py measures the same once per run.
"""
from __future__ import annotations

import argparse
import os
import shutil
import statistics
import tempfile
import time
from pathlib import Path

from bench_lab import ROOT, copy_testbed, ensure_testbed, lab, wait_until_working


def one_start(config: Path, state: Path, timeout_s: float = 300) -> dict[str, float]:
    from lab import config as configs
    from lab.store import open_db

    with tempfile.TemporaryDirectory(prefix="lab-bench-start-") as tmp:
        folder = Path(tmp)
        copy_testbed(state, folder / ".lab")
        shutil.copy(config, folder / "lab.toml")
        names = configs.load(folder / "lab.toml").agents.names
        load = os.getloadavg()[0]
        start, began = time.monotonic(), time.time()
        lab("start", "--detach", cwd=folder)
        returned = time.monotonic() - start
        db = open_db(folder / ".lab" / "lab.db")
        try:
            working = wait_until_working(db, names, began, timeout_s)
        finally:
            db.conn.close()
            lab("stop", cwd=folder)
        return {"load": load, "returned_s": returned, "first_s": min(working.values()), "all_s": max(working.values())}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--config", type=Path, default=ROOT / "lab.toml")
    parser.add_argument("--state", type=Path, default=ROOT / ".lab")
    args = parser.parse_args()
    ensure_testbed(args.config, args.state)
    rounds = []
    for i in range(args.repeat):
        r = one_start(args.config, args.state)
        rounds.append(r)
        print(f"round {i + 1}: load {r['load']:.1f}; `lab start` returned {r['returned_s']:.2f} s; agents working: "
              f"first {r['first_s']:.2f} s, all {r['all_s']:.2f} s", flush=True)
    median = {key: statistics.median(r[key] for r in rounds) for key in ("returned_s", "first_s", "all_s")}
    print(f"median of {len(rounds)}: returned {median['returned_s']:.2f} s, first {median['first_s']:.2f} s, "
          f"all {median['all_s']:.2f} s")


if __name__ == "__main__":
    main()
