"""The read model of scored submissions: typed rows built, in this one place, from what lab.store.submissions holds
(its rows and their JSON columns). Everything that shows a score reads these, never the stored JSON
(lab.score_text turns them into text)."""
from __future__ import annotations

import json
from dataclasses import dataclass

PUBLIC, PRIVATE, HELDOUT = "dev", "private", "heldout"    # a score's role: the public dev set, its replica, held out
FAILED = "failed"


def _json(text: str | None):
    return json.loads(text) if text else None


@dataclass(frozen=True)
class Score:
    """One dataset's score of a submission; a failed one has its error and no figures."""
    dataset: str
    role: str           # PUBLIC, PRIVATE or HELDOUT
    status: str | None  # "ok" or FAILED
    error: str | None
    weak_acc: float | None
    ceiling_acc: float | None
    acc: float | None
    pgr: float | None
    pgr_se: float | None
    seeds: list[int] | None
    per_seed_acc: list[float] | None

    @classmethod
    def from_row(cls, row: dict) -> Score:
        return cls(row["dataset"], row["role"], row.get("status"), row.get("error"), row.get("weak_acc"),
                   row.get("ceiling_acc"), row.get("acc"), row.get("pgr"), row.get("pgr_se"),
                   _json(row.get("seeds")), _json(row.get("per_seed_acc")))

    @property
    def failed(self) -> bool:
        return self.status == FAILED


@dataclass(frozen=True)
class Flag:
    """An integrity flag (lab.scorer.integrity), its fields in the order of the `flags` table's columns."""
    id: int
    submission_id: int
    kind: str
    message: str | None
    evidence: dict | None
    created: float | None
    cleared_at: float | None
    cleared_reason: str | None
    scope: str | None       # "dev" flags go back to the agent whole; None for flags older than scopes

    @classmethod
    def from_row(cls, row: dict) -> Flag:
        return cls(row["id"], row["submission_id"], row["kind"], row["message"], _json(row["evidence"]),
                   row["created"], row["cleared_at"], row["cleared_reason"], row.get("scope"))

    @property
    def open(self) -> bool:
        return self.cleared_at is None


@dataclass(frozen=True)
class Following:
    """The teacher check (lab.scorer.teacher_check.TeacherFollowing) as recorded: how far the predictions follow the
    teacher they are given, where two teachers disagree (1 copies it, 0 ignores it)."""
    following: float
    se: float
    with_teacher: int       # texts that moved with the teacher
    against: int            # texts that moved against it
    z: float
    pairs: int              # pairs of runs
    sets: list[str]         # the sets they ran on, by name

    @classmethod
    def from_dict(cls, data: dict) -> Following:
        """From TeacherFollowing.to_dict()."""
        return cls(data["following"], data["se"], data["with_teacher"], data["against"], data["z"],
                   len(data["pairs"]), sorted({p["set"] for p in data["pairs"]}))

    @classmethod
    def from_record(cls, data: dict | None) -> Following | None:
        """From a submission's stored teacher check; None where there is none, or it predates the check (issue 13's
        teacher dependence had other keys)."""
        return cls.from_dict(data) if data and "with_teacher" in data else None


@dataclass(frozen=True)
class Submission:
    """A recorded submission with its scores (in the order they were recorded) and its flags."""
    id: int
    agent: str
    commit_sha: str | None
    path: str | None
    tree_hash: str | None
    fingerprint: str | None
    seeds: list[int] | None
    status: str             # "scored", "rejected" or "failed"
    error: str | None
    sandbox: str | None
    created: float
    duration_s: float | None
    disqualified_reason: str | None
    disqualified_at: float | None
    teacher_dependence: dict | None     # the teacher check as stored, for JSON output (`following` reads it)
    scores: list[Score]
    flags: list[Flag]

    @classmethod
    def from_rows(cls, row: dict, scores: list[dict], flags: list[dict]) -> Submission:
        """From its `submissions` row and its `scores` and `flags` rows."""
        return cls(row["id"], row["agent"], row["commit_sha"], row["path"], row["tree_hash"], row["fingerprint"],
                   _json(row["seeds"]), row["status"], row["error"], row["sandbox"], row["created"],
                   row["duration_s"], row["disqualified_reason"], row["disqualified_at"],
                   _json(row.get("teacher_dependence")), [Score.from_row(s) for s in scores],
                   [Flag.from_row(f) for f in flags])

    @property
    def disqualified(self) -> bool:
        return self.disqualified_at is not None

    @property
    def open_flags(self) -> list[Flag]:
        return [f for f in self.flags if f.open]

    @property
    def open_flag_kinds(self) -> list[str]:
        return [f.kind for f in self.open_flags]

    @property
    def following(self) -> Following | None:
        return Following.from_record(self.teacher_dependence)

    def score_of(self, dataset: str) -> Score | None:
        return next((s for s in self.scores if s.dataset == dataset), None)

    def scored(self, role: str) -> Score | None:
        """Its score in a role (PUBLIC, PRIVATE), unless that failed."""
        return next((s for s in self.scores if s.role == role and not s.failed), None)

    @property
    def dev_pgr(self) -> float | None:
        score = self.scored(PUBLIC)
        return score.pgr if score else None

    @property
    def private_pgr(self) -> float | None:
        score = self.scored(PRIVATE)
        return score.pgr if score else None

    @property
    def ranked_pgr(self) -> float | None:
        """What ranks it: the private replica's PGR (the public one for a submission scored before there was one,
        or whose replica runs failed)."""
        return self.private_pgr if self.private_pgr is not None else self.dev_pgr
