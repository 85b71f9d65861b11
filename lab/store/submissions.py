"""Submissions, their per-dataset scores, integrity flags, and evaluation queries; and the queue of
submissions waiting to be scored. A recorded submission is read as a typed row (lab.store.scores.Submission).

A queued submission (a request) is stored before the agent hears its id, and moves queued -> running
-> done or failed, with the reason for a failure. `submissions` holds what the scorer recorded; a done
request links to its row there (a rejected method links to its "rejected" row too).
"""
from __future__ import annotations

import json
import time
from typing import TYPE_CHECKING, AbstractSet, Sequence

from lab.errors import NotFound
from lab.store import runs
from lab.store.db import Database, inserted_id, migration, transaction
from lab.store.scores import Submission

if TYPE_CHECKING:   # the store's queries need no sqlite_utils; lab.store.db loads it where it writes
    import sqlite_utils


@migration("submissions", 1)
def _create(db: sqlite_utils.Database) -> None:
    db.table("submissions").create({
        "id": int, "agent": str, "commit_sha": str, "path": str, "tree_hash": str, "fingerprint": str,
        "seeds": str, "status": str, "error": str, "sandbox": str, "created": float, "duration_s": float,
        "disqualified_reason": str, "disqualified_at": float,
    }, pk="id", not_null={"agent", "status", "created"}, if_not_exists=True)
    db.table("scores").create({
        "submission_id": int, "dataset": str, "role": str, "status": str, "error": str, "weak_acc": float,
        "ceiling_acc": float, "acc": float, "pgr": float, "pgr_se": float, "seeds": str, "per_seed_acc": str,
    }, pk=("submission_id", "dataset"), foreign_keys=[("submission_id", "submissions", "id")],
        if_not_exists=True)
    db.table("flags").create({
        "id": int, "submission_id": int, "kind": str, "message": str, "evidence": str, "created": float,
        "cleared_at": float, "cleared_reason": str,
    }, pk="id", foreign_keys=[("submission_id", "submissions", "id")], if_not_exists=True)
    db.table("evaluations").create({
        "id": int, "agent": str, "created": float, "dataset": str, "acc": float, "pgr": float,
    }, pk="id", if_not_exists=True)
    db.table("evaluations").create_index(["agent", "created"], if_not_exists=True)
    db.table("submissions").create_index(["agent", "created"], if_not_exists=True)


@migration("submissions", 2)
def _index_for_review(db: sqlite_utils.Database) -> None:
    db.table("flags").create_index(["submission_id"], if_not_exists=True)


@migration("submissions", 3)
def _teacher_dependence_and_flag_scope(db: sqlite_utils.Database) -> None:
    """A submission's teacher dependence (JSON), and each flag's scope: "dev" flags go back to the agent.
    Flags recorded before scopes existed stay NULL, so no agent is shown them."""
    if "teacher_dependence" not in db.table("submissions").columns_dict:
        db.table("submissions").add_column("teacher_dependence", str)
    if "scope" not in db.table("flags").columns_dict:
        db.table("flags").add_column("scope", str)


@migration("submissions", 4)
def _queue(db: sqlite_utils.Database) -> None:
    """Requests to score a commit, stored before the agent is answered: nothing in flight is lost with
    the scorer's process. `interruptions` counts how often the scorer stopped while scoring one."""
    db.table("submission_queue").create({
        "id": int, "agent": str, "commit_sha": str, "path": str, "state": str, "reason": str, "kind": str,
        "submission_id": int, "result": str, "interruptions": int, "created": float, "started": float,
        "finished": float, "reported": float, "announced": float,
    }, pk="id", not_null={"agent", "commit_sha", "path", "state", "created"}, defaults={"interruptions": 0},
        if_not_exists=True)
    db.table("submission_queue").create_index(["state", "id"], if_not_exists=True)
    db.table("submission_queue").create_index(["agent", "id"], if_not_exists=True)


def record_submission(db: sqlite_utils.Database, *, agent: str, commit_sha: str | None, path: str, tree_hash: str,
                      fingerprint: str, seeds: list[int], sandbox: str, duration_s: float, scores: list[dict],
                      flags: list[dict], status: str = "scored", error: str | None = None,
                      teacher_dependence: dict | None = None,
                      method_runs: Sequence[runs.FinishedRun] | None = None) -> int:
    """One transaction: the submission, every dataset's score and flag, and where each of its method runs ran
    (lab.scorer.runner.MethodRun), or nothing."""
    now = time.time()
    with transaction(db):
        sid = inserted_id(db.table("submissions").insert({
            "agent": agent, "commit_sha": commit_sha, "path": path, "tree_hash": tree_hash,
            "fingerprint": fingerprint, "seeds": json.dumps(seeds), "status": status, "error": error,
            "sandbox": sandbox, "created": now, "duration_s": duration_s,
            "teacher_dependence": json.dumps(teacher_dependence) if teacher_dependence else None,
        }))
        for score in scores:
            db.table("scores").insert({**score, "submission_id": sid, "seeds": json.dumps(score.get("seeds", [])),
                                       "per_seed_acc": json.dumps(score.get("per_seed_acc", []))})
        for flag in flags:
            db.table("flags").insert({"submission_id": sid, "kind": flag["kind"], "message": flag["message"],
                                      "scope": flag.get("scope"), "evidence": json.dumps(flag.get("evidence", {})),
                                      "created": now})
        runs.insert(db, [runs.row_of(run, submission_id=sid) for run in method_runs or []])
    return sid


