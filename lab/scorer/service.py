"""The scorer as a local HTTP service on loopback, for agents' runners (outside their sandboxes); its routes are
lab.scorer.protocol's, and what it tells agents is lab.scorer.told's.

Every HTTP call is short: a submission, which can take hours, is stored in SQLite before its id is
answered. The queue is scored fairly: up to `scorer.submissions_at_once` submissions at once, at most one
per agent, taken round-robin by agent (lab.store.submissions.fair_order). Their runs share the run slots
round-robin by agent too, with a spare slot for an agent with none going, each agent's runs under one CPU
weight (lab.scorer.fair_slots), so one agent's submissions, however slow their runs, wait for none of
another's runs. A submission's runs stop at its first hung or failed dev run (lab.scorer.scorer). When it
is done, the agent gets a note in its inbox unless it read the result itself. A request that was running
when the scorer's process died is taken up again when the scorer starts (or failed, with its reason, after
MAX_INTERRUPTIONS such deaths); nothing queued is lost. One scorer runs a lab's queue at a time (a lock in
the run folder); another one answers HTTP and waits its turn.
"""
from __future__ import annotations

import fcntl
import json
import logging
import threading
import time
import traceback
from concurrent.futures import ThreadPoolExecutor
from functools import cached_property
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import TYPE_CHECKING, Callable, TextIO

from lab import errors, heartbeat
from lab.disk_full import is_full, patiently, translated
from lab.scorer import auth, budget, oracle, told
from lab.scorer.protocol import (MAX_BODY_BYTES, ROUTES, STATUS, args_field, field, int_field, method_path, part_field,
                                 predictions_field, request_view, run_view)
from lab.store import agents, commands, open_db, runs, submissions

if TYPE_CHECKING:
    import sqlite_utils

    from lab.scorer.scorer import Scorer
    from lab.settings import Settings

MAX_INTERRUPTIONS = 3    # deaths of the scorer while scoring one request before it is failed (it may be the cause)
ANNOUNCE_AFTER_S = 5.0   # an agent waiting on its request reads the result within this; others get a note
IDLE_POLL_S = 1.0
RUNS_IN_FLIGHT = 2       # an agent's `run`s queued or running at once
# what goes wrong is logged, not printed: on a full state disk, where the log is, a print would raise
LOG = logging.getLogger("lab.scorer")


