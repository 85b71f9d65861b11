"""Per-run cgroups: memory, pids and CPU weight for one sandboxed run, where the machine offers them.

Each run gets `lab/<user>/run-<pid>-<n>` (pid and counter of the lab process that made it, so unique
on the machine): under the root of cgroup v2, whose no-internal-processes rule allows controllers
only there or below cgroups without processes; under the lab's own cgroup in each cgroup v1
hierarchy, so that limits set on the lab's cgroup still bound its runs. The run's first process
joins before it execs, so bwrap and everything under it is inside; at the end whatever is left is
killed and the cgroup removed. The `lab` parent weighs less than its siblings (the person's own
tools), so the lab's runs all together yield the CPU to them. The lab's own daemons, the supervisor
and the agents' runners, sit in `lab/daemons`, under the same low weight, while the person's `lab`
commands and TUI stay where they were started. Inside `lab`, the scorer's runs and the daemons weigh
as much as several agents' runs: a method's wall-clock backstop should not depend on how busy the
agents are, and the daemons, light but waited on (a stop, a restart), should answer at once.

Without cgroup CPU control the run is reniced instead. With autogroup scheduling on, plain nice
acts only within a session, and every session (bwrap's --new-session makes one) is a CPU group of
its own: there the run's sessions get autogroup nice, re-applied each second to new ones. The
daemons and the scorer's runs get a nice between the agents' runs and the person's tools.

A run's CPU time, all its processes together, is read from its cgroup: cpu.stat on cgroup v2,
cpuacct.usage on v1 where the cpuacct controller is mounted.
"""
from __future__ import annotations

import errno
import functools
import itertools
import os
import re
import signal
import time
from dataclasses import dataclass, field
from pathlib import Path

from lab.errors import SandboxError
from lab.sandbox.users import SCORER

CONTROLLERS = ("memory", "pids", "cpu", "cpuacct")   # cpuacct: cgroup v1 only (v2 accounts CPU in every cgroup)
V2_ROOT = Path("/sys/fs/cgroup")
LAB = "lab"
V1_CPU_SHARES = 256      # the default is 1024
V2_CPU_WEIGHT = 25       # the default is 100
FAVOURED_FACTOR = 8      # the scorer's runs and the daemons, inside `lab`, against one agent's runs
DAEMONS = "daemons"      # the supervisor and the runners, inside `lab`
RUN_NICE = 10
LAB_NICE = 5             # without cgroups: the daemons and the scorer's runs, above the agents', below the person
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
        names = {"memory": "memory", "pids": "pids", "cpu": "cpu weight", "cpuacct": "cpu time"}
        return f"cgroup v{self.version}: " + ", ".join(names[c] for c in self.controllers)

    def start(self, user: str, memory_mb: int, max_processes: int, group: str | None = None) -> "RunCgroup | None":
        """The cgroup of one run, made and limited; None where the machine offers no cgroups. `group`: the runs
        that share one CPU weight inside the user's (one agent's submissions among the scorer's runs)."""
        if not self.parents or self.version is None:     # found together (or neither)
            return None
        name = f"run-{os.getpid()}-{next(_runs)}"
        where = user if group is None else f"{user}/{group_name(group)}"
        for _ in range(MAKE_ATTEMPTS):
            run = RunCgroup(self.version, {c: p / where / name for c, p in self.parents.items()},
                            levels=where.count("/") + 2)
            try:
                for parent, controllers in self._hierarchies().items():
                    self._make(parent, where, name, controllers)
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

    def _make_lab(self, lab: Path, controllers: list[str]) -> None:
        lab.mkdir(exist_ok=True)
        if self.version == 2:
            _write(lab / "cgroup.subtree_control", " ".join(f"+{c}" for c in controllers))
        if "cpu" in controllers:
            _write(lab / self._weight_file, str(V2_CPU_WEIGHT if self.version == 2 else V1_CPU_SHARES))

    @property
    def _weight_file(self) -> str:
        return "cpu.weight" if self.version == 2 else "cpu.shares"

    def _make(self, lab: Path, where: str, name: str, controllers: list[str]) -> None:
        """lab/<where>/<name>, where `where` is a user or user/group: each level made with the controllers
        handed down (v2), the scorer's level favoured."""
        self._make_lab(lab, controllers)
        folder = lab
        for level in where.split("/"):
            folder = folder / level
            folder.mkdir(exist_ok=True)
            if self.version == 2:
                _write(folder / "cgroup.subtree_control", " ".join(f"+{c}" for c in controllers))
            if "cpu" in controllers and folder == lab / SCORER:
                self._favour(folder)
        _remove_stale(folder)
        (folder / name).mkdir()

    def _favour(self, group: Path) -> None:
        _write(group / self._weight_file, str((100 if self.version == 2 else 1024) * FAVOURED_FACTOR))

    def join_daemons(self) -> Path | None:
        """Move this process (and so what it starts from now on) into `lab/daemons` of the CPU hierarchy, under
        the lab's low weight; its path, or None where the machine offers no cgroup CPU control."""
        if "cpu" not in self.parents:
            return None
        lab = self.parents["cpu"]
        controllers = self._hierarchies()[lab]
        try:
            self._make_lab(lab, controllers)
            (lab / DAEMONS).mkdir(exist_ok=True)
            self._favour(lab / DAEMONS)
            _write(lab / DAEMONS / "cgroup.procs", str(os.getpid()))
        except OSError as exc:
            raise SandboxError(f"cannot move the lab's daemons into {lab / DAEMONS}: {exc}") from exc
        return lab / DAEMONS