def _decode(row: dict, *keys: str) -> dict:
    return {**row, **{k: json.loads(row[k]) if row.get(k) else None for k in keys}}


def get(db: Database, submission_id: int) -> Submission:
    found = _with_details(db, list(db["submissions"].rows_where("id = ?", [submission_id])))
    if not found:
        raise NotFound(f"no submission with id {submission_id} (see `lab score` for the leaderboard)")
    return found[0]


def _with_details(db: Database, rows: list[dict]) -> list[Submission]:
    """Submissions with their scores and flags, in three queries however many there are."""
    scores: dict[int, list[dict]] = {r["id"]: [] for r in rows}
    flags: dict[int, list[dict]] = {r["id"]: [] for r in rows}
    ids = list(scores)
    for chunk in (ids[i:i + 500] for i in range(0, len(ids), 500)):
        marks = ", ".join("?" * len(chunk))
        for r in db.query(f"SELECT * FROM scores WHERE submission_id IN ({marks}) ORDER BY rowid", chunk):
            scores[r["submission_id"]].append(r)
        for r in db.query(f"SELECT * FROM flags WHERE submission_id IN ({marks}) ORDER BY id", chunk):
            flags[r["submission_id"]].append(r)
    return [Submission.from_rows(r, scores[r["id"]], flags[r["id"]]) for r in rows]


def leaderboard(db: Database, include_disqualified: bool = False, limit: int | None = None) -> list[Submission]:
    """Scored submissions, best private dev PGR first (the replica no agent has seen ranks them; a submission scored
    before there was one, or whose replica runs failed, comes after by its public dev PGR), each with its public and
    held-out results and open flags."""
    where = "s.status = 'scored'" + ("" if include_disqualified else " AND s.disqualified_at IS NULL")
    rows = list(db.query(
        "SELECT s.* FROM submissions s LEFT JOIN scores d ON d.submission_id = s.id AND d.role = 'dev' "
        "LEFT JOIN scores p ON p.submission_id = s.id AND p.role = 'private' AND p.status != 'failed' "
        f"WHERE {where} ORDER BY p.pgr IS NULL, p.pgr DESC, d.pgr IS NULL, d.pgr DESC, s.id"
        + (" LIMIT ?" if limit else ""), [limit] if limit else []))
    return _with_details(db, rows)


def of_agent(db: Database, agent: str, limit: int = 200) -> list[Submission]:
    """An agent's submissions, newest first, scored or not."""
    return _with_details(db, list(db["submissions"].rows_where("agent = ?", [agent], order_by="id DESC",
                                                                 limit=limit)))


def by_commit(db: Database) -> dict[str, list[Submission]]:
    """Every submission of a commit, oldest first, keyed by the commit's id."""
    found: dict[str, list[Submission]] = {}
    for sub in _with_details(db, list(db["submissions"].rows_where("commit_sha IS NOT NULL", order_by="id"))):
        if sub.commit_sha:
            found.setdefault(sub.commit_sha, []).append(sub)
    return found


def flagged(db: Database, include_cleared: bool = True) -> list[Submission]:
    """Submissions that raised a flag (open ones first), for a person's review; disqualified ones included."""
    cond = "" if include_cleared else " AND cleared_at IS NULL"
    rows = list(db.query(f"SELECT * FROM submissions WHERE id IN (SELECT submission_id FROM flags WHERE 1{cond}) "
                         "ORDER BY id DESC"))
    subs = _with_details(db, rows)
    return sorted(subs, key=lambda s: (not s.open_flags or s.disqualified, -s.id))


def baseline_pgrs(db: Database, role: str = "private") -> dict[str, float]:
    """Each baseline method's private (or public: role "dev") dev PGR, from its latest scored, non-disqualified
    submission."""
    rows = db.execute(
        "SELECT s.path, d.pgr FROM submissions s JOIN scores d ON d.submission_id = s.id AND d.role = ? "
        "WHERE s.agent = 'baseline' AND s.status = 'scored' AND s.disqualified_at IS NULL AND d.pgr IS NOT NULL "
        "ORDER BY s.id", [role]).fetchall()
    return dict(rows)


