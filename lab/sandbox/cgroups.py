"""Per-run cgroups: memory, pids and CPU weight for one sandboxed run, where the machine offers them.

Each run gets `lab/<user>/run-<pid>-<n>` (pid and counter of the lab process that made it, so unique
on the machine): under the root of cgroup v2, whose no-internal-processes rule allows controllers
only there or below cgroups without processes; under the lab's own cgroup in each cgroup v1
hierarchy, so that limits set on the lab's cgroup still bound its runs. The run's first process
joins before it execs, so bwrap and everything under it is inside; at the end whatever is left is
killed and the cgroup removed. The `lab` parent weighs less than its siblings (the person's own
tools), so the lab's runs all together yield the CPU to them.

Without cgroup CPU control the run is reniced instead. With autogroup scheduling on, plain nice
acts only within a session, and every session (bwrap's --new-session makes one) is a CPU group of
its own: there the run's sessions get autogroup nice, re-applied each second to new ones.
"""
from __future__ import annotations

import errno
import functools
import itertools
import os
import signal
import time
from dataclasses import dataclass, field
from pathlib import Path

from lab.errors import SandboxError

CONTROLLERS = ("memory", "pids", "cpu")
V2_ROOT = Path("/sys/fs/cgroup")
LAB = "lab"
V1_CPU_SHARES = 256      # the default is 1024
V2_CPU_WEIGHT = 25       # the default is 100
RUN_NICE = 10
CLEANUP_S = 5.0
MAKE_ATTEMPTS = 5
_runs = itertools.count(1)


def _write(path: Path, value: str) -> None:
    with open(path, "w") as handle:
        handle.write(value)


@dataclass(frozen=True)
class Cgroups:
    """What this machine offers: the `lab` parent in each hierarchy, by controller."""

    version: int | None = None
    parents: dict[str, Path] = field(default_factory=dict)

    @property
    def controllers(self) -> list[str]:
        return [c for c in CONTROLLERS if c in self.parents]

    def describe(self) -> str:
        if not self.parents:
            return "no cgroups here"
        names = {"memory": "memory", "pids": "pids", "cpu": "cpu weight"}
        return f"cgroup v{self.version}: " + ", ".join(names[c] for c in self.controllers)

    def start(self, user: str, memory_mb: int, max_processes: int) -> "RunCgroup | None":
        """The cgroup of one run, made and limited; None where the machine offers no cgroups."""
        if not self.parents:
            return None
        name = f"run-{os.getpid()}-{next(_runs)}"
        for _ in range(MAKE_ATTEMPTS):
            run = RunCgroup(self.version, {c: p / user / name for c, p in self.parents.items()})
            try:
                for parent, controllers in self._hierarchies().items():
                    self._make(parent, user, name, controllers)
                run.limit(memory_mb, max_processes)
                return run
            except (FileNotFoundError, FileExistsError):
                # a run that ended just now removed a parent we were filling (or, between mkdir's EEXIST and its
                # check, the parent itself): again
                run.remove()
            except OSError as exc:
                run.remove()
                raise SandboxError(f"cannot make the run's cgroup {', '.join(map(str, run.paths))}: {exc}") from exc
        raise SandboxError(f"cannot make the run's cgroup {', '.join(map(str, run.paths))}: its parents kept "
                           "disappearing")

    def _hierarchies(self) -> dict[Path, list[str]]:
        found: dict[Path, list[str]] = {}
        for controller, parent in self.parents.items():
            found.setdefault(parent, []).append(controller)
        return found

    def _make(self, lab: Path, user: str, name: str, controllers: list[str]) -> None:
        enable = " ".join(f"+{c}" for c in controllers)
        lab.mkdir(exist_ok=True)
        if self.version == 2:
            _write(lab / "cgroup.subtree_control", enable)
        if "cpu" in controllers:
            _write(lab / ("cpu.weight" if self.version == 2 else "cpu.shares"),
                   str(V2_CPU_WEIGHT if self.version == 2 else V1_CPU_SHARES))
        (lab / user).mkdir(exist_ok=True)
        if self.version == 2:
            _write(lab / user / "cgroup.subtree_control", enable)
        _remove_stale(lab / user)
        (lab / user / name).mkdir()


def _remove_stale(user_dir: Path) -> None:
    """Empty run cgroups whose lab process died before it could remove them."""
    for entry in user_dir.glob("run-*-*"):
        pid = entry.name.split("-")[1]
        if pid.isdigit() and int(pid) != os.getpid() and not _alive(int(pid)):
            try:
                entry.rmdir()
            except OSError:
                pass    # still holds processes, or another lab removed it first


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


