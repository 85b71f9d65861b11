"""The exec-time launcher of a limited run: joins the run's cgroups, sets its rlimits, priority and CPUs, asks to
die with its parent, then execs the command. Stdlib only, run by path with `python -I -S`, never imported by the lab.

    python -I -S launch.py REPORT PARENT NICE CPUS PROCS RLIMITS -- ARGV...

A threaded process must not run Python code between fork and exec: CPython then forks holding the GIL, through
every fork handler (OpenBLAS's waits for its thread pool), and a thread that waits for the GIL at that moment
deadlocks the process. The lab therefore starts this file with no preexec_fn, by CPython's vfork path, and the
set-up happens here, in a process of its own, before the command's exec.

The fields, "-" for none: REPORT a descriptor for what failed; PARENT the pid of the lab's process, whose death
kills the run; NICE a nice value; CPUS cpu numbers, comma-separated; PROCS cgroup.procs files to join, comma-separated;
RLIMITS NAME=SOFT:HARD, comma-separated (NAME as in RLIMIT_NAME). No json: its import (re) would double the start.
What fails is written to REPORT, one line, before exit code 125; REPORT closes at the command's exec, so the command
cannot write there, and the lab reads an empty report as a set-up that held.
"""
import os
import resource
import sys

PR_SET_PDEATHSIG = 1
SIGKILL = 9      # signal.SIGKILL on Linux; the signal module's import (enum) would cost more than the rest
FAILED = 125


def _items(field: str) -> list[str]:
    return [] if field == "-" else field.split(",")


def set_up(parent: int, nice: str, cpus: str, procs: str, rlimits: str) -> None:
    for path in _items(procs):
        with open(path, "w") as handle:
            handle.write("0")
    for item in _items(rlimits):
        name, _, bounds = item.partition("=")
        soft, _, hard = bounds.partition(":")
        resource.setrlimit(getattr(resource, f"RLIMIT_{name}"), (int(soft), int(hard)))
    if nice != "-":
        os.setpriority(os.PRIO_PROCESS, 0, int(nice))
    if cpus != "-":
        os.sched_setaffinity(0, [int(c) for c in _items(cpus)])
    import ctypes

    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_PDEATHSIG) failed")
    if os.getppid() != parent:     # the parent died before the line above: so would the run
        raise ProcessLookupError(f"the lab's process {parent} ended before the run started")


def main() -> None:
    report = int(sys.argv[1])
    try:
        os.set_inheritable(report, False)     # closed at exec
        parent, nice, cpus, procs, rlimits, separator, *argv = sys.argv[2:]
        if separator != "--" or not argv:
            raise ValueError(f"usage: {__doc__.splitlines()[3].strip()}")
        set_up(int(parent), nice, cpus, procs, rlimits)
        os.execvp(argv[0], argv)
    except (OSError, ValueError, AttributeError) as exc:
        os.write(report, f"{type(exc).__name__}: {exc}".encode(errors="replace")[:2000])
        os._exit(FAILED)


if __name__ == "__main__":
    main()
