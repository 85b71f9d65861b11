"""Submissions, their per-dataset scores, integrity flags, and evaluation queries."""
from __future__ import annotations

import json
import time

import sqlite_utils

from lab.errors import NotFound
from lab.store.db import migration, transaction


@migration("submissions", 1)
def _create(db: sqlite_utils.Database) -> None:
    db["submissions"].create({
        "id": int, "agent": str, "commit_sha": str, "path": str, "tree_hash": str, "fingerprint": str,
        "seeds": str, "status": str, "error": str, "sandbox": str, "created": float, "duration_s": float,
        "disqualified_reason": str, "disqualified_at": float,
    }, pk="id", not_null={"agent", "status", "created"}, if_not_exists=True)
    db["scores"].create({
        "submission_id": int, "dataset": str, "role": str, "status": str, "error": str, "weak_acc": float,
        "ceiling_acc": float, "acc": float, "pgr": float, "pgr_se": float, "seeds": str, "per_seed_acc": str,
    }, pk=("submission_id", "dataset"), foreign_keys=[("submission_id", "submissions", "id")],
        if_not_exists=True)
    db["flags"].create({
        "id": int, "submission_id": int, "kind": str, "message": str, "evidence": str, "created": float,
        "cleared_at": float, "cleared_reason": str,
    }, pk="id", foreign_keys=[("submission_id", "submissions", "id")], if_not_exists=True)
    db["evaluations"].create({
        "id": int, "agent": str, "created": float, "dataset": str, "acc": float, "pgr": float,
    }, pk="id", if_not_exists=True)
    db["evaluations"].create_index(["agent", "created"], if_not_exists=True)
    db["submissions"].create_index(["agent", "created"], if_not_exists=True)


def record_submission(db, *, agent: str, commit_sha: str | None, path: str, tree_hash: str, fingerprint: str,
                      seeds: list[int], sandbox: str, duration_s: float, scores: list[dict], flags: list[dict],
                      status: str = "scored", error: str | None = None) -> int:
    """One transaction: the submission, every dataset's score and every flag, or nothing."""
    now = time.time()
    with transaction(db):
        sid = db["submissions"].insert({
            "agent": agent, "commit_sha": commit_sha, "path": path, "tree_hash": tree_hash,
            "fingerprint": fingerprint, "seeds": json.dumps(seeds), "status": status, "error": error,
            "sandbox": sandbox, "created": now, "duration_s": duration_s,
        }).last_pk
        for score in scores:
            db["scores"].insert({**score, "submission_id": sid, "seeds": json.dumps(score.get("seeds", [])),
                                 "per_seed_acc": json.dumps(score.get("per_seed_acc", []))})
        for flag in flags:
            db["flags"].insert({"submission_id": sid, "kind": flag["kind"], "message": flag["message"],
                                "evidence": json.dumps(flag.get("evidence", {})), "created": now})
    return sid


def _decode(row: dict, *keys: str) -> dict:
    return {**row, **{k: json.loads(row[k]) if row.get(k) else None for k in keys}}


def get(db, submission_id: int) -> dict:
    rows = list(db["submissions"].rows_where("id = ?", [submission_id]))
    if not rows:
        raise NotFound(f"no submission with id {submission_id} (see `lab score` for the leaderboard)")
    sub = _decode(rows[0], "seeds")
    sub["scores"] = [_decode(r, "seeds", "per_seed_acc")
                     for r in db["scores"].rows_where("submission_id = ?", [submission_id], order_by="rowid")]
    sub["flags"] = [_decode(r, "evidence") for r in db["flags"].rows_where("submission_id = ?", [submission_id])]
    return sub


def leaderboard(db, include_disqualified: bool = False) -> list[dict]:
    """Scored submissions, best dev PGR first, each with its held-out results and open flags."""
    where = "status = 'scored'" + ("" if include_disqualified else " AND disqualified_at IS NULL")
    subs = [get(db, row["id"]) for row in db["submissions"].rows_where(where)]
    for sub in subs:
        dev = next((s for s in sub["scores"] if s["role"] == "dev"), None)
        sub["dev_pgr"] = dev["pgr"] if dev else None
        sub["open_flags"] = [f for f in sub["flags"] if f["cleared_at"] is None]
    return sorted(subs, key=lambda s: (s["dev_pgr"] is None, -(s["dev_pgr"] or 0), s["id"]))


def disqualify(db, submission_id: int, reason: str) -> None:
    get(db, submission_id)
    with transaction(db):
        db["submissions"].update(submission_id, {"disqualified_reason": reason, "disqualified_at": time.time()})


def clear_flag(db, flag_id: int, reason: str) -> None:
    if not list(db["flags"].rows_where("id = ?", [flag_id])):
        raise NotFound(f"no flag with id {flag_id}")
    with transaction(db):
        db["flags"].update(flag_id, {"cleared_at": time.time(), "cleared_reason": reason})


def record_evaluation(db, agent: str, dataset: str, acc: float, pgr: float) -> None:
    with transaction(db):
        db["evaluations"].insert({"agent": agent, "created": time.time(), "dataset": dataset, "acc": acc, "pgr": pgr})


def recent(db, table: str, agent: str, since: float) -> list[float]:
    """Creation times of an agent's evaluations or submissions since a moment, oldest first."""
    assert table in ("evaluations", "submissions")
    return [r[0] for r in db.execute(
        f"SELECT created FROM {table} WHERE agent = ? AND created >= ? ORDER BY created", [agent, since])]