@dataclass
class RunCgroup:
    version: int
    dirs: dict[str, Path]      # controller -> this run's cgroup in that controller's hierarchy

    @property
    def bounds_memory(self) -> bool:
        return "memory" in self.dirs

    @property
    def controls_cpu(self) -> bool:
        return "cpu" in self.dirs

    @property
    def paths(self) -> list[Path]:
        return sorted(set(self.dirs.values()))

    def limit(self, memory_mb: int, max_processes: int) -> None:
        memory = str(memory_mb * 1024 * 1024)
        if self.bounds_memory:
            d = self.dirs["memory"]
            if self.version == 2:
                _write(d / "memory.max", memory)
                if (d / "memory.swap.max").exists():
                    _write(d / "memory.swap.max", "0")
            else:
                _write(d / "memory.limit_in_bytes", memory)   # before memsw, which may not be below it
                if (d / "memory.memsw.limit_in_bytes").exists():
                    _write(d / "memory.memsw.limit_in_bytes", memory)
        if "pids" in self.dirs:
            _write(self.dirs["pids"] / "pids.max", str(max_processes))

    def join_procs(self) -> list[str]:
        """The files the run's first process writes "0" to, before exec, to join this cgroup."""
        return [str(p / "cgroup.procs") for p in self.paths]

    def oom_kills(self) -> int:
        """Processes the kernel killed for going over this run's memory limit."""
        if not self.bounds_memory:
            return 0
        d = self.dirs["memory"]
        path = d / ("memory.events" if self.version == 2 else "memory.oom_control")
        try:
            lines = path.read_text().splitlines()
        except OSError:
            return 0
        counts = dict(line.split() for line in lines if len(line.split()) == 2)
        return int(counts.get("oom_kill", "0"))

    def processes(self) -> set[int]:
        found = set()
        for path in self.paths:
            try:
                found |= {int(pid) for pid in (path / "cgroup.procs").read_text().split()}
            except FileNotFoundError:
                pass
        return found

    def close(self) -> None:
        """Kill whatever is still inside, then remove the cgroup and any parent left empty."""
        deadline = time.monotonic() + CLEANUP_S
        for path in self.paths:
            if self.version == 2 and (path / "cgroup.kill").exists():   # Linux 5.14 and later
                try:
                    _write(path / "cgroup.kill", "1")
                except OSError:
                    pass    # then one by one below
        while (left := self.processes()) and time.monotonic() < deadline:
            for pid in left:
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            time.sleep(0.02)
        self.remove(deadline)

    def remove(self, deadline: float | None = None) -> None:
        deadline = deadline or time.monotonic()
        for path in self.paths:
            while True:
                try:
                    path.rmdir()
                    break
                except FileNotFoundError:
                    break
                except OSError as exc:
                    # a killed process can take a moment to leave: EBUSY until then
                    if exc.errno != errno.EBUSY or time.monotonic() >= deadline:
                        break
                    time.sleep(0.02)
            for parent in (path.parent, path.parent.parent):
                try:
                    parent.rmdir()
                except OSError:
                    break   # another run's cgroup is still in it


@functools.cache
def detect() -> Cgroups:
    """The cgroups this process can make runs in: v2 where /sys/fs/cgroup is cgroup2, else v1 hierarchies."""
    mounts = _cgroup_mounts()
    if any(point == V2_ROOT and kind == "cgroup2" for point, _, kind, _ in mounts):
        return _detect_v2(V2_ROOT)
    return _detect_v1(mounts)


def _cgroup_mounts() -> list[tuple[Path, str, str, list[str]]]:
    """(mount point, root inside the hierarchy, cgroup or cgroup2, super options) from /proc/self/mountinfo."""
    found = []
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        before, _, after = line.partition(" - ")
        fields, tail = before.split(), after.split()
        if len(fields) >= 5 and len(tail) >= 3 and tail[0] in ("cgroup", "cgroup2"):
            found.append((Path(fields[4]), fields[3], tail[0], tail[2].split(",")))
    return found


def _detect_v2(root: Path) -> Cgroups:
    if not os.access(root, os.W_OK):
        return Cgroups()
    try:
        offered = set((root / "cgroup.controllers").read_text().split())
        enabled = set((root / "cgroup.subtree_control").read_text().split())
    except OSError:
        return Cgroups()
    for controller in [c for c in CONTROLLERS if c in offered and c not in enabled]:
        try:
            _write(root / "cgroup.subtree_control", f"+{controller}")
            enabled.add(controller)
        except OSError:
            pass    # EBUSY where this root is a container's, holding processes; then without it
    usable = [c for c in CONTROLLERS if c in enabled]
    return Cgroups(2, {c: root / LAB for c in usable}) if usable else Cgroups()


def _own_v1_paths() -> dict[str, str]:
    """controller -> this process's cgroup in that v1 hierarchy, from /proc/self/cgroup."""
    found = {}
    for line in Path("/proc/self/cgroup").read_text().splitlines():
        _, controllers, path = line.split(":", 2)
        for controller in controllers.split(","):
            if controller:
                found[controller] = path
    return found


def _detect_v1(mounts: list[tuple[Path, str, str, list[str]]]) -> Cgroups:
    own = _own_v1_paths()
    parents = {}
    for controller in CONTROLLERS:
        for point, root, kind, options in mounts:
            if kind != "cgroup" or controller not in options or controller not in own:
                continue
            inside = Path(own[controller])
            here = point / inside.relative_to(root) if inside.is_relative_to(root) else point
            if here.is_dir() and os.access(here, os.W_OK):
                parents[controller] = here / LAB
            break
    return Cgroups(1, parents) if parents else Cgroups()


def autogroup_enabled() -> bool:
    try:
        return Path("/proc/sys/kernel/sched_autogroup_enabled").read_text().strip() == "1"
    except OSError:
        return False


def lower_autogroups(pid: int, most: int = 4096) -> None:
    """Give the autogroup of pid and of each of its descendants nice RUN_NICE (at most `most` processes)."""
    pending, seen = [pid], 0
    while pending and seen < most:
        current = pending.pop()
        seen += 1
        try:
            group = Path(f"/proc/{current}/autogroup")
            if not group.read_text().rstrip().endswith(f"nice {RUN_NICE}"):
                _write(group, str(RUN_NICE))
            for task in Path(f"/proc/{current}/task").iterdir():
                pending += [int(child) for child in (task / "children").read_text().split()]
        except (OSError, ValueError):
            continue    # it ended while we looked
