"""The scorer as a local HTTP service on loopback, for agents' runners (outside their sandboxes).

    POST /evaluate  {"agent", "predictions": path}        -> dev accuracy and PGR (budgeted)
    POST /submit    {"agent", "commit", "path"}           -> the dev result only (budgeted)
    GET  /leaderboard                                     -> dev PGR of every scored submission
Agents are told what the dev task shows: PGR, the teacher dependence and the flags computed on the dev
task; never a held-out score, the held-out gap, or a flag that draws on a held-out set.
Errors come back as {"error": one line, "kind": exception class} with a 4xx status.
"""
from __future__ import annotations

import json
import threading
import urllib.error
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from lab import errors
from lab.scorer import integrity
from lab.store import open_db, submissions

STATUS = {"BudgetExceeded": 429, "NotFound": 404}


class ScorerService:
    def __init__(self, cfg, make_scorer):
        self.cfg = cfg
        self.make_scorer = make_scorer        # db -> Scorer, one database connection per request
        self.submit_lock = threading.Lock()   # a submission uses every core the scorer has
        self.server = ThreadingHTTPServer((cfg.scorer.host, cfg.scorer.port), self._handler())
        self.server.daemon_threads = True

    @property
    def url(self) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host}:{port}"

    def handle(self, route: str, body: dict) -> dict:
        db = open_db(self.cfg.state_dir / "lab.db")
        try:
            if route == "/leaderboard":
                return {"leaderboard": [_dev_row(s) for s in submissions.leaderboard(db)]}
            scorer = self.make_scorer(db)
            if route == "/evaluate":
                return scorer.evaluate(_field(body, "agent"), Path(_field(body, "predictions")))
            if route == "/submit":
                with self.submit_lock:
                    return scorer.submit(_field(body, "agent"), _field(body, "commit"),
                                         body.get("path", "method.py")).for_agent()
            raise errors.NotFound(f"no endpoint {route} (expected /evaluate, /submit or /leaderboard)")
        finally:
            db.conn.close()

    def _handler(self):
        service = self

        class Handler(BaseHTTPRequestHandler):
            def _answer(self, route: str, body: dict) -> None:
                try:
                    status, payload = 200, service.handle(route, body)
                except errors.LabError as exc:
                    kind = type(exc).__name__
                    status, payload = STATUS.get(kind, 400), {"error": str(exc), "kind": kind}
                data = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self):
                self._answer(self.path, {})

            def do_POST(self):
                length = int(self.headers.get("Content-Length") or 0)
                try:
                    body = json.loads(self.rfile.read(length) or b"{}")
                except json.JSONDecodeError:
                    body = None
                if not isinstance(body, dict):
                    return self._answer_error("the request body is not a JSON object")
                self._answer(self.path, body)

            def _answer_error(self, message: str) -> None:
                data = json.dumps({"error": message, "kind": "BadRequest"}).encode()
                self.send_response(400)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args) -> None:
                pass

        return Handler

    def serve_forever(self) -> None:
        self.server.serve_forever()

    def start_in_thread(self) -> threading.Thread:
        thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        thread.start()
        return thread

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def _dev_row(sub: dict) -> dict:
    """A leaderboard row as an agent may see it."""
    dependence = sub["teacher_dependence"]
    return {"submission": sub["id"], "agent": sub["agent"], "commit": sub["commit_sha"], "method": sub["path"],
            "pgr": sub["dev_pgr"], "pgr_se": next(x["pgr_se"] for x in sub["scores"] if x["role"] == "dev"),
            "teacher_dependence": {k: dependence[k] for k in integrity.DEPENDENCE_FOR_AGENTS} if dependence else None,
            "flags": [{"kind": f["kind"], "message": f["message"]} for f in sub["open_flags"]
                      if f["scope"] == integrity.DEV]}


def _field(body: dict, name: str) -> str:
    value = body.get(name)
    if not isinstance(value, str) or not value:
        raise errors.LabError(f"the request lacks {name!r} (expected a non-empty string)")
    return value


class ScorerClient:
    """What an agent's runner uses; raises the same exception classes the scorer raised."""

    def __init__(self, url: str, timeout: float = 900):
        self.url, self.timeout = url.rstrip("/"), timeout

    def _call(self, route: str, body: dict | None = None) -> dict:
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(self.url + route, data=data, headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                return json.loads(response.read())
        except urllib.error.HTTPError as exc:
            payload = json.loads(exc.read() or b"{}")
            kind = getattr(errors, str(payload.get("kind")), None)
            if not (isinstance(kind, type) and issubclass(kind, errors.LabError)):
                kind = errors.LabError
            raise kind(payload.get("error", str(exc))) from None

    def evaluate(self, agent: str, predictions: Path) -> dict:
        return self._call("/evaluate", {"agent": agent, "predictions": str(predictions)})

    def submit(self, agent: str, commit: str, path: str = "method.py") -> dict:
        return self._call("/submit", {"agent": agent, "commit": commit, "path": path})

    def leaderboard(self) -> list[dict]:
        return self._call("/leaderboard")["leaderboard"]
