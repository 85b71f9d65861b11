"""Does the person's side starve while agents keep every core busy? Times a small CPU-bound command from the
person's shell, quiet and beside nine busy loops.

    python bench/bench_priority.py [--busy 9] [--repeat 5] [--work 2000000]

The person's command is `python -c "sum(i * i for i in range(WORK))"` in a session of its own, as a
terminal's shell starts it (with autogroup scheduling every session is a CPU group of its own). The
busy loops run three ways:
- `lab sandbox`: as the agents' sandboxed commands run, through the lab's bwrap sandbox, one per
  agent user, each on its agent's slice of the cores; with the machine's cgroups where it has them
  (the lab's low CPU weight), else the lab's fallback (nice, on each session's autogroup too);
- `lab sandbox, no cgroups`: the same with cgroups turned off, so the fallback is what holds;
- `plain sessions`: as commands ran before the lab lowered them: each in a session of its own at
  the person's priority (bwrap's --new-session made exactly that).
It prints, per way, the median and the worst of the person's command's wall-clock time, and how
many times slower than quiet it is.
"""
from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

BURN = "while True: pass"


def person_command(work: int) -> float:
    """Wall-clock seconds of the person's small CPU-bound command, interpreter start included."""
    start = time.perf_counter()
    subprocess.run([sys.executable, "-c", f"sum(i * i for i in range({work}))"], check=True,
                   start_new_session=True)
    return time.perf_counter() - start


def times(work: int, repeat: int) -> list[float]:
    person_command(work)   # warm the file cache
    return [person_command(work) for _ in range(repeat)]


class SandboxedLoops:
    """`count` busy loops, each an agent's sandboxed shell command, until stopped."""

    def __init__(self, count: int, cgroups=None):
        from lab.sandbox import Bind, Limits
        from lab.sandbox.bwrap import BwrapSandbox

        self.cancel = threading.Event()
        self.folder = tempfile.TemporaryDirectory(prefix="lab-bench-priority-")
        cores = sorted(os.sched_getaffinity(0))
        self.threads = []
        for i in range(count):
            user = f"agent-{i + 1}"
            out = Path(self.folder.name) / user
            out.mkdir()
            sandbox = BwrapSandbox(user=user, cgroups=cgroups)
            sandbox.hand_over(out)
            bind = Bind(out, "/out", writable=True)
            limits = Limits(timeout_s=3600, cpus=(cores[i % len(cores)],))
            self.threads.append(threading.Thread(target=sandbox.run, args=(
                [sys.executable, "-c", BURN], [bind], bind, limits), kwargs={"cancel": self.cancel}, daemon=True))

    def __enter__(self):
        for thread in self.threads:
            thread.start()
        time.sleep(1.0)   # all of them spinning
        return self

    def __exit__(self, *exc):
        self.cancel.set()
        for thread in self.threads:
            thread.join(timeout=30)
        self.folder.cleanup()


class PlainLoops:
    """`count` busy loops, each in a session of its own at the person's priority, until stopped."""

    def __init__(self, count: int):
        self.count = count
        self.procs: list[subprocess.Popen] = []

    def __enter__(self):
        cores = sorted(os.sched_getaffinity(0))
        for i in range(self.count):
            core = cores[i % len(cores)]
            self.procs.append(subprocess.Popen([sys.executable, "-c", BURN], start_new_session=True,
                                               preexec_fn=lambda core=core: os.sched_setaffinity(0, (core,))))
        time.sleep(1.0)
        return self

    def __exit__(self, *exc):
        for proc in self.procs:
            proc.kill()
            proc.wait()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--busy", type=int, default=9, help="busy loops (one per agent)")
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--work", type=int, default=2_000_000)
    args = parser.parse_args()

    from lab.sandbox.cgroups import Cgroups, autogroup_enabled, detect

    print(f"{os.cpu_count()} cores; autogroup scheduling {'on' if autogroup_enabled() else 'off'}; "
          f"lab cgroups: {detect().describe()}", flush=True)
    quiet = times(args.work, args.repeat)
    base = statistics.median(quiet)
    print(f"quiet: median {base:.3f} s, worst {max(quiet):.3f} s", flush=True)
    ways = [("lab sandbox", lambda: SandboxedLoops(args.busy)),
            ("lab sandbox, no cgroups", lambda: SandboxedLoops(args.busy, cgroups=Cgroups())),
            ("plain sessions", lambda: PlainLoops(args.busy))]
    for name, loops in ways:
        with loops():
            got = times(args.work, args.repeat)
        median = statistics.median(got)
        print(f"{args.busy} busy loops, {name}: median {median:.3f} s ({median / base:.1f}x quiet), "
              f"worst {max(got):.3f} s", flush=True)


if __name__ == "__main__":
    main()