def best_over_time(db: Database, exclude: tuple[str, ...] = ("baseline", "person"),
                   role: str = "private") -> dict[str, list[tuple[float, float]]]:
    """Each agent's best private (or public: role "dev") dev PGR so far, a step at each improvement; "lab" is the
    best of all agents.

    Disqualified submissions do not count, so a disqualification lowers the curve from the start.
    """
    rows = db.execute(
        "SELECT s.created, s.agent, d.pgr FROM submissions s JOIN scores d ON d.submission_id = s.id "
        "AND d.role = ? AND d.pgr IS NOT NULL AND (d.status IS NULL OR d.status != 'failed') "
        "WHERE s.status = 'scored' AND s.disqualified_at IS NULL "
        f"AND s.agent NOT IN ({', '.join('?' * len(exclude))}) ORDER BY s.created",
        [role, *exclude]).fetchall()
    series: dict[str, list[tuple[float, float]]] = {"lab": []}
    for created, agent, pgr in rows:
        for name in ("lab", agent):
            points = series.setdefault(name, [])
            if not points or pgr > points[-1][1]:
                points.append((created, pgr))
    return series


def disqualify(db: sqlite_utils.Database, submission_id: int, reason: str) -> None:
    get(db, submission_id)
    with transaction(db):
        db.table("submissions").update(submission_id, {"disqualified_reason": reason, "disqualified_at": time.time()})


def clear_flag(db: sqlite_utils.Database, flag_id: int, reason: str) -> None:
    if not list(db["flags"].rows_where("id = ?", [flag_id])):
        raise NotFound(f"no flag with id {flag_id}")
    with transaction(db):
        db.table("flags").update(flag_id, {"cleared_at": time.time(), "cleared_reason": reason})


def record_evaluation(db: sqlite_utils.Database, agent: str, dataset: str, acc: float, pgr: float) -> None:
    with transaction(db):
        db.table("evaluations").insert({"agent": agent, "created": time.time(), "dataset": dataset, "acc": acc,
                                        "pgr": pgr})


def recent(db: Database, table: str, agent: str, since: float) -> list[float]:
    """Creation times of an agent's evaluations or submissions since a moment, oldest first."""
    assert table in ("evaluations", "submissions")
    return [r[0] for r in db.execute(
        f"SELECT created FROM {table} WHERE agent = ? AND created >= ? ORDER BY created", [agent, since])]


# ---- the queue ---------------------------------------------------------------------------------------
QUEUED, RUNNING, DONE, FAILED = "queued", "running", "done", "failed"
PENDING, FINAL = (QUEUED, RUNNING), (DONE, FAILED)


def enqueue(db: sqlite_utils.Database, agent: str, commit_sha: str, path: str) -> dict:
    """A request to score a commit, queued behind those before it; committed before anyone is told its id."""
    with transaction(db):
        rid = inserted_id(db.table("submission_queue").insert({"agent": agent, "commit_sha": commit_sha, "path": path,
                                             "state": QUEUED, "created": time.time(), "interruptions": 0}))
    return request(db, rid)


def request(db: Database, request_id: int) -> dict:
    """One request with its result (for a done one) and, while it waits, how many are ahead of it."""
    rows = list(db["submission_queue"].rows_where("id = ?", [request_id]))
    if not rows:
        raise NotFound(f"no queued submission with request id {request_id}")
    return _request(db, rows[0])


def _request(db: Database, row: dict) -> dict:
    out = _decode(row, "result")
    out["ahead"] = 0
    if row["state"] == QUEUED:
        order = fair_order(db)
        running = db.execute("SELECT count(*) FROM submission_queue WHERE state = ?", [RUNNING]).fetchone()[0]
        out["ahead"] = running + (order.index(row["id"]) if row["id"] in order else len(order))
    return out


def requests_of(db: Database, agent: str, limit: int = 20) -> list[dict]:
    """An agent's requests, newest first."""
    return [_request(db, r) for r in db["submission_queue"].rows_where("agent = ?", [agent], order_by="id DESC",
                                                                        limit=limit)]


def pending_count(db: Database, agent: str) -> int:
    return db.execute(f"SELECT count(*) FROM submission_queue WHERE agent = ? AND state IN ({_marks(PENDING)})",
                      [agent, *PENDING]).fetchone()[0]


