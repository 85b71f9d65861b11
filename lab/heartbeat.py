"""Heartbeats: a file in the run folder whose modification time says when a loop of the lab last went round.

The supervisor's main loop beats, and so does the scorer's queue (between requests, and each second while it waits
for a submission's runs). A lab whose every thread is stuck (a deadlock, a lock that is never released) looks alive
to `ps` and does nothing; its heartbeat goes stale, and `lab status`, the TUI's header and `lab report` say so,
and the next `lab start` treats such a supervisor as dead. Beating only touches the file's time, which needs no
free space: a full state disk does not stop it.
"""
from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path

STALE_AFTER_S = 10.0     # 20 rounds of the supervisor's loop, 10 of the scorer's queue
MIN_INTERVAL_S = 0.25    # beats closer together than this touch the file once


class Heartbeat:
    """The beating side: `beat()` as often as the loop goes round; it touches the file at most every
    MIN_INTERVAL_S."""

    def __init__(self, path: Path):
        self.path = Path(path)
        self.last = 0.0
        self.stopped = False

    def beat(self) -> None:
        now = time.monotonic()
        if self.stopped or now - self.last < MIN_INTERVAL_S:
            return
        self.last = now
        try:
            os.utime(self.path)
        except FileNotFoundError:
            try:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                self.path.touch()
            except OSError:
                self.last = 0.0     # no room for the file yet: the next beat tries again
        except OSError:
            pass

    def stop(self) -> None:
        """The loop ended on purpose: no beat is missed from now on (a late one from another thread is ignored)."""
        self.stopped = True
        self.path.unlink(missing_ok=True)


@dataclass(frozen=True)
class Pulse:
    """What a reader sees of a heartbeat: how long ago it last beat (None: not known, or it stopped on purpose)."""
    name: str
    age_s: float | None

    @property
    def stale(self) -> bool:
        return self.age_s is not None and self.age_s > STALE_AFTER_S

    def brief(self) -> str:
        return f"{self.name} silent for {self.age_s:.0f} s" if self.stale else f"{self.name} beating"

    def describe(self) -> str:
        if self.age_s is None:
            return f"the {self.name}'s heartbeat is not known"
        if self.stale:
            return f"the {self.name} has not beaten for {self.age_s:.0f} s: it may be frozen (`lab start` restarts it)"
        return f"the {self.name} beat {self.age_s:.1f} s ago"


def pulse(path: Path, name: str, since: float | None = None, now: float | None = None) -> Pulse:
    """How long ago the heartbeat at path beat. `since`: when its process started; a beat from before then (a
    previous process's) counts as a beat at that start, so that a process stuck before its first beat goes stale."""
    try:
        when: float | None = os.stat(path).st_mtime
    except OSError:
        when = None
    if since is not None:
        when = max(when or since, since)
    if when is None:
        return Pulse(name, None)
    return Pulse(name, max(0.0, (time.time() if now is None else now) - when))
