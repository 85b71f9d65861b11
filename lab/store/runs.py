"""Method runs: where each run of a submission or of an agent's `run` executed (node, attempts, time, CPU), and
the agents' run requests, stored before the agent is answered so that none is lost with the scorer."""
from __future__ import annotations

import json
import time
from typing import TYPE_CHECKING, Protocol, Sequence

from lab.errors import NotFound
from lab.store.db import Database, inserted_id, migration, transaction

if TYPE_CHECKING:   # the store's queries need no sqlite_utils; lab.store.db loads it where it writes
    import sqlite_utils

QUEUED, RUNNING, DONE, FAILED = "queued", "running", "done", "failed"     # as a queued submission's
FINAL = (DONE, FAILED)


@migration("runs", 1)
def _create(db: sqlite_utils.Database) -> None:
    db.table("method_runs").create({
        "id": int, "submission_id": int, "agent_run_id": int, "label": str, "seed": int, "node": str,
        "attempts": int, "duration_s": float, "cpu_s": float, "ok": int, "error": str, "created": float,
    }, pk="id", if_not_exists=True)
    db.table("method_runs").create_index(["submission_id"], if_not_exists=True)
    db.table("agent_runs").create({
        "id": int, "agent": str, "commit_sha": str, "path": str, "seed": int, "args": str, "state": str,
        "reason": str, "node": str, "attempts": int, "duration_s": float, "outputs": str, "created": float,
        "started": float, "finished": float,
    }, pk="id", not_null={"agent", "commit_sha", "path", "state", "created"}, if_not_exists=True)
    db.table("agent_runs").create_index(["agent", "id"], if_not_exists=True)
    db.table("agent_runs").create_index(["state"], if_not_exists=True)


@migration("runs", 2)
def _kinds(db: sqlite_utils.Database) -> None:
    if "kind" not in db.table("agent_runs").columns_dict:    # why a run failed, as the error kinds of lab.errors
        db.table("agent_runs").add_column("kind", str)


class Timing(Protocol):
    duration_s: float
    cpu_used_s: float | None


class FinishedRun(Protocol):
    """A method run as its row records it: a lab.scorer.runner.MethodRun (the store sits below the scorer)."""
    dataset: str
    seed: int
    node: str
    attempts: int
    error: str | None

    @property
    def result(self) -> Timing: ...

    @property
    def ok(self) -> bool: ...


def row_of(run: FinishedRun, **link: int) -> dict:
    """A method_runs row for a MethodRun (lab.scorer.runner), linked to its submission or agent run."""
    return {**link, "label": run.dataset, "seed": run.seed, "node": run.node, "attempts": run.attempts,
            "duration_s": run.result.duration_s, "cpu_s": run.result.cpu_used_s, "ok": int(run.ok),
            "error": run.error, "created": time.time()}


def insert(db: sqlite_utils.Database, rows: list[dict]) -> None:
    """Inside the caller's transaction."""
    if rows:
        db.table("method_runs").insert_all(rows)


def of_submission(db: Database, submission_id: int) -> list[dict]:
    return list(db["method_runs"].rows_where("submission_id = ?", [submission_id], order_by="id"))


def by_node(db: Database, since: float = 0.0) -> dict[str, dict]:
    """Per node: runs, runs that needed another attempt, and their time, since `since`."""
    rows = db.execute("SELECT node, COUNT(*), SUM(attempts > 1), SUM(duration_s) FROM method_runs "
                      "WHERE created >= ? GROUP BY node ORDER BY node", [since]).fetchall()
    return {node: {"runs": n, "retried": retried or 0, "seconds": round(seconds or 0.0, 1)}
            for node, n, retried, seconds in rows}


# ---- an agent's runs --------------------------------------------------------------------------------
def enqueue(db: sqlite_utils.Database, agent: str, commit_sha: str, path: str, seed: int, args: list[str]) -> dict:
    with transaction(db):
        run_id = inserted_id(db.table("agent_runs").insert({"agent": agent, "commit_sha": commit_sha, "path": path,
                                                            "seed": seed, "args": json.dumps(args), "state": QUEUED,
                                                            "created": time.time()}))
    return get(db, run_id)


def get(db: Database, run_id: int) -> dict:
    rows = list(db["agent_runs"].rows_where("id = ?", [run_id]))
    if not rows:
        raise NotFound(f"no run with id {run_id}")
    row = rows[0]
    return {**row, "args": json.loads(row["args"] or "[]"), "outputs": json.loads(row["outputs"] or "[]")}


def in_flight(db: Database, agent: str) -> int:
    return db.execute("SELECT COUNT(*) FROM agent_runs WHERE agent = ? AND state IN (?, ?)",
                      [agent, QUEUED, RUNNING]).fetchone()[0]


def start(db: sqlite_utils.Database, run_id: int) -> None:
    with transaction(db):
        db.table("agent_runs").update(run_id, {"state": RUNNING, "started": time.time()})


def finish(db: sqlite_utils.Database, run_id: int, *, run: FinishedRun | None = None, reason: str | None = None,
           kind: str | None = None, outputs: Sequence[str] = ()) -> dict:
    """Done with its MethodRun, or failed with the reason (and its kind, lab.errors's names: the lab's fault or
    the method's); its method_runs row in the same transaction."""
    values = {"state": FAILED if reason else DONE, "reason": reason, "kind": kind if reason else None,
              "outputs": json.dumps(list(outputs)), "finished": time.time()}
    if run is not None:
        values.update(node=run.node, attempts=run.attempts, duration_s=run.result.duration_s)
    with transaction(db):
        db.table("agent_runs").update(run_id, values)
        if run is not None:
            insert(db, [row_of(run, agent_run_id=run_id)])
    return get(db, run_id)


def fail_unfinished(db: sqlite_utils.Database, reason: str, before: float) -> list[int]:
    """Runs a previous scorer took (queued before `before`, this one's start) and never finished, since it died:
    failed with the reason, for the agent to read (the lab's fault: ScorerInterrupted)."""
    ids = [r[0] for r in db.execute("SELECT id FROM agent_runs WHERE state IN (?, ?) AND created < ?",
                                    [QUEUED, RUNNING, before]).fetchall()]
    if ids:
        with transaction(db):
            for run_id in ids:
                db.table("agent_runs").update(run_id, {"state": FAILED, "reason": reason, "kind": "ScorerInterrupted",
                                                       "finished": time.time()})
    return ids
