"""The scorer service's protocol: its routes, the fields a request carries, and the views of a request and a run that
an agent's runner is answered with. Shared by the service (lab.scorer.service) and its client (lab.scorer.client).

    POST /evaluate    {"agent", "predictions_b64", "part"}  -> public dev accuracy and PGR, as told (budgeted)
    POST /submit      {"agent", "commit", "path"}           -> a request id at once; the scoring is queued (budgeted)
    POST /submission  {"agent", "request"}                  -> that request's state, and its result when done
    POST /submissions {"agent"}                             -> the agent's recent requests
    POST /run         {"agent", "commit", "path", "seed", "args"} -> a run id at once; the method runs once on the
                                                               public dev view through the lab's engine
    POST /run_status  {"agent", "run"}                      -> that run's state, and where its outputs are when done
    GET  /leaderboard                                       -> every scored submission's public dev PGR, as told
Every call carries the name it acts as and its token (lab.scorer.auth): 401 without a valid one, 403 for a call on
behalf of another agent. Errors come back as {"error": one line, "kind": exception class} with a 4xx status (5xx for a
bug).
"""
from __future__ import annotations

import base64
import binascii
import posixpath

from lab import errors

ROUTES = ("/evaluate", "/submit", "/submission", "/submissions", "/run", "/run_status", "/leaderboard")
STATUS = {"BudgetExceeded": 429, "NotFound": 404, "StateDiskFull": 503, "Unauthorized": 401, "Forbidden": 403}
MAX_BODY_BYTES = 48 * 1024 * 1024   # a predictions file at the largest output limit, in base64, and the rest


def field(body: dict, name: str) -> str:
    value = body.get(name)
    if not isinstance(value, str) or not value:
        raise errors.LabError(f"the request lacks {name!r} (expected a non-empty string)")
    return value


def int_field(body: dict, name: str) -> int:
    value = body.get(name)
    if isinstance(value, bool) or not isinstance(value, int):
        raise errors.LabError(f"the request lacks {name!r} (expected an integer)")
    return value


def args_field(body: dict) -> list[str]:
    value = body.get("args", [])
    if not isinstance(value, list) or not all(isinstance(a, str) and len(a) <= 1000 for a in value) \
            or len(value) > 64:
        raise errors.LabError("the run's 'args' must be a list of at most 64 strings of at most 1000 characters")
    return value


def method_path(body: dict) -> str:
    """The method file of a commit: a relative path inside its tree, never absolute and never through '..'."""
    path = body.get("path", "method.py")
    if not isinstance(path, str) or not path or len(path) > 1000:
        raise errors.LabError("the method 'path' must be a non-empty string of at most 1000 characters")
    parts = path.split("/")
    if path.startswith("/") or "\\" in path or any(p in ("", ".", "..") for p in parts) \
            or posixpath.normpath(path) != path or any(ord(c) < 32 for c in path):
        raise errors.LabError("the method 'path' must be a plain relative path inside the commit (like "
                              "methods/mine.py): no '..', no leading '/', no empty or '.' parts")
    return path


def part_field(body: dict) -> str:
    value = body.get("part", "all")
    if value not in ("all", "a", "b"):
        raise errors.LabError(f"'part' is {str(value)[:20]!r}; expected \"all\", \"a\" or \"b\" (a half of the public "
                              "test texts)")
    return value


def predictions_field(body: dict) -> bytes:
    value = body.get("predictions_b64")
    if not isinstance(value, str):
        raise errors.LabError("the request lacks 'predictions_b64' (expected the predictions file's bytes in base64)")
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise errors.LabError("'predictions_b64' is not base64 (expected the predictions file's bytes)") from None


def encode(content: bytes) -> str:
    return base64.b64encode(content).decode()


def request_view(row: dict) -> dict:
    """A request as its agent may see it."""
    keys = ("state", "commit_sha", "path", "reason", "kind", "ahead", "created", "started", "finished", "result")
    return {"request": row["id"], **{k: row.get(k) for k in keys}}


def run_view(row: dict) -> dict:
    """An agent's run as its runner sees it."""
    keys = ("state", "commit_sha", "path", "seed", "args", "reason", "kind", "node", "attempts", "duration_s",
            "outputs", "created", "started", "finished")
    return {"run": row["id"], **{k: row.get(k) for k in keys}}
