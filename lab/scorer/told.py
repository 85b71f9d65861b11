"""What an agent is told of the scorer's work, built in this one place from what the scorer recorded.

- A submission's result: its public dev accuracy, PGR and SE, from noisy, rounded seeds (lab.scorer.oracle); the
  flags computed from the public dev set, whole; of every other flag, its kind and a fixed line alone: it drew on the
  private replica or a held-out set, whose texts, ids, labels, figures and errors no agent is told.
- A leaderboard row: the same of anyone's submission.
- Both in words (describe_result, describe_request, announcement), for the tools' output and the scorer's notes.
"""
from __future__ import annotations

import time
from typing import TYPE_CHECKING

from lab import score_text
from lab.scorer import integrity
from lab.scorer.oracle import Coarse
from lab.store import submissions
from lab.store.scores import PUBLIC, Flag, Submission

if TYPE_CHECKING:
    from lab.store import Database

# Of a flag raised on data no agent has seen, what its agent reads instead of its message.
UNSEEN = {
    "ignores_teacher": "its predictions do not follow the teacher it is given, on data you have not seen",
    "overfit_public": "its public dev PGR is well above what it scores on fresh texts of the same task",
    "heldout_gap": "it scores far lower on the held-out sets than on the dev task",
    "failed": "some of its runs failed on data you have not seen",
    "wrote_outside": "it wrote files beside its predictions on data you have not seen",
    "sandbox_violation": "the sandbox denied it something on data you have not seen",
}


def flags(recorded: list[Flag]) -> list[dict]:
    """The flags an agent reads: dev flags whole, the others as their kind and a fixed line."""
    return [{"kind": f.kind, "message": f.message if f.scope == integrity.DEV else
             UNSEEN.get(f.kind, "raised on data you have not seen")} for f in recorded]


def public(sub: Submission, coarse: Coarse) -> dict | None:
    """A recorded submission's public dev result as agents read it; None where it has none (rejected)."""
    dev = sub.scored(PUBLIC)
    if dev is None or dev.weak_acc is None or dev.ceiling_acc is None:
        return None
    seeds, accs = dev.seeds or [], dev.per_seed_acc or []
    return {"dataset": dev.dataset, "seeds": seeds,
            **coarse.submission(sub.id, seeds, accs, dev.weak_acc, dev.ceiling_acc)}


def result(sub: Submission, coarse: Coarse) -> dict:
    """What the submitting agent is told of a scored submission."""
    return {"submission": sub.id, "commit": sub.commit_sha, **(public(sub, coarse) or {}),
            "flags": flags(sub.open_flags)}


def leaderboard(db: Database, coarse: Coarse, limit: int | None = None) -> list[dict]:
    """Every scored submission as agents see it, best public dev PGR (as they are told it) first."""
    rows = []
    for sub in submissions.leaderboard(db):
        shown = public(sub, coarse)
        if shown is not None:
            rows.append({"submission": sub.id, "agent": sub.agent, "commit": sub.commit_sha,
                         "method": sub.path, "pgr": shown["pgr"], "pgr_se": shown["pgr_se"],
                         "flags": sub.open_flag_kinds})
    rows.sort(key=lambda r: -r["pgr"])
    return rows[:limit] if limit else rows


def describe_result(result: dict) -> str:
    """The lines an agent reads of a scored submission: public dev PGR and flags."""
    lines = [f"submission {result['submission']}: public dev PGR {score_text.pgr(result['pgr'], result['pgr_se'])} "
             f"(accuracy {result['acc']:.3f}) over seeds {result['seeds']}; ranked on fresh texts of the same task, "
             "which you never see"]
    lines += [f"flag {f['kind']}: {f['message']}" for f in result.get("flags") or []] or ["no flags"]
    return "\n".join(lines)


def describe_request(view: dict) -> str:
    """One request's state in words: where it is in the queue, why it failed, or its result."""
    what = f"request {view['request']} ({(view['commit_sha'] or '')[:10]} {view['path']})"
    state = view["state"]
    if state == submissions.QUEUED:
        ahead = view.get("ahead") or 0
        waits = f"{ahead} submission{'s' if ahead != 1 else ''} ahead of it" if ahead else "next in line"
        return f"{what} is queued, {waits}" + (f" ({view['reason']})" if view.get("reason") else "")
    if state == submissions.RUNNING:
        minutes = (time.time() - (view.get("started") or time.time())) / 60
        return f"{what} is being scored (for {minutes:.0f} min)"
    if state == submissions.FAILED:
        return f"{what} failed: {view['reason']}"
    return f"{what} is done: {describe_result(view['result'])}"


def announcement(view: dict) -> str:
    return describe_request(view) + (f"\n(`submission` with request {view['request']} shows it again)"
                                     if view["state"] == submissions.DONE else "")
