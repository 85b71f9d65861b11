"""The bytes one agent may publish into the research repository in any hour (agents.publish_mb_per_hour).

Each publish that brings objects counts its bundle's size on disk, in the store, over a sliding hour; a publish that
would pass the quota is refused (Blocked: the agent reads why, and a `blocked` event records it) before any object
enters the repository. Its commit stays on the agent's own branch, to be published once the hour allows.
"""
from __future__ import annotations

import time
from typing import TYPE_CHECKING, Callable

from lab.errors import Blocked
from lab.store import publishes

if TYPE_CHECKING:
    import sqlite_utils

WINDOW_S = 3600.0


class PublishQuota:
    def __init__(self, db: sqlite_utils.Database, agent: str, mb_per_hour: float,
                 clock: Callable[[], float] = time.time):
        self.db, self.agent, self.clock = db, agent, clock
        self.limit = int(mb_per_hour * 2**20)

    def admit(self, nbytes: int, head: str) -> None:
        now = self.clock()
        recent = publishes.since(self.db, self.agent, now - WINDOW_S)
        used = sum(size for _, size in recent)
        if used + nbytes <= self.limit:
            return
        frees = _when_room(recent, used + nbytes - self.limit, now)
        raise Blocked(f"publishing commit {head[:10]} would bring {nbytes / 2**20:.1f} MB into the research "
                      f"repository, past your quota of {self.limit / 2**20:g} MB an hour (agents.publish_mb_per_hour; "
                      f"{used / 2**20:.1f} MB published in the last hour). The commit is kept on your own branch; "
                      f"it can be published {frees}. Keep data, predictions and model files out of git (.gitignore).")

    def record(self, nbytes: int, head: str) -> None:
        publishes.record(self.db, self.agent, nbytes, head, now=self.clock())


def _when_room(recent: list[tuple[float, int]], excess: int, now: float) -> str:
    """When enough of the last hour's publishes have aged out of it to make room, in words."""
    freed = 0
    for created, size in recent:
        freed += size
        if freed >= excess:
            return f"in {max(1, round((created + WINDOW_S - now) / 60))} minutes"
    return "never in one piece: it alone is larger than the hourly quota (publish it in smaller commits)"
