"""The sandbox seam: what a run asks for (binds, limits) and what it gives back."""
from __future__ import annotations

import ctypes
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from lab.errors import SandboxError
from lab.sandbox.cgroups import (Cgroups, RunCgroup, autogroup_enabled, lower_autogroups, run_nice, tree_cpu_seconds,
                                 tree_pids)
from lab.sandbox.stall import StallWatch
from lab.sandbox.users import SCORER

TAIL_BYTES = 4000
POLL_S = 0.2
RLIMIT_CPU_SLACK_S = 2   # each process's own CPU rlimit, a kernel-enforced bound behind the run's total


@dataclass(frozen=True)
class Bind:
    """A host folder made visible to the sandboxed command at `inside`."""

    host: Path
    inside: str
    writable: bool = False


@dataclass(frozen=True)
class Limits:
    timeout_s: float = 180       # wall clock; where cpu_s is set, the backstop for a hung run
    cpu_s: float | None = None   # CPU time of every process of the run together; None: no CPU-time limit
    memory_mb: int = 6144
    max_processes: int = 256
    max_file_mb: float = 16
    threads: int = 1
    cpus: tuple[int, ...] | None = None
    tmp_mb: int | None = None    # size of the private /tmp; None: the sandbox's default
    stall_s: float | None = None       # no progress for this long (lab/sandbox/stall.py): hung; None: not watched
    gpu_stall_s: float | None = None   # the same for a run that holds a GPU; None: stall_s
    gpu: str | None = None             # the GPU this run holds (set per run), whose use by the run is progress too
    cpu_group: str | None = None       # runs of one group share one CPU weight (the scorer's runs: by agent)

    @property
    def stall_window_s(self) -> float | None:
        return (self.gpu_stall_s or self.stall_s) if self.gpu else self.stall_s


@dataclass
class RunResult:
    returncode: int | None
    timed_out: bool
    duration_s: float
    stdout: str = ""
    stderr: str = ""
    limits: Limits = field(default_factory=Limits)
    cancelled: bool = False
    oom_killed: bool = False     # the kernel killed a process of the run at its memory cgroup's limit
    cpu_used_s: float | None = None   # CPU time of the run, all its processes; None where it was not measured
    cpu_limited: bool = False    # stopped at limits.cpu_s
    hung: str | None = None      # ended for making no progress over its stall window: what it used meanwhile

    @property
    def stopped_at_limit(self) -> bool:
        """Ended by a limit on its time (hung, CPU time, the wall clock): it held its slot for nothing."""
        return self.hung is not None or self.cpu_limited or self.timed_out

    @property
    def ok(self) -> bool:
        return (self.returncode == 0 and not self.timed_out and not self.cancelled and not self.cpu_limited
                and self.hung is None)

    @property
    def killed_from_outside(self) -> bool:
        """SIGKILL that none of the run's limits sent: something outside the run (a person, a fault) killed it."""
        return self.returncode == -signal.SIGKILL and not (self.oom_killed or self.cpu_limited or self.timed_out
                                                           or self.cancelled or self.hung)

    def failure(self) -> str:
        """One line saying why the run failed."""
        if self.cancelled:
            return "killed: the agent was stopped and the grace period ran out"
        if self.oom_killed:
            return f"ran out of memory (limit {self.limits.memory_mb} MB): the kernel killed it at the limit"
        if self.hung is not None:
            return f"ended as hung after {self.duration_s:.0f} s: {self.hung}"
        if self.cpu_limited:
            return (f"stopped at its CPU-time limit of {self.limits.cpu_s:g} s (it used {self.cpu_used_s or 0:.1f} s "
                    f"of CPU in {self.duration_s:.0f} s of wall-clock time)")
        if self.timed_out and self.limits.cpu_s is not None:
            used = f"{self.cpu_used_s:.1f} s" if self.cpu_used_s is not None else "an unmeasured amount"
            return (f"timed out after {self.limits.timeout_s:g} s of wall-clock time, the backstop for hung runs "
                    f"(it used {used} of its {self.limits.cpu_s:g} s CPU-time limit)")
        if self.timed_out:
            return f"timed out after {self.limits.timeout_s:g} s"
        code = self.returncode or 0
        if code < 0:
            sig = signal.Signals(-code).name
            if -code == signal.SIGXFSZ:
                return f"killed by {sig}: wrote a file over the {self.limits.max_file_mb:g} MB limit"
            if -code == signal.SIGKILL:
                return f"killed by {sig} (out of memory or killed from outside)"
            return f"killed by {sig}"
        last = next((ln for ln in reversed(self.stderr.strip().splitlines()) if ln.strip()), "")
        if "File too large" in self.stderr:
            return f"wrote a file over the {self.limits.max_file_mb:g} MB limit: {last[:200]}"
        if "MemoryError" in self.stderr or "Cannot allocate memory" in self.stderr:
            return f"ran out of memory (limit {self.limits.memory_mb} MB): {last[:200]}"
        return f"exited with code {code}" + (f": {last[:200]}" if last else "")


