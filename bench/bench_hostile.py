"""What each hostile agent gets, and what it costs everyone else: one table for the attacks of issue 20.

    python bench/bench_hostile.py [--only git,disk,scorer] [--json out.json]

Each part runs its attacks through real parts (a real lab, real git, real sandboxes, the real scorer) in a folder of
its own, and reports per attack what the attacking agent got and what it cost the others:
- git (bench/hostile_git.py): a compression bomb committed and published; the time and peak memory of `lab log`,
  `lab show`, the TUI's agent screen and `lab report` against a research repository that holds one;
- disk (bench/hostile_disk.py): an agent writing past its disk quota, and publishing then resetting large commits;
- scorer (bench/hostile_scorer.py): a method that answers fast once and then only sleeps, and one that burns its CPU
  limit on every run, each submitted while other agents submit vanilla; how long their submissions took against an
  idle scorer.
"""
from __future__ import annotations

import argparse
import importlib
import json
import sys
import tempfile
import textwrap
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

PARTS = ("git", "disk", "scorer")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", default=",".join(PARTS), help=f"comma-separated parts of {', '.join(PARTS)}")
    parser.add_argument("--json", type=Path, help="also write the rows here")
    args = parser.parse_args()
    parts = [p.strip() for p in args.only.split(",") if p.strip()]
    unknown = sorted(set(parts) - set(PARTS))
    if unknown:
        parser.error(f"unknown part {', '.join(unknown)}: expected some of {', '.join(PARTS)}")
    rows = []
    for part in parts:
        module = importlib.import_module(f"hostile_{part}")
        start = time.monotonic()
        with tempfile.TemporaryDirectory(prefix=f"hostile-{part}-") as work:
            for row in module.measure(Path(work)):
                rows.append({"part": part, **row})
        print(f"{part}: measured in {time.monotonic() - start:.0f} s", file=sys.stderr)
    width = 100
    for row in rows:
        print(f"\n[{row['part']}] {row['attack']}")
        print(textwrap.indent(textwrap.fill(f"the agent got: {row['agent_got']}", width), "  "))
        print(textwrap.indent(textwrap.fill(f"it cost the others: {row['cost']}", width), "  "))
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
