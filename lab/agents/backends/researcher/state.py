"""What the researcher knows and is doing, saved after every step so a restarted agent resumes.

JSON through `to_json` and `from_json`. Version 1 kept the same facts as one flat dict; `from_json`
carries such a state over, so an agent of a lab started before the split resumes mid-experiment.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

from lab.agents.turns import Message

STATE_VERSION = 2


class Stage(Enum):
    """The stages of one experiment, in order; CHECK and what follows only for a recipe worth submitting."""
    RUN = "run"                          # write recipe.json and method.py, commit, run one seed with `run`
    EVALUATE = "evaluate"                # score that seed's predictions (budgeted)
    COMMIT = "commit"                    # a state saved before runs went through `run`: commit what the shell ran
    REVPARSE = "revparse"                # nothing to commit: the worktree's HEAD already holds this recipe
    POST = "post"                        # post the result on the forum and note it
    CONFIRM = "confirm"                  # a candidate: each seed's predictions scored on the half not selected on
    CHECK = "check"                      # a fresh look at the leaderboard: others may have got there first
    SUBMIT = "submit"                    # queue it with the scorer
    AWAIT = "await"                      # queued: other experiments go on while the scorer works on it
    POST_SUBMISSION = "post_submission"


@dataclass
class TeacherDependence:
    """How much a submission's dev PGR owes to the teacher: with its labels, and with them shuffled."""
    pgr: float | None = None
    counterfactual_pgr: float | None = None
    difference: float | None = None
    difference_se: float | None = None
    seeds: Any = None


@dataclass
class Known:
    """What is known of one recipe: its best-backed dev PGR, where that came from, and what the scorer flagged."""
    recipe: dict
    author: str | None = None
    pgr: float | None = None
    seeds: int | None = 0
    se: float | None = None
    commit: str | None = None
    post: int | None = None
    scored: bool = False                 # the PGR is the scorer's, over all its seeds
    failed: str | None = None            # why the last run of it failed
    parent: str | None = None            # key of the recipe it was built on, where known
    flags: dict[str, str] = field(default_factory=dict)   # kind -> message, raised on its submission
    flagged_in: int | None = None        # the submission that raised them
    teacher: TeacherDependence | None = None


@dataclass
class Parent:
    """The recipe an experiment builds on, as it stood when the experiment was chosen."""
    key: str
    pgr: float | None
    commit: str | None
    author: str | None
    post: int | None
    flags: dict[str, str] = field(default_factory=dict)
    flagged_in: int | None = None


@dataclass
class Submission:
    submission: int | None
    commit: str
    key: str
    pgr: float | None
    se: float | None
    acc: float | None
    seeds: Any                           # the scorer's seeds (a list), or their number
    flags: dict[str, str] = field(default_factory=dict)
    teacher: TeacherDependence | None = None
    confirmed: float | None = None       # its recipe's PGR on the confirmation half, before it was submitted


@dataclass
class Experiment:
    tag: str                             # e001, e002, ...
    recipe: dict
    key: str
    why: str
    parent: Parent | None = None
    stage: Stage = Stage.RUN
    seed: int = 0
    pgrs: list[float] = field(default_factory=list)
    accs: list[float] = field(default_factory=list)
    commit: str | None = None
    request: int | None = None           # the scorer's request id, once submitted
    submitted: Submission | None = None
    ran: str | None = None               # where the lab's `run` put this seed's predictions
    predicted: list[str] = field(default_factory=list)    # each evaluated seed's predictions file
    confirmed: list[float] = field(default_factory=list)  # their PGRs on the confirmation half

    @property
    def mean(self) -> float:
        return mean(self.pgrs)

    @property
    def committed(self) -> str:
        """Its commit, which it has from its first run on: what is evaluated, confirmed and submitted."""
        assert self.commit is not None, f"{self.tag} is not committed yet"
        return self.commit

    @property
    def predictions(self) -> str:
        """This seed's predictions: where `run` put them (a state saved before `run` ran seeds in the shell)."""
        return self.ran or f"runs/{self.tag}-s{self.seed}.jsonl"


@dataclass
class Plan:
    """An experiment chosen before reading the parent's recipe from another agent's commit."""
    recipe: dict
    parent: str                          # the parent's recipe key
    why: str


@dataclass
class ScorerClock:
    """When this agent used the scorer, and when the scorer said it may again (budgets per window)."""
    eval_times: list[float] = field(default_factory=list)
    submit_times: list[float] = field(default_factory=list)
    eval_free_at: float = 0.0
    submit_free_at: float = 0.0
    scorer_back_at: float = 0.0          # the scorer did not answer, or the lab failed a call: tried again from then
    waiting_for: str = ""                # what that wait is for, in words


