"""Publishes: the bytes each agent's publishes brought into the research repository (its bundles' sizes), by time."""
from __future__ import annotations

import time
from typing import TYPE_CHECKING

from lab.store.db import Database, migration, transaction

if TYPE_CHECKING:
    import sqlite_utils


@migration("publishes", 1)
def _create(db: sqlite_utils.Database) -> None:
    db.table("publishes").create({"id": int, "agent": str, "created": float, "bytes": int, "head": str},
                                 pk="id", not_null={"agent", "created", "bytes"}, if_not_exists=True)
    db.table("publishes").create_index(["agent", "created"], if_not_exists=True)


def record(db: sqlite_utils.Database, agent: str, nbytes: int, head: str, now: float | None = None) -> None:
    with transaction(db):
        db.table("publishes").insert({"agent": agent, "created": time.time() if now is None else now,
                                      "bytes": int(nbytes), "head": head})


def since(db: Database, agent: str, start: float) -> list[tuple[float, int]]:
    """(when, bytes) of the agent's publishes from start on, oldest first."""
    return [(r[0], r[1]) for r in db.execute("SELECT created, bytes FROM publishes WHERE agent = ? AND created >= ? "
                                             "ORDER BY created", [agent, start]).fetchall()]
