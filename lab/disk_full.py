"""A full state disk (`database or disk is full`, ENOSPC): told apart from other failures, and waited out.

The lab's processes outlive it: the supervisor goes on with its loop, an agent's runner waits with its own
records until space returns (reading a failed tool call as a tool error), and the scorer answers 503.
"""
from __future__ import annotations

import errno
import logging
import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, Callable, TypeVar

from lab.errors import StateDiskFull

SQLITE_FULL, SQLITE_BUSY, SQLITE_LOCKED = 13, 5, 6
# What a process prints when a write of its met a full disk (strerror of ENOSPC and EDQUOT).
FULL_MESSAGES = ("No space left on device", "Disk quota exceeded")
# The errors that may be a full disk: is_full tells which are.
MAY_BE_FULL: tuple[type[Exception], ...] = (StateDiskFull, sqlite3.DatabaseError, OSError)
WAIT_S = 1.0
T = TypeVar("T")


def is_full(exc: BaseException) -> bool:
    if isinstance(exc, StateDiskFull):
        return True
    if isinstance(exc, sqlite3.DatabaseError):
        code = getattr(exc, "sqlite_errorcode", None)
        return (code is not None and code & 0xFF == SQLITE_FULL) or "database or disk is full" in str(exc)
    return isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT)


def is_transient(exc: BaseException) -> bool:
    """A full disk, or a write lock held past the busy timeout: the same write can succeed later."""
    if is_full(exc):
        return True
    code = getattr(exc, "sqlite_errorcode", None) if isinstance(exc, sqlite3.OperationalError) else None
    return code is not None and code & 0xFF in (SQLITE_BUSY, SQLITE_LOCKED)


def says_full(output: str) -> bool:
    """Whether a process's output says that a write of its met a full disk."""
    return any(message in output for message in FULL_MESSAGES)


def described(cause: BaseException | str) -> StateDiskFull:
    """The one StateDiskFull of the lab, naming what met the full disk."""
    return StateDiskFull(f"the lab's state disk is full ({cause}): nothing was written; try again once there is "
                         "space (the person running the lab has to free some)")


@contextmanager
def translated() -> Iterator[None]:
    """For an edge, where errors leave for an agent or a client: a full-disk error raised inside goes on as
    StateDiskFull (`described`); every other error goes on as it is."""
    try:
        yield
    except (sqlite3.DatabaseError, OSError) as exc:
        if not is_full(exc):
            raise
        raise described(exc) from exc


def patiently(write: Callable[..., T], *args: Any, give_up: Callable[[], bool] = lambda: False,
              log: logging.Logger | None = None, **kwargs: Any) -> T:
    """write(*args, **kwargs), waited out while the disk is full, unless give_up() says to stop trying (then the
    error is raised)."""
    waited = 0.0
    while True:
        try:
            return write(*args, **kwargs)
        except (sqlite3.DatabaseError, OSError) as exc:
            if not is_full(exc) or give_up():
                raise
            if log is not None and waited == 0.0:
                log.warning(f"the state disk is full ({exc}): waiting for space to write")
        time.sleep(WAIT_S)
        waited += WAIT_S
