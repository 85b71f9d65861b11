"""Commands from the person: messages, pause, resume, stop and start, waiting until taken.

Agents' runners take what is addressed to them at their next step; the supervisor takes what is
addressed to "supervisor" (starting, stopping and restarting agents) within a second.
"""
from __future__ import annotations

import time
from typing import TYPE_CHECKING

from lab.store.db import Database, inserted_id, migration, transaction

if TYPE_CHECKING:   # the store's queries need no sqlite_utils; lab.store.db loads it where it writes
    import sqlite_utils

SUPERVISOR = "supervisor"
AGENT_KINDS = ("message", "pause", "resume")
SUPERVISOR_KINDS = ("start_agent", "stop_agent", "restart_agent")


@migration("commands", 1)
def _create(db: sqlite_utils.Database) -> None:
    db.table("commands").create({"id": int, "target": str, "kind": str, "body": str, "author": str, "created": float,
                                 "taken_at": float}, pk="id", not_null={"target", "kind"}, if_not_exists=True)
    db.table("commands").create_index(["target", "taken_at"], if_not_exists=True)


def send(db: sqlite_utils.Database, targets: list[str], kind: str, body: str = "", author: str = "person") -> list[int]:
    assert kind in AGENT_KINDS + SUPERVISOR_KINDS, kind
    now = time.time()
    with transaction(db):
        return [inserted_id(db.table("commands").insert({"target": t, "kind": kind, "body": body, "author": author,
                                                         "created": now})) for t in targets]


def take(db: sqlite_utils.Database, target: str) -> list[dict]:
    """Every command waiting for target, oldest first, marked taken in the same transaction."""
    with transaction(db):
        rows = list(db["commands"].rows_where("target = ? AND taken_at IS NULL", [target], order_by="id"))
        if rows:
            db.execute(f"UPDATE commands SET taken_at = ? WHERE id IN ({', '.join('?' * len(rows))})",
                       [time.time(), *[r["id"] for r in rows]])
    return rows


def history(db: Database, target: str | None = None, limit: int = 100) -> list[dict]:
    where, args = ("target = ?", [target]) if target else (None, [])
    return list(db["commands"].rows_where(where, args, order_by="id DESC", limit=limit))
