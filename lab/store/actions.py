"""What the person did, from the TUI or the command line: steering, starting and stopping, review decisions.

Commands (messages, pause, ...) also wait in their own table until taken; this is the one record of every
action, in order, with who did it, so a lab's history can be read back and reported.
"""
from __future__ import annotations

import json
import time
from typing import TYPE_CHECKING

from lab.store.db import Database, inserted_id, migration, transaction

if TYPE_CHECKING:   # the store's queries need no sqlite_utils; lab.store.db loads it where it writes
    import sqlite_utils

KINDS = ("message", "pause", "resume", "restart_agent", "stop_agent", "start_agent", "start_lab", "stop_lab",
         "disqualify", "clear_flag", "post", "comment", "vote")


@migration("actions", 1)
def _create(db: sqlite_utils.Database) -> None:
    db.table("actions").create({"id": int, "created": float, "author": str, "kind": str, "target": str, "detail": str,
                                "via": str}, pk="id", not_null={"kind"}, if_not_exists=True)


def record(db: sqlite_utils.Database, kind: str, target: str = "", detail: dict | None = None, via: str = "cli",
           author: str = "person") -> int:
    assert kind in KINDS, kind
    with transaction(db):
        return inserted_id(db.table("actions").insert({"created": time.time(), "author": author, "kind": kind,
                                                       "target": target, "detail": json.dumps(detail or {}),
                                                       "via": via}))


def history(db: Database, limit: int = 100, kind: str | None = None) -> list[dict]:
    where, args = ("kind = ?", [kind]) if kind else (None, [])
    return [{**r, "detail": json.loads(r["detail"] or "{}")}
            for r in db["actions"].rows_where(where, args, order_by="id DESC", limit=limit)]