@dataclass
class ResearcherState:
    direction: str
    turns: int = 0
    experiments: int = 0
    known: dict[str, Known] = field(default_factory=dict)     # recipe key -> what is known of it
    tried: list[str] = field(default_factory=list)            # keys this agent ran (or tried to)
    current: Experiment | None = None                         # the experiment in flight
    awaiting: Experiment | None = None                        # the submitted one the scorer is working on
    awaiting_checked: float = 0.0                             # when the scorer was last asked about it
    planned: Plan | None = None
    submissions: list[Submission] = field(default_factory=list)
    board_best: float | None = None                           # the best unflagged dev PGR on the leaderboard
    text_noise: float | None = None                           # SE of two nearby recipes' PGR difference on a half
    confirmations: int = 0                                    # candidates scored on the confirmation half
    diffs: list[float] = field(default_factory=list)          # seed-0 minus seed-1 PGR of confirmed runs
    effects: dict[str, list[float]] = field(default_factory=dict)   # dimension -> child minus parent PGR
    focus_pos: int = 0
    last_orient: int | None = None                            # experiments done at the last reading
    read_notebook: bool = False
    clock: ScorerClock = field(default_factory=ScorerClock)
    fail_streak: int = 0
    last_error: str = ""
    fetched: dict[str, dict] = field(default_factory=dict)    # commit -> recipe read from it ({} for none)
    notes: list[str] = field(default_factory=list)            # notebook lines waiting to be written
    messages: list[Message] = field(default_factory=list)

    def take_notes(self) -> list[str]:
        notes, self.notes = self.notes, []
        return notes


def mean(values: list[float]) -> float:
    return sum(values) / len(values) if values else float("nan")


# ---- JSON ----------------------------------------------------------------------------------------
KEEP_LAST = {"tried": 2000, "diffs": 50, "notes": 50, "messages": 20}
KEEP_LAST_TIMES = {"eval_times": 500, "submit_times": 100}


def to_json(state: ResearcherState) -> dict:
    out = _plain(state)
    for name, n in KEEP_LAST.items():
        out[name] = out[name][-n:]
    for name, n in KEEP_LAST_TIMES.items():
        out["clock"][name] = out["clock"][name][-n:]
    return {"version": STATE_VERSION, **out}


def from_json(saved: dict | None, direction: str) -> ResearcherState:
    """The state saved by an earlier run, or a fresh one where there is none (or one of an unknown version)."""
    version = (saved or {}).get("version")
    if saved is None or version not in (1, STATE_VERSION):
        return ResearcherState(direction=direction)
    if version == 1:
        saved = migrate_v1(saved)
    s = dict(saved)
    return ResearcherState(**{
        **_fields(ResearcherState, s),
        "direction": s.get("direction") or direction,
        "known": {k: _known(v) for k, v in (s.get("known") or {}).items()},
        "current": _experiment(s["current"]) if s.get("current") else None,
        "awaiting": _experiment(s["awaiting"]) if s.get("awaiting") else None,
        "planned": Plan(**_fields(Plan, s["planned"])) if s.get("planned") else None,
        "submissions": [_submission(x) for x in s.get("submissions") or []],
        "clock": ScorerClock(**_fields(ScorerClock, s.get("clock") or {})),
        "messages": [Message(**_fields(Message, m)) for m in s.get("messages") or []],
    })


def migrate_v1(saved: dict) -> dict:
    """Version 1 kept the scorer's clock at the top level; its other facts read as version 2's (flags
    and lineage were not known then, so they start empty)."""
    clock_keys = [f.name for f in dataclasses.fields(ScorerClock)]
    rest = {k: v for k, v in saved.items() if k not in clock_keys}
    return {**rest, "version": STATE_VERSION, "clock": {k: saved[k] for k in clock_keys if k in saved}}


def _plain(value: Any) -> Any:
    if dataclasses.is_dataclass(value):
        return {f.name: _plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


def _fields(cls, data: dict) -> dict:
    names = {f.name for f in dataclasses.fields(cls)}
    return {k: v for k, v in data.items() if k in names}


def _teacher(data: dict | None) -> TeacherDependence | None:
    return TeacherDependence(**_fields(TeacherDependence, data)) if data else None


def _known(data: dict) -> Known:
    return Known(**{**_fields(Known, data), "flags": dict(data.get("flags") or {}),
                    "teacher": _teacher(data.get("teacher"))})


def _submission(data: dict) -> Submission:
    return Submission(**{"submission": None, "key": "", "pgr": None, "se": None, "acc": None, "seeds": None,
                         **_fields(Submission, data), "flags": dict(data.get("flags") or {}),
                         "teacher": _teacher(data.get("teacher"))})


def _experiment(data: dict) -> Experiment:
    parent = data.get("parent")
    return Experiment(**{**_fields(Experiment, data), "stage": Stage(data.get("stage") or Stage.RUN.value),
                         "parent": Parent(**{"flags": {}, **_fields(Parent, parent)}) if parent else None,
                         "submitted": _submission(data["submitted"]) if data.get("submitted") else None})
