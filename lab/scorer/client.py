"""The scorer service's client, which an agent's runner uses: raises the exception classes the scorer raised, and
ScorerUnavailable for a scorer that cannot be reached or answers nonsense. Every call is short, however long scoring
takes."""
from __future__ import annotations

import http.client
import json
import threading
import time
import urllib.error
import urllib.request

from lab import errors
from lab.scorer.auth import AgentCredentials, KeyCredentials
from lab.scorer.protocol import encode
from lab.store import submissions


Credentials = AgentCredentials | KeyCredentials


class ScorerUnavailable(errors.LabError):
    """The scorer could not be reached or gave no proper answer (down, restarting, overloaded)."""


class ScorerClient:

    POLL_S = 1.0             # between looks at a request being waited for (well within ANNOUNCE_AFTER_S)

    def __init__(self, url: str, credentials: Credentials | None = None, timeout: float = 60):
        """`credentials`: the runner's own (auth.AgentCredentials), or the key's holder's (auth.KeyCredentials);
        without any, the scorer answers 401."""
        self.url, self.credentials, self.timeout = url.rstrip("/"), credentials, timeout

    def _call(self, route: str, body: dict | None = None) -> dict:
        data = None if body is None else json.dumps(body).encode()
        headers = {"Content-Type": "application/json"}
        if self.credentials is not None:
            headers.update(self.credentials.headers((body or {}).get("agent")))
        request = urllib.request.Request(self.url + route, data=data, headers=headers)
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                payload = json.loads(response.read())
        except urllib.error.HTTPError as exc:
            raise self._error(route, exc) from None
        except urllib.error.URLError as exc:
            raise self._unavailable(route, exc.reason) from None
        except (OSError, http.client.HTTPException, ValueError) as exc:   # reset, timed out, cut short, not JSON
            raise self._unavailable(route, exc) from None
        if not isinstance(payload, dict):
            raise self._unavailable(route, "the answer is not a JSON object")
        return payload

    def _error(self, route: str, exc: urllib.error.HTTPError) -> errors.LabError:
        try:
            payload = json.loads(exc.read() or b"{}")
        except (OSError, http.client.HTTPException, ValueError):
            payload = None
        if not isinstance(payload, dict) or "error" not in payload:
            return self._unavailable(route, f"HTTP {exc.code} {exc.reason}")
        kind = getattr(errors, str(payload.get("kind")), None)
        if not (isinstance(kind, type) and issubclass(kind, errors.LabError)):
            kind = errors.LabError
        return kind(str(payload["error"]))

    def _unavailable(self, route: str, why) -> ScorerUnavailable:
        what = type(why).__name__ if isinstance(why, BaseException) else ""
        detail = f"{what}: {why}" if what and str(why) else what or str(why)
        return ScorerUnavailable(f"the scorer at {self.url} did not answer {route} ({detail}); "
                                 "it may be restarting: try again in a minute (queued submissions are kept)")

    def evaluate(self, agent: str, content: bytes, part: str = "all") -> dict:
        """A predictions file's bytes scored on the public dev set (or half of it), as an agent is told."""
        return self._call("/evaluate", {"agent": agent, "predictions_b64": encode(content), "part": part})

    def enqueue(self, agent: str, commit: str, path: str = "method.py") -> dict:
        """Queue a submission; its request (id, state, how many are ahead) at once."""
        return self._call("/submit", {"agent": agent, "commit": commit, "path": path})

    def _until_final(self, route: str, body: dict, wait_s: float, cancel: threading.Event | None) -> dict:
        """What route answers, asked again in short calls until its state is final (done or failed), wait_s has
        passed or cancel is set."""
        deadline = time.monotonic() + wait_s
        while True:
            view = self._call(route, body)
            left = deadline - time.monotonic()
            if view["state"] in submissions.FINAL or left <= 0 or (cancel is not None and cancel.is_set()):
                return view
            time.sleep(min(self.POLL_S, left))

    def request(self, agent: str, request_id: int, wait_s: float = 0.0, cancel: threading.Event | None = None) -> dict:
        """A request's state, waiting up to wait_s for it to finish, in short calls."""
        return self._until_final("/submission", {"agent": agent, "request": request_id}, wait_s, cancel)

    def requests(self, agent: str) -> list[dict]:
        return self._call("/submissions", {"agent": agent})["requests"]

    def submit(self, agent: str, commit: str, path: str = "method.py", wait_s: float = float("inf")) -> dict:
        """Queue a submission and wait for it: the dev result, or the exception it failed with."""
        view = self.request(agent, self.enqueue(agent, commit, path)["request"], wait_s)
        if view["state"] == submissions.FAILED:
            kind = getattr(errors, str(view.get("kind")), None)
            raise (kind if isinstance(kind, type) and issubclass(kind, errors.LabError) else errors.LabError)(
                view["reason"])
        if view["state"] != submissions.DONE:
            raise ScorerUnavailable(f"request {view['request']} is still {view['state']} after {wait_s:g} s")
        return view["result"]

    def leaderboard(self) -> list[dict]:
        return self._call("/leaderboard")["leaderboard"]

    def start_run(self, agent: str, commit: str, path: str, seed: int, args: list[str]) -> dict:
        return self._call("/run", {"agent": agent, "commit": commit, "path": path, "seed": seed, "args": args})

    def run_status(self, agent: str, run_id: int, wait_s: float = 0.0, cancel: threading.Event | None = None) -> dict:
        """A run's state, waiting up to wait_s for it to end, in short calls."""
        return self._until_final("/run_status", {"agent": agent, "run": run_id}, wait_s, cancel)