class ScorerService:
    def __init__(self, cfg: Settings, make_scorer: Callable[[sqlite_utils.Database], Scorer]):
        self.cfg = cfg
        self.make_scorer = make_scorer        # db -> Scorer, one database connection per request
        self.db_path = cfg.state.db
        self.key = auth.load_or_make_key(cfg.state_dir)   # each agent's token is derived from it (lab.scorer.auth)
        self.server = ThreadingHTTPServer((cfg.scorer.host, cfg.scorer.port), self._handler())
        self.server.daemon_threads = True
        self.stopping = threading.Event()
        self.wake = threading.Event()         # set when a request is queued
        self.leading = threading.Event()      # set once this scorer holds the queue's lock
        self.lock_file: TextIO | None = None
        self.threads: list[threading.Thread] = []
        self.scoring: dict[int, str] = {}     # the requests being scored now -> their agents
        self._scoring_lock = threading.Lock()
        self.started = time.time()
        self.run_pool = ThreadPoolExecutor(max(2, cfg.agents.count), thread_name_prefix="agent-run")
        self.heart = heartbeat.Heartbeat(cfg.state.run.scorer_beat)   # beaten while this scorer leads

    @cached_property
    def coarse(self) -> oracle.Coarse:
        """How the public figures are told to agents (lab.scorer.oracle); made when first needed."""
        return oracle.coarse_for(self.cfg)

    @property
    def url(self) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host!s}:{port}"

    # ---- requests --------------------------------------------------------------------------------
    def handle(self, route: str, body: dict, caller: str) -> dict:
        """Answer one call by `caller`, whose token the handler verified: it acts as itself only."""
        if route in ROUTES and route != "/leaderboard":
            auth.check_acts_as(caller, field(body, "agent"))
        db = open_db(self.db_path)
        try:
            if route == "/leaderboard":
                return {"leaderboard": told.leaderboard(db, self.coarse)}
            if route == "/submit":
                return self.enqueue(db, field(body, "agent"), field(body, "commit"), method_path(body))
            if route == "/submission":
                return self.progress(db, field(body, "agent"), int_field(body, "request"))
            if route == "/submissions":
                return {"requests": [request_view(r) for r in submissions.requests_of(db, field(body, "agent"))]}
            if route == "/evaluate":
                return self.make_scorer(db).evaluate(field(body, "agent"), predictions_field(body), part_field(body))
            if route == "/run":
                return self.start_run(db, field(body, "agent"), field(body, "commit"), method_path(body),
                                      int_field(body, "seed") if "seed" in body else 0, args_field(body))
            if route == "/run_status":
                row = runs.get(db, int_field(body, "run"))
                if row["agent"] != field(body, "agent"):
                    raise errors.NotFound(f"no run with id {body['run']} of {body['agent']}")
                return run_view(row)
            raise errors.NotFound(f"no endpoint {route} (expected /evaluate, /submit, /submission, /submissions, "
                                  "/run, /run_status or /leaderboard)")
        finally:
            db.conn.close()

    def enqueue(self, db: sqlite_utils.Database, agent: str, commit: str, path: str) -> dict:
        """Queue a submission within the agent's budget, which counts the ones still queued or running."""
        s = self.cfg.scorer
        budget.check(db, "submissions", agent, s.submit_budget, s.budget_window_hours)
        if agent not in budget.UNBUDGETED:
            scored = len(submissions.recent(db, "submissions", agent, time.time() - s.budget_window_hours * 3600))
            pending = submissions.pending_count(db, agent)
            if scored + pending >= s.submit_budget:
                raise errors.BudgetExceeded(
                    f"{agent} has {pending} submissions queued or running and {scored} scored in the last "
                    f"{s.budget_window_hours:g} h, its budget of {s.submit_budget}: wait for a result first")
        row = submissions.enqueue(db, agent, commit, path)
        self.wake.set()
        return request_view(row)

    # ---- an agent's runs -------------------------------------------------------------------------
    def start_run(self, db: sqlite_utils.Database, agent: str, commit: str, path: str, seed: int,
                  args: list[str]) -> dict:
        """Queue one run of an agent's commit on the dev view (never a scorer query: no labels are read)."""
        if runs.in_flight(db, agent) >= RUNS_IN_FLIGHT:
            raise errors.BudgetExceeded(f"{agent} has {RUNS_IN_FLIGHT} runs queued or running: wait for one to end")
        row = runs.enqueue(db, agent, commit, path, seed, args)
        self.run_pool.submit(self._execute_run, row["id"])
        return run_view(row)

    def _execute_run(self, run_id: int) -> None:
        """Run it and record its outcome; a full state disk fails the run with that reason once there is space to
        say so (its outputs could not be kept), so that the agent waiting on it always hears."""
        keep = lambda write, *args, **kwargs: patiently(write, *args, give_up=self.stopping.is_set, log=LOG, **kwargs)
        db = open_db(self.db_path)
        try:
            row = runs.get(db, run_id)
            keep(runs.start, db, run_id)
            try:
                with translated():
                    run, outputs = self.make_scorer(db).run_once(row["agent"], row["commit_sha"], row["path"],
                                                                row["seed"], row["args"], self.run_outputs(run_id))
            except errors.LabError as exc:
                keep(runs.finish, db, run_id, reason=str(exc), kind=type(exc).__name__)
                return
            except Exception as exc:    # whatever failed, the run is recorded as ended: the agent waits on it
                LOG.error(f"scorer: run {run_id} failed:\n{traceback.format_exc()}")   # a bug fails this run only
                keep(runs.finish, db, run_id, reason=f"the scorer failed: {type(exc).__name__}: {exc}",
                     kind="ScorerFailed")
                return
            keep(runs.finish, db, run_id, run=run, reason=None if run.ok else run.error,
                 kind=None if run.ok else "RunKilled" if run.result.killed_from_outside else "MethodFailed",
                 outputs=outputs)
        finally:
            db.conn.close()

    def run_outputs(self, run_id: int) -> Path:
        """Where a run's predictions and logs wait for the agent's runner to copy them into its worktree."""
        return self.cfg.state.run.run_outputs(run_id)

    def progress(self, db: sqlite_utils.Database, agent: str, request_id: int) -> dict:
        row = submissions.request(db, request_id)
        if row["agent"] != agent:
            raise errors.NotFound(f"no queued submission with request id {request_id} of {agent}")
        if row["state"] in submissions.FINAL:
            submissions.mark_reported(db, request_id)
        return request_view(row)

    # ---- the queue -------------------------------------------------------------------------------
    def start_worker(self) -> None:
        """Score the queue and announce results, once this is the only scorer doing so (another one on the
        same lab, or one still dying, holds the lock until its process ends); first, take up what a previous
        scorer left unfinished."""
        if self.threads:
            return
        self.threads = [threading.Thread(target=self._lead, daemon=True, name="scorer-queue"),
                        threading.Thread(target=self._loop, args=(self._announce, "announcing", self.stopping),
                                         daemon=True, name="scorer-notes")]
        for thread in self.threads:
            thread.start()

    def _lead(self) -> None:
        path = self.cfg.state.run.scorer_queue_lock
        path.parent.mkdir(parents=True, exist_ok=True)
        lock_file = open(path, "a")
        try:
            fcntl.flock(lock_file, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            LOG.warning("scorer: another scorer runs this lab's queue; this one scores once it is gone")
            fcntl.flock(lock_file, fcntl.LOCK_EX)
        if self.stopping.is_set():
            lock_file.close()
            return
        self.lock_file = lock_file
        self.heart.beat()
        try:
            db = open_db(self.db_path)
            try:
                self.recover(db)
                runs.fail_unfinished(db, "the scorer stopped while it ran (its outputs are lost): run it again",
                                     before=self.started)
            finally:
                db.conn.close()
        except Exception:   # what it could not take up stays as it was, for the next start; the queue goes on
            LOG.error(f"scorer: taking up unfinished submissions failed:\n{traceback.format_exc()}")
        self.leading.set()
        self._loop(self._score_next, "scoring", self.wake, beat=self.heart.beat)

    def _loop(self, work, what: str, idle: threading.Event, beat=lambda: None) -> None:
        self.leading.wait()
        db = open_db(self.db_path)
        try:
            while not self.stopping.is_set():
                beat()
                try:
                    busy = work(db)
                except Exception:     # a full disk, a lock held too long: say so, and go on with the queue
                    LOG.error(f"scorer: {what} failed:\n{traceback.format_exc()}")
                    busy = False
                if not busy:
                    idle.wait(IDLE_POLL_S)
        finally:
            db.conn.close()

    def _score_next(self, db: sqlite_utils.Database) -> bool:
        """Start scoring the next request in the fair order whose agent has none being scored, if a place is free;
        whether one was started."""
        self.wake.clear()     # before looking: a request queued (or one scored) from now on wakes the next wait
        with self._scoring_lock:
            if len(self.scoring) >= self.cfg.scorer.submissions_at_once:
                return False
            row = submissions.take_next(db, busy=set(self.scoring.values()))
            if row is None:
                return False
            self.scoring[row["id"]] = row["agent"]
        # a daemon thread, as the queue's own: a stopping scorer puts it back in the queue and does not wait for it
        threading.Thread(target=self._score_one, args=(row,), daemon=True, name=f"scoring-{row['id']}").start()
        return True

    def _score_one(self, row: dict) -> None:
        try:
            db = open_db(self.db_path)
            try:
                self.score(db, row)
            finally:
                db.conn.close()
        except Exception:     # a full disk, a lock held too long: the request stays running, resumed at the next start
            LOG.error(f"scorer: scoring request {row['id']} failed:\n{traceback.format_exc()}")
        finally:
            with self._scoring_lock:
                self.scoring.pop(row["id"], None)
            self.wake.set()

    def score(self, db: sqlite_utils.Database, row: dict) -> None:
        """Score one request and record its outcome: done with the agent's result, or failed with the reason. A full
        state disk fails neither: the outcome is recorded once there is space, or the request scored again."""
        keep = lambda write, *args, **kwargs: patiently(write, *args, give_up=self.stopping.is_set, log=LOG, **kwargs)
        try:
            result = self.make_scorer(db).submit(row["agent"], row["commit_sha"], row["path"], tick=self.heart.beat)
        except errors.LabError as exc:
            rejected = submissions.recorded_for(db, row["agent"], row["commit_sha"], row["path"], row["started"])
            keep(submissions.finish, db, row["id"], reason=str(exc), kind=type(exc).__name__,
                 submission_id=rejected.id if rejected else None)
            return
        except Exception as exc:    # whatever failed, the request is settled: the queue and the agent go on
            if self.stopping.is_set():      # cut short by the stop, which put it back in the queue
                return
            if is_full(exc):    # the submission is recorded whole or not at all: nothing of it is, so again
                keep(submissions.requeue, db, row["id"], "resumed: the state disk was full while scoring it",
                     interrupted=False)
                return
            # a bug in the scorer fails this request, not the queue
            LOG.error(f"scorer: request {row['id']} failed:\n{traceback.format_exc()}")
            keep(submissions.finish, db, row["id"], reason=f"the scorer failed: {type(exc).__name__}: {exc}",
                 kind="ScorerFailed")
            return
        keep(submissions.finish, db, row["id"], result=told.result(submissions.get(db, result.id), self.coarse),
             submission_id=result.id)
        keep(agents.add_counts, db, row["agent"], experiments=1)

    def recover(self, db: sqlite_utils.Database) -> list[dict]:
        """Requests a previous scorer started and did not finish: linked to what it recorded, if it got that
        far; else queued again, or failed after MAX_INTERRUPTIONS deaths of the scorer while scoring them."""
        settled = []
        for row in submissions.started_unfinished(db):
            recorded = submissions.recorded_for(db, row["agent"], row["commit_sha"], row["path"], row["started"])
            if recorded is not None and recorded.status == "scored":
                settled.append(submissions.finish(db, row["id"], result=told.result(recorded, self.coarse),
                                                  submission_id=recorded.id))
            elif recorded is not None:
                settled.append(submissions.finish(db, row["id"], reason=recorded.error, kind="MethodRejected",
                                                  submission_id=recorded.id))
            elif row["state"] == submissions.RUNNING:
                if row["interruptions"] + 1 >= MAX_INTERRUPTIONS:
                    settled.append(submissions.finish(
                        db, row["id"], kind="ScorerInterrupted",
                        reason=f"the scorer stopped {row['interruptions'] + 1} times while scoring it (the method "
                               "may be what brings it down); nothing was recorded: submit again to retry"))
                else:
                    submissions.requeue(db, row["id"], "resumed: the scorer stopped while scoring it", interrupted=True)
        return settled

    def _announce(self, db: sqlite_utils.Database) -> bool:
        """A note in the agent's inbox for each finished request it has not read itself."""
        for row in submissions.unannounced(db, time.time() - ANNOUNCE_AFTER_S):
            commands.send(db, [row["agent"]], "message", told.announcement(request_view(row)), author="scorer")
            submissions.mark_announced(db, row["id"])
        return False

    # ---- serving -----------------------------------------------------------------------------------
    def _handler(self):
        service = self

        class Handler(BaseHTTPRequestHandler):
            def _caller(self) -> str | None:
                """Who calls, by its token; None once a 401 is answered."""
                try:
                    return auth.verify(service.key, self.headers)
                except errors.LabError as exc:
                    self.close_connection = True
                    self._send(STATUS[type(exc).__name__], {"error": str(exc), "kind": type(exc).__name__})
                    return None

            def _answer(self, route: str, body: dict, caller: str) -> None:
                try:
                    with translated():
                        status, payload = 200, service.handle(route, body, caller)
                except errors.LabError as exc:
                    kind = type(exc).__name__
                    status, payload = STATUS.get(kind, 400), {"error": str(exc), "kind": kind}
                except Exception as exc:    # answered, not a dropped connection: the client says what failed
                    LOG.error(f"scorer: {route} failed:\n{traceback.format_exc()}")
                    status, payload = 500, {"error": f"the scorer failed: {type(exc).__name__}: {exc}",
                                            "kind": "ScorerFailed"}
                self._send(status, payload)

            def _send(self, status: int, payload: dict) -> None:
                data = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self):
                caller = self._caller()
                if caller is not None:
                    self._answer(self.path, {}, caller)

            def do_POST(self):
                caller = self._caller()     # before the body is read: a caller without a token sends it for nothing
                if caller is None:
                    return
                try:
                    length = int(self.headers.get("Content-Length") or 0)
                except ValueError:
                    length = -1
                if not 0 <= length <= MAX_BODY_BYTES:
                    self.close_connection = True
                    return self._send(413, {"error": f"the request body must be at most {MAX_BODY_BYTES} bytes, with "
                                                     "a Content-Length", "kind": "BadRequest"})
                try:
                    body = json.loads(self.rfile.read(length) or b"{}")
                except (json.JSONDecodeError, UnicodeDecodeError):
                    body = None
                if not isinstance(body, dict):
                    return self._send(400, {"error": "the request body is not a JSON object", "kind": "BadRequest"})
                self._answer(self.path, body, caller)

            def log_message(self, *args) -> None:
                pass

        return Handler

    def serve_forever(self) -> None:
        self.start_worker()
        try:
            self.server.serve_forever()
        finally:
            self._requeue_current()

    def start_in_thread(self) -> threading.Thread:
        self.start_worker()
        thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        thread.start()
        return thread

    def stop(self) -> None:
        """Stop answering and scoring; a submission being scored goes back to the queue, for the next scorer."""
        if self.stopping.is_set():
            return
        self.stopping.set()
        self.wake.set()
        self.leading.set()                    # the notes' thread, still waiting for the lead, leaves at once
        self.server.shutdown()
        self.server.server_close()
        self._requeue_current()
        if not self.scoring:                  # idle threads end at once; busy ones end with the process
            for thread in self.threads:
                thread.join(timeout=IDLE_POLL_S)
        self.run_pool.shutdown(wait=False, cancel_futures=True)
        if self.lock_file is not None:
            self.heart.stop()
            self.lock_file.close()            # releases the queue's lock for the next scorer

    def _requeue_current(self) -> None:
        with self._scoring_lock:
            current = list(self.scoring)
        if not current:
            return
        db = open_db(self.db_path)
        try:
            for request_id in current:
                submissions.requeue(db, request_id, "resumed: the scorer was stopped while scoring it",
                                    interrupted=False)
        finally:
            db.conn.close()
