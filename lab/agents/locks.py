"""The locks that keep one lab to one supervisor, both `flock`s on files of the run folder (`<state>/run`,
lab.state_layout.RunFolder), which the kernel drops when their holder dies, so that none is ever stale:

- `supervisor.lock`, held by the supervisor for its whole life, taken before it does anything: a
  second supervisor on the same state folder exits at once, whoever started it and whenever. It holds the
  supervisor's pid file line (lab.agents.pidfiles), by which `lab stop` and `lab start` find it;
- `start.lock`, held by `lab start` (the CLI's and the TUI's alike) from its check for a running lab
  until the supervisor it started is ready: a start during another start waits for it, then finds
  the lab running.
"""
from __future__ import annotations

import fcntl
import os
from pathlib import Path

from lab.agents.pidfiles import own_line
from lab.errors import LabError
from lab.state_layout import RunFolder

EXIT_ALREADY_SUPERVISED = 4   # the supervisor's exit code when another one holds the lab


class AlreadySupervised(LabError):
    """Another supervisor holds this lab's state folder."""


def _open(path: Path) -> int:
    path.parent.mkdir(parents=True, exist_ok=True)
    return os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)


def take_supervisor_lock(run: RunFolder) -> int:
    """Hold the lab for this process, or raise AlreadySupervised. The lock lasts while the returned descriptor
    stays open: keep it for the process's life."""
    fd = _open(run.supervisor_lock)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        holder = os.pread(fd, 64, 0).decode(errors="replace").split()[:1] or ["unknown"]
        os.close(fd)
        raise AlreadySupervised(f"another supervisor (pid {holder[0]}) already runs the lab in "
                                f"{run.root.parent}; this one leaves (`lab status` shows the running lab)") from None
    os.ftruncate(fd, 0)
    os.pwrite(fd, own_line().encode(), 0)
    return fd


class StartLock:
    """`with StartLock(run):` one `lab start` at a time on this state folder; the others wait their turn."""

    def __init__(self, run: RunFolder):
        self.path, self.fd = run.start_lock, -1

    def __enter__(self) -> "StartLock":
        self.fd = _open(self.path)
        fcntl.flock(self.fd, fcntl.LOCK_EX)
        return self

    def __exit__(self, *exc) -> None:
        os.close(self.fd)   # which drops the lock
