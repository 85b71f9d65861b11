"""Events: each agent's transcript (model turns, tool calls and results, messages, state changes)."""
from __future__ import annotations

import json
import time
from typing import TYPE_CHECKING, Any, Sequence

from lab.store.db import Database, inserted_id, migration, transaction

if TYPE_CHECKING:   # the store's queries need no sqlite_utils; lab.store.db loads it where it writes
    import sqlite_utils

KINDS = ("turn", "tool_call", "tool_result", "message", "state", "error", "note", "blocked")


@migration("events", 1)
def _create(db: sqlite_utils.Database) -> None:
    db.table("events").create({"id": int, "agent": str, "created": float, "kind": str, "summary": str, "data": str},
                              pk="id", not_null={"agent", "kind"}, if_not_exists=True)
    db.table("events").create_index(["agent", "id"], if_not_exists=True)


@migration("events", 2)
def _index_kinds(db: sqlite_utils.Database) -> None:
    db.table("events").create_index(["kind", "id"], if_not_exists=True)


def record(db: sqlite_utils.Database, agent: str, kind: str, summary: str, data: dict | None = None) -> int:
    assert kind in KINDS, kind
    with transaction(db):
        return inserted_id(db.table("events").insert({"agent": agent, "created": time.time(), "kind": kind,
                                                      "summary": summary[:500],
                                                      "data": json.dumps(data) if data is not None else None}))


def transcript(db: Database, agent: str, after_id: int = 0, limit: int | None = 200) -> list[dict]:
    """An agent's newest `limit` events after an id (None: all of them), oldest first (a live view polls with the
    last id it saw)."""
    rows = db.execute("SELECT id, agent, created, kind, summary, data FROM events WHERE agent = ? AND id > ? "
                      "ORDER BY id DESC LIMIT ?", [agent, after_id, -1 if limit is None else limit]).fetchall()
    return [_row(r) for r in reversed(rows)]


def results_by_turn(db: Database, agent: str) -> dict[str | None, list[dict]]:
    """An agent's tool results (their data), grouped under the summary of the turn that made them: what a scripted
    agent's steps got, step by step."""
    current: str | None = None
    steps: dict[str | None, list[dict]] = {}
    for row in transcript(db, agent, limit=None):
        if row["kind"] == "turn":
            current = row["summary"]
        if row["kind"] == "tool_result":
            steps.setdefault(current, []).append(row["data"])
    return steps


def count(db: Database, agent: str) -> int:
    return db.execute("SELECT count(*) FROM events WHERE agent = ?", [agent]).fetchone()[0]


def latest(db: Database, limit: int = 50, kinds: tuple[str, ...] | None = None) -> list[dict]:
    where = f"WHERE kind IN ({', '.join('?' * len(kinds))})" if kinds else ""
    rows = db.execute(f"SELECT id, agent, created, kind, summary, data FROM events {where} ORDER BY id DESC LIMIT ?",
                      [*(kinds or ()), limit]).fetchall()
    return [_row(r) for r in rows]


def _row(r: Sequence[Any]) -> dict:
    return {"id": r[0], "agent": r[1], "created": r[2], "kind": r[3], "summary": r[4],
            "data": json.loads(r[5]) if r[5] else None}


def blocked_after(db: Database, after_id: int = 0) -> list[dict]:
    """Blocked attempts (tool calls refused for reaching outside the sandbox) after an id, newest first."""
    rows = db.execute("SELECT id, agent, created, kind, summary, data FROM events WHERE kind = 'blocked' AND id > ? "
                      "ORDER BY id DESC", [after_id]).fetchall()
    return [_row(r) for r in rows]


def blocked_by_agent(db: Database, latest: int = 3) -> list[tuple[str, int, list[dict]]]:
    """(agent, attempts, its latest few) for every agent with a blocked attempt, most attempts first."""
    rows = db.execute(
        "SELECT id, agent, created, kind, summary, data, attempts FROM (SELECT *, "
        "count(*) OVER (PARTITION BY agent) AS attempts, "
        "row_number() OVER (PARTITION BY agent ORDER BY id DESC) AS nth FROM events WHERE kind = 'blocked') "
        "WHERE nth <= ? ORDER BY attempts DESC, agent, id DESC", [latest]).fetchall()
    found: dict[str, tuple[str, int, list[dict]]] = {}
    for r in rows:
        found.setdefault(r[1], (r[1], r[6], []))[2].append(_row(r))
    return list(found.values())