class Sandbox(Protocol):
    name: str
    trustworthy: bool
    user: str                # scorer, or agent-N: whose runs these are
    uid: int | None          # the uid commands run as; None: as the lab's own user
    cgroups: Cgroups         # where the machine offers them, each run's memory, pids and CPU weight

    def inside(self, bind: Bind) -> str:
        """The path under which the command sees `bind`."""

    def run(self, argv: list[str], binds: list[Bind], cwd: Bind, limits: Limits,
            env: dict[str, str] | None = None, cancel: threading.Event | None = None) -> RunResult:
        """Run argv to completion under the limits (or until cancel is set); never raises for the command's
        own failures."""

    def hand_over(self, path: Path) -> None:
        """Give a host file or folder (recursively) to the sandbox's uid; symlinks at or below path are
        changed themselves, never followed. Nothing to do where uid is None."""


def passthrough_env() -> dict[str, str]:
    # Some processors need these for OpenBLAS to compute correctly; they are not secrets.
    return {k: os.environ[k] for k in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE", "LANG", "TZ") if k in os.environ}


def _tail(path: Path) -> str:
    with path.open("rb") as handle:
        handle.seek(0, os.SEEK_END)
        handle.seek(max(0, handle.tell() - TAIL_BYTES))
        return handle.read().decode(errors="replace")


PR_SET_PDEATHSIG = 1
_libc = ctypes.CDLL(None, use_errno=True)
LAUNCHER = str(Path(__file__).with_name("launch.py"))


def die_with_parent(sig: int = signal.SIGKILL, parent: int | None = None) -> None:
    """In this process: the kernel sends sig when the parent dies, so nothing outlives a killed lab. Where the
    parent's pid is given and it is already gone (it died before this call), this process leaves at once."""
    _libc.prctl(PR_SET_PDEATHSIG, sig, 0, 0, 0)
    if parent is not None and os.getppid() != parent:
        os._exit(1)


def run_limited(argv: list[str], limits: Limits, env: dict[str, str], cwd: str | None = None,
                cancel: threading.Event | None = None, cgroups: Cgroups = Cgroups(), user: str = SCORER) -> RunResult:
    """Start argv in its own process group, inside a cgroup of its own where the machine offers them and
    with rlimits applied; kill all of it at the CPU-time limit, at the timeout or when cancel is set."""
    cgroup = cgroups.start(user, limits.memory_mb, limits.max_processes, group=limits.cpu_group)
    nice = None if cgroup and cgroup.controls_cpu else run_nice(user)
    try:
        with tempfile.TemporaryDirectory(prefix="lab-run-") as logs:
            out_path, err_path = Path(logs) / "stdout", Path(logs) / "stderr"
            with out_path.open("wb") as out, err_path.open("wb") as err:
                start = time.monotonic()
                report, reported = os.pipe()
                with os.fdopen(report, "rb") as failed:
                    try:
                        # no preexec_fn: CPython then starts the launcher by vfork, with no Python code and no fork
                        # handler run in the child (lab/sandbox/launch.py says why that matters)
                        proc = subprocess.Popen(_launcher_argv(argv, limits, cgroup, nice, reported),
                                                stdin=subprocess.DEVNULL, stdout=out, stderr=err, env=env, cwd=cwd,
                                                pass_fds=(reported,), start_new_session=True)
                    finally:
                        os.close(reported)
                    clock = _CpuClock(proc.pid, cgroup)
                    window = limits.stall_window_s
                    stall = None if window is None else StallWatch(
                        window, limits.gpu, cgroup.processes if cgroup else lambda: set(tree_pids(proc.pid)))
                    ended = _wait(proc, start + limits.timeout_s, cancel, nice, clock, limits.cpu_s, stall)
                    duration = time.monotonic() - start
                    why = failed.read().decode(errors="replace")   # at EOF: the launcher exec'd, or is gone
                if why:
                    where = f" in its cgroup {', '.join(map(str, cgroup.paths))}" if cgroup else ""
                    raise SandboxError(f"cannot start the run under its limits{where}: {why}")
            oom_killed = bool(cgroup and cgroup.oom_kills())
            cpu_used = clock.final()
            # a process killed by its own CPU rlimit has used more than the run may
            cpu_limited = ended == "cpu" or (limits.cpu_s is not None and cpu_used is not None
                                             and cpu_used >= limits.cpu_s and ended is None and proc.returncode != 0)
            stopped = ended is not None or cpu_limited
            stalled = stall.describe() if stall is not None and ended == "stall" else None
            return RunResult(None if stopped else proc.returncode, ended == "timeout", duration,
                             _tail(out_path), _tail(err_path), limits, ended == "cancel", oom_killed,
                             cpu_used, cpu_limited, stalled)
    finally:
        if cgroup:
            cgroup.close()


class _CpuClock:
    """The CPU time a run has used: its cgroup's account where one keeps it, else its process tree's."""

    def __init__(self, pid: int, cgroup: RunCgroup | None):
        self.pid, self.cgroup = pid, cgroup
        self.by_cgroup = bool(cgroup and cgroup.cpu_seconds() is not None)
        self.last: float | None = None

    def read(self) -> float | None:
        if self.cgroup is not None and self.by_cgroup:
            self.last = self.cgroup.cpu_seconds()
        else:
            # the tree's total only grows while its root lives; read once the root is gone it would drop
            self.last = max(self.last or 0.0, tree_cpu_seconds(self.pid))
        return self.last

    def final(self) -> float | None:
        """After the run: the cgroup's account is complete; the tree's is what was last seen alive."""
        return self.cgroup.cpu_seconds() if self.cgroup is not None and self.by_cgroup else self.last


def _launcher_argv(argv: list[str], limits: Limits, cgroup: RunCgroup | None, nice: int | None,
                   report: int) -> list[str]:
    """argv behind the launcher, which joins the run's cgroup and limits itself before it execs argv."""
    memory = limits.memory_mb * 1024 * 1024
    file_size = int(limits.max_file_mb * 1024 * 1024)
    rlimits = {"NPROC": (limits.max_processes,) * 2, "FSIZE": (file_size,) * 2, "CORE": (0, 0)}
    if not (cgroup and cgroup.bounds_memory):
        # counts address space, not memory: CUDA maps far more than it uses, so only without a cgroup
        rlimits["AS"] = (memory, memory)
    if limits.cpu_s is not None:   # SIGXCPU at the soft limit, SIGKILL a second later
        cpu = int(limits.cpu_s) + RLIMIT_CPU_SLACK_S
        rlimits["CPU"] = (cpu, cpu + 1)
    listed = lambda items: ",".join(map(str, items)) or "-"
    return [sys.executable, "-I", "-S", LAUNCHER, str(report), str(os.getpid()), "-" if nice is None else str(nice),
            listed(limits.cpus or ()), listed(cgroup.join_procs() if cgroup else ()),
            listed(f"{name}={soft}:{hard}" for name, (soft, hard) in rlimits.items()), "--", *argv]


def _wait(proc: subprocess.Popen, deadline: float, cancel: threading.Event | None, nice: int | None,
          clock: _CpuClock, cpu_s: float | None, stall: StallWatch | None = None) -> str | None:
    """Wait for proc until it ends, uses cpu_s of CPU, makes no progress for its stall window, reaches the deadline
    or is cancelled, then kill its process group; which of "cpu", "stall", "timeout", "cancel" stopped it, or None
    where it ended by itself."""
    renice_autogroups = nice is not None and autogroup_enabled()
    next_renice = time.monotonic() + 0.1
    ended = None
    try:
        while proc.poll() is None:
            if cancel is not None and cancel.is_set():
                ended = "cancel"
                break
            used = (clock.read() or 0.0) if cpu_s is not None or stall is not None else 0.0
            if cpu_s is not None and used >= cpu_s:
                ended = "cpu"
                break
            if stall is not None and stall.hung(used):
                ended = "stall"
                break
            if time.monotonic() >= deadline:
                ended = "timeout"
                break
            if renice_autogroups and nice is not None and time.monotonic() >= next_renice:
                lower_autogroups(proc.pid, nice)   # again each second: the run may make new sessions
                next_renice = time.monotonic() + 1.0
            try:
                proc.wait(timeout=min(POLL_S, max(0.0, deadline - time.monotonic())))
            except subprocess.TimeoutExpired:
                pass
    finally:
        try:
            os.killpg(proc.pid, signal.SIGKILL)  # whatever the command left running goes too
        except ProcessLookupError:
            pass
        proc.wait()
    return ended
