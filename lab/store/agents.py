"""Agents: one row each with its live state and counters, its saved memory, and its model calls."""
from __future__ import annotations

import json
import time
from typing import TYPE_CHECKING

from lab.errors import NotFound
from lab.store.db import Database, migration, transaction

if TYPE_CHECKING:   # the store's queries need no sqlite_utils; lab.store.db loads it where it writes
    import sqlite_utils

# What an agent is doing, as the supervisor and the runner record it.
STATES = ("starting", "running", "paused", "stopping", "stopped", "crashed", "failed", "budget", "stuck")
LIVE = ("starting", "running", "paused", "stopping")


@migration("agents", 1)
def _create(db: sqlite_utils.Database) -> None:
    db.table("agents").create({
        "name": str, "backend": str, "direction": str, "state": str, "reason": str, "step": str, "slice": str,
        "pid": int, "started": float, "heartbeat": float, "restarts": int, "tokens_in": int, "tokens_out": int,
        "dollars": float, "experiments": int, "scorer_queries": int, "active_s": float, "created": float,
    }, pk="name", not_null={"state"}, defaults={"active_s": 0.0, "restarts": 0, "tokens_in": 0, "tokens_out": 0, "dollars": 0.0,
                                                  "experiments": 0, "scorer_queries": 0}, if_not_exists=True)
    db.table("agent_memory").create({"agent": str, "notebook": str, "backend_state": str, "updated": float},
                                    pk="agent", if_not_exists=True)
    db.table("model_calls").create({
        "id": int, "agent": str, "created": float, "model": str, "input_tokens": int, "output_tokens": int,
        "cache_write_tokens": int, "cache_read_tokens": int, "dollars": float, "duration_s": float,
        "retries": int,
    }, pk="id", if_not_exists=True)
    db.table("model_calls").create_index(["agent", "created"], if_not_exists=True)


@migration("agents", 2)
def _model_and_effort(db: sqlite_utils.Database) -> None:
    """The model a Claude agent calls and the effort it asks for (NULL for the other backends)."""
    for column in ("model", "effort"):
        if column not in db.table("agents").columns_dict:
            db.table("agents").add_column(column, str)


def ensure(db: sqlite_utils.Database, name: str, backend: str, direction: str, slice_: str, model: str | None = None,
           effort: str | None = None) -> dict:
    """The agent's row, created on first start; backend, model, effort, direction and slice follow the
    configuration."""
    with transaction(db):
        if not list(db["agents"].rows_where("name = ?", [name])):
            db.table("agents").insert({"name": name, "state": "stopped", "created": time.time()})
        db.table("agents").update(name, {"backend": backend, "model": model, "effort": effort, "direction": direction,
                                         "slice": slice_})
    return get(db, name)


def model_of(row: dict) -> str | None:
    """A Claude agent's model and effort as one label, "claude-opus-5-5 (medium)"; None for the other backends."""
    if not row.get("model"):
        return None
    return f"{row['model']} ({row['effort']})" if row.get("effort") else row["model"]


def get(db: Database, name: str) -> dict:
    rows = list(db["agents"].rows_where("name = ?", [name]))
    if not rows:
        raise NotFound(f"no agent named {name!r} (expected one of: {', '.join(names(db)) or 'none yet'})")
    return rows[0]


def names(db: Database) -> list[str]:
    return [r["name"] for r in db["agents"].rows_where(order_by="created, name", select="name")]


def all_agents(db: Database) -> list[dict]:
    rows = list(db["agents"].rows_where(order_by="created, name"))
    return sorted(rows, key=lambda r: (len(r["name"]), r["name"]))


def update(db: sqlite_utils.Database, name: str, **fields: object) -> None:
    with transaction(db):
        db.table("agents").update(name, fields)


def set_state(db: sqlite_utils.Database, name: str, state: str, reason: str | None = None, **fields: object) -> None:
    assert state in STATES, state
    update(db, name, state=state, reason=reason, **fields)


def add_counts(db: sqlite_utils.Database, name: str, **deltas: float) -> None:
    """Add to counters (tokens_in, tokens_out, dollars, experiments, scorer_queries) at once."""
    sets = ", ".join(f"{k} = coalesce({k}, 0) + ?" for k in deltas)
    with transaction(db):
        db.execute(f"UPDATE agents SET {sets} WHERE name = ?", [*deltas.values(), name])


def record_model_call(db: sqlite_utils.Database, agent: str, *, model: str, input_tokens: int, output_tokens: int,
                      cache_write_tokens: int, cache_read_tokens: int, dollars: float, duration_s: float,
                      retries: int = 0) -> None:
    """One call's usage and cost, and the agent's running totals, together."""
    with transaction(db):
        db.table("model_calls").insert({
            "agent": agent, "created": time.time(), "model": model, "input_tokens": input_tokens,
            "output_tokens": output_tokens, "cache_write_tokens": cache_write_tokens,
            "cache_read_tokens": cache_read_tokens, "dollars": dollars, "duration_s": duration_s, "retries": retries})
        db.execute("UPDATE agents SET tokens_in = tokens_in + ?, tokens_out = tokens_out + ?, dollars = dollars + ? "
                   "WHERE name = ?", [input_tokens + cache_write_tokens + cache_read_tokens, output_tokens,
                                      dollars, agent])


def tick(db: sqlite_utils.Database, name: str, active_s: float) -> None:
    """The agent is alive: add the time since its last tick and stamp its heartbeat, in one statement."""
    with transaction(db):
        db.execute("UPDATE agents SET active_s = coalesce(active_s, 0) + ?, heartbeat = ? WHERE name = ?",
                    [active_s, time.time(), name])


def totals(db: Database) -> dict:
    row = db.execute("SELECT coalesce(sum(tokens_in), 0), coalesce(sum(tokens_out), 0), coalesce(sum(dollars), 0), "
                     "coalesce(sum(experiments), 0), coalesce(sum(scorer_queries), 0), coalesce(max(active_s), 0) "
                     "FROM agents").fetchone()
    return dict(zip(("tokens_in", "tokens_out", "dollars", "experiments", "scorer_queries", "active_s"), row))


def spent_since(db: Database, since: float) -> dict[str, float]:
    """Dollars each agent's model calls cost since a moment (only agents that spent anything)."""
    rows = db.execute("SELECT agent, sum(dollars) FROM model_calls WHERE created >= ? GROUP BY agent", [since])
    return {agent: dollars or 0.0 for agent, dollars in rows.fetchall()}


# ---- memory that survives a restart: the notebook and the backend's own saved state -------------
def notebook(db: Database, agent: str) -> str:
    row = db.execute("SELECT notebook FROM agent_memory WHERE agent = ?", [agent]).fetchone()
    return (row[0] or "") if row else ""


def set_notebook(db: sqlite_utils.Database, agent: str, text: str) -> None:
    with transaction(db):
        db.table("agent_memory").upsert({"agent": agent, "notebook": text, "updated": time.time()}, pk="agent")


def backend_state(db: Database, agent: str) -> dict | None:
    row = db.execute("SELECT backend_state FROM agent_memory WHERE agent = ?", [agent]).fetchone()
    return json.loads(row[0]) if row and row[0] else None


def save_backend_state(db: sqlite_utils.Database, agent: str, state: dict) -> None:
    with transaction(db):
        db.table("agent_memory").upsert({"agent": agent, "backend_state": json.dumps(state), "updated": time.time()},
                                        pk="agent")