def group_name(group: str) -> str:
    """A group as one safe path component."""
    return re.sub(r"[^A-Za-z0-9_-]", "_", group)[:64] or "_"


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
    levels: int = 2            # the cgroups above it that are the lab's: user (and group), then `lab`

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

    def cpu_seconds(self) -> float | None:
        """CPU time used so far by every process that was in this run; None where no hierarchy accounts it."""
        try:
            if self.version == 2:
                stat = (self.paths[0] / "cpu.stat").read_text().split()
                return int(stat[stat.index("usage_usec") + 1]) / 1e6
            if "cpuacct" in self.dirs:
                return int((self.dirs["cpuacct"] / "cpuacct.usage").read_text()) / 1e9
        except (OSError, ValueError):
            pass
        return None

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
            for parent in path.parents[:self.levels]:     # its group, if any, its user's, then lab's: if empty
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
            if inside.parts[-2:] == (LAB, DAEMONS):   # a lab daemon: its runs go beside it, not below it
                inside = inside.parent.parent
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


def run_nice(user: str) -> int:
    """The nice value of a run's processes (and, with autogroups, of their sessions) where no cgroup weighs them."""
    return LAB_NICE if user == SCORER else RUN_NICE


def _descendants(pid: int, most: int = 4096) -> list[int]:
    """pid and its descendants (at most `most`), parents before children; those that end meanwhile are left out."""
    found: list[int] = []
    pending = [pid]
    while pending and len(found) < most:
        current = pending.pop()
        try:
            children = [int(child) for task in Path(f"/proc/{current}/task").iterdir()
                        for child in (task / "children").read_text().split()]
        except (OSError, ValueError):
            continue    # it ended while we looked
        found.append(current)
        pending += children
    return found


def lower_autogroups(pid: int, nice: int = RUN_NICE) -> None:
    """Give the autogroup of pid and of each of its descendants this nice value."""
    for current in _descendants(pid):
        try:
            group = Path(f"/proc/{current}/autogroup")
            if not group.read_text().rstrip().endswith(f"nice {nice}"):
                _write(group, str(nice))
        except OSError:
            continue


def tree_pids(pid: int) -> list[int]:
    """pid and its live descendants: a run's processes where no cgroup holds them."""
    return _descendants(pid)


CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def tree_cpu_seconds(pid: int) -> float:
    """CPU time of pid and its live descendants, with that of the children they have reaped: a run's CPU time
    where no cgroup accounts it (a process that left the tree, reparented outside it, is missed)."""
    total = 0
    for current in _descendants(pid):
        try:
            fields = Path(f"/proc/{current}/stat").read_text().rpartition(")")[2].split()
        except OSError:
            continue
        total += sum(int(f) for f in fields[11:15])   # utime, stime, cutime, cstime
    return total / CLOCK_TICKS


def lower_own_priority(cgroups: Cgroups) -> str:
    """Put this process, and what it starts, below the person's tools: into `lab/daemons` where cgroups weigh the
    CPU, else at nice LAB_NICE, its session's autogroup too. Says where it went."""
    joined = cgroups.join_daemons()
    lower_own_autogroup()   # counts only outside a CPU cgroup, but costs nothing
    if joined:
        return f"cpu cgroup {joined}"
    os.setpriority(os.PRIO_PROCESS, 0, max(LAB_NICE, os.getpriority(os.PRIO_PROCESS, 0)))
    return f"nice {LAB_NICE}" + (" (its autogroup too)" if autogroup_enabled() else "")


def lower_own_autogroup(nice: int = LAB_NICE) -> None:
    """Give this process's session's autogroup this nice value (a new session starts at 0), where this process leads
    its session: never the autogroup of a shell that started it. Safe before exec."""
    if os.getsid(0) != os.getpid():
        return
    try:
        _write(Path("/proc/self/autogroup"), str(nice))
    except OSError:
        pass    # no autogroups here