def fair_order(db: Database) -> list[int]:
    """The queued requests' ids in the order they will be scored: round-robin by agent. A request a scorer had
    started before it stopped comes first (it keeps its place); then, each turn, the oldest request of the agent
    served least recently (never served first, then by when it last had a request started). So one agent's many
    requests delay another agent's by at most one submission each."""
    queued = list(db.execute("SELECT id, agent, started FROM submission_queue WHERE state = ? ORDER BY id", [QUEUED]))
    resumed = [rid for rid, _, started in queued if started is not None]
    waiting: dict[str, list[int]] = {}
    for rid, agent, started in queued:
        if started is None:
            waiting.setdefault(agent, []).append(rid)
    served = dict(db.execute("SELECT agent, max(started) FROM submission_queue WHERE started IS NOT NULL "
                             "GROUP BY agent"))
    # (never served first, when last served, its oldest request): the turn order, updated as each is served
    turn = {agent: (agent in served, served.get(agent) or 0.0, ids[0]) for agent, ids in waiting.items()}
    order, step = list(resumed), 0
    while turn:
        agent = min(turn, key=turn.__getitem__)
        order.append(waiting[agent].pop(0))
        step += 1
        if waiting[agent]:
            turn[agent] = (True, float("inf"), step)    # served now: behind every agent waiting for a turn
        else:
            del turn[agent]
    return order


def take_next(db: sqlite_utils.Database, busy: AbstractSet[str] = frozenset()) -> dict | None:
    """The next request in the fair order of an agent not in `busy` (those with one being scored), marked running
    in the same transaction; None when there is none."""
    with transaction(db):
        agents = dict(db.execute("SELECT id, agent FROM submission_queue WHERE state = ?", [QUEUED]))
        order = [rid for rid in fair_order(db) if agents[rid] not in busy]
        if not order:
            return None
        db.execute("UPDATE submission_queue SET state = ?, started = ? WHERE id = ?", [RUNNING, time.time(), order[0]])
    return request(db, order[0])


def finish(db: sqlite_utils.Database, request_id: int, *, result: dict | None = None, submission_id: int | None = None,
           reason: str | None = None, kind: str | None = None) -> dict:
    """Done with the result the agent is told, or failed with the reason (and the exception's kind). A done
    request keeps any earlier reason (that it was resumed, say)."""
    outcome = {"state": DONE if result is not None else FAILED, "result": json.dumps(result) if result else None,
               "submission_id": submission_id, "finished": time.time()}
    outcome.update({k: v for k, v in (("reason", reason), ("kind", kind)) if v is not None})
    with transaction(db):
        db.table("submission_queue").update(request_id, outcome)
    return request(db, request_id)


def requeue(db: sqlite_utils.Database, request_id: int, reason: str, interrupted: bool) -> bool:
    """A running request back in the queue, keeping its place; `interrupted` counts a scorer that died
    while scoring it (a scorer that was stopped does not count). False if it was no longer running."""
    with transaction(db):
        changed = db.execute("UPDATE submission_queue SET state = ?, reason = ?, interruptions = interruptions + ? "
                             "WHERE id = ? AND state = ?", [QUEUED, reason, int(interrupted), request_id, RUNNING])
    return changed.rowcount > 0


def started_unfinished(db: Database) -> list[dict]:
    """Requests that a scorer started and did not finish: running ones (its process died) and queued ones
    that it had started before it was stopped."""
    return [_request(db, r) for r in db["submission_queue"].rows_where(
        f"state IN ({_marks(PENDING)}) AND started IS NOT NULL", list(PENDING), order_by="id")]


def recorded_for(db: Database, agent: str, commit_sha: str, path: str, since: float) -> Submission | None:
    """The submission the scorer recorded for a request (from `since`, of no other request), if it did."""
    rows = list(db.query(
        "SELECT * FROM submissions WHERE agent = ? AND path = ? AND substr(commit_sha, 1, length(?)) = ? "
        "AND created >= ? AND id NOT IN (SELECT submission_id FROM submission_queue WHERE submission_id IS NOT NULL) "
        "ORDER BY id LIMIT 1", [agent, path, commit_sha, commit_sha, since]))
    return _with_details(db, rows)[0] if rows else None


def mark_reported(db: sqlite_utils.Database, request_id: int) -> None:
    """The agent has read this request's outcome (so it needs no note about it)."""
    with transaction(db):
        db.execute("UPDATE submission_queue SET reported = ? WHERE id = ? AND reported IS NULL",
                   [time.time(), request_id])


def unannounced(db: Database, finished_before: float) -> list[dict]:
    """Finished requests whose agent has neither read the outcome nor been sent a note of it."""
    return [_request(db, r) for r in db["submission_queue"].rows_where(
        f"state IN ({_marks(FINAL)}) AND reported IS NULL AND announced IS NULL AND finished <= ?",
        [*FINAL, finished_before], order_by="id")]


def mark_announced(db: sqlite_utils.Database, request_id: int) -> None:
    with transaction(db):
        db.table("submission_queue").update(request_id, {"announced": time.time()})


def _marks(values: tuple[str, ...]) -> str:
    return ", ".join("?" * len(values))
