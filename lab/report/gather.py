"""Reading a lab's store and research repository into plain records for a report; no formatting here."""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from lab.scorer.cluster_view import read_cluster
from lab.store import agents, events, forum, runs, submissions
from lab.store.scores import Submission

if TYPE_CHECKING:
    from lab.settings import Settings
    from lab.store import Database

LEADERBOARD_ROWS = 20
TOP_POSTS = 10
DIFFED_AGENTS = 3
BLOCKED_LISTED = 3      # the latest blocked attempts the report quotes per agent
NOT_AGENTS = ("baseline", "person")  # submitters that are not research agents


@dataclass(frozen=True)
class AgentSpend:
    name: str
    backend: str
    model: str                      # "-" for the backends without one; with its effort where it has one
    state: str
    tokens_in: int
    tokens_out: int
    dollars: float
    experiments: int
    scorer_queries: int
    submissions: int
    best_pgr: float | None       # the private replica's, as the leaderboard ranks
    active_hours: float

    @property
    def dollars_per_hour(self) -> float | None:
        """What an hour of this agent's work cost, on average over its run."""
        return self.dollars / self.active_hours if self.active_hours else None


@dataclass(frozen=True)
class FlagRecord:
    submission: int
    agent: str
    kind: str
    message: str
    evidence: dict
    resolution: str    # "open", "cleared", or "disqualified"
    reason: str | None


@dataclass(frozen=True)
class Post:
    id: int
    kind: str
    author: str
    votes: int
    comments: int
    pgr: float | None
    pgr_se: float | None
    title: str


@dataclass(frozen=True)
class MethodDiff:
    """An agent's best submission and what its commit changes relative to the scaffold."""
    agent: str
    submission: int
    commit: str
    path: str
    pgr: float | None            # the private replica's, as the leaderboard ranks
    diff: str | None
    missing: str | None    # why there is no diff, when there is none


@dataclass(frozen=True)
class BlockedAgent:
    """One agent's tool calls refused for reaching outside its sandbox (events of kind "blocked")."""
    agent: str
    attempts: int
    latest: list[tuple[float, str]]     # newest first: when, what was refused


@dataclass
class Report:
    root: Path
    generated: float
    dev: str
    private: str
    heldout: list[str]
    first: float | None                    # the earliest and latest recorded activity
    last: float | None
    start: float | None                    # the first submission: time zero of the PGR chart
    scored: int                            # leaderboard entries in all (the table shows the top ones)
    leaderboard: list[Submission]          # best first: the first is ranked 1
    best_over_time: dict[str, list[tuple[float, float]]]
    baselines: dict[str, float]            # a baseline's name to its latest dev PGR
    agents: list[AgentSpend]
    diffs: list[MethodDiff]
    flags: list[FlagRecord]
    posts: list[Post]
    submissions: int
    post_count: int
    actions: int
    totals: dict = field(default_factory=dict)
    blocked: list[BlockedAgent] = field(default_factory=list)
    nodes: dict[str, dict] = field(default_factory=dict)   # where method runs ran: node -> runs, retried, seconds
    cluster: dict | None = None            # the running lab's engine, as it last wrote its view
    now: str = "not running"               # the lab as the report was made: running or not
    warnings: list[str] = field(default_factory=list)   # its loops gone silent then (lab.heartbeat)

    @property
    def best(self) -> Submission | None:
        return next((e for e in self.leaderboard if e.ranked_pgr is not None), None)


def _baselines(db: Database) -> dict[str, float]:
    latest = {Path(path).stem: pgr for path, pgr in submissions.baseline_pgrs(db).items()}
    return dict(sorted(latest.items(), key=lambda item: -item[1]))


def _spend(db: Database, board: list[Submission]) -> list[AgentSpend]:
    best: dict[str, float] = {}
    for sub in board:  # best first
        if sub.ranked_pgr is not None:
            best.setdefault(sub.agent, sub.ranked_pgr)
    counts = dict(db.execute("SELECT agent, count(*) FROM submissions GROUP BY agent").fetchall())
    return [AgentSpend(a["name"], a["backend"] or "-", agents.model_of(a) or "-", a["state"], a["tokens_in"] or 0,
                       a["tokens_out"] or 0,
                       a["dollars"] or 0.0, a["experiments"] or 0, a["scorer_queries"] or 0,
                       counts.get(a["name"], 0), best.get(a["name"]), (a["active_s"] or 0.0) / 3600)
            for a in agents.all_agents(db)]


def _flags(db: Database) -> list[FlagRecord]:
    out = []
    for sub in submissions.flagged(db):
        for flag in sub.flags:
            if not flag.open:
                resolution, reason = "cleared", flag.cleared_reason
            elif sub.disqualified:
                resolution, reason = "disqualified", sub.disqualified_reason
            else:
                resolution, reason = "open", None
            out.append(FlagRecord(sub.id, sub.agent, flag.kind, flag.message or "", flag.evidence or {}, resolution,
                                  reason))
    return out


def _number(value) -> float | None:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def _posts(db: Database) -> list[Post]:
    return [Post(p["id"], p["kind"], p["author"], p["score"], p["comments"], _number(p["metrics"].get("pgr")),
                 _number(p["metrics"].get("pgr_se")), p["title"])
            for p in forum.recent(db, TOP_POSTS, order="top")]


def _diffs(cfg: Settings, board: list[Submission]) -> list[MethodDiff]:
    """The best submission with a commit of each of the top agents, and its diff against the scaffold."""
    chosen: list[Submission] = []
    for sub in board:  # best first
        if sub.commit_sha and sub.agent not in NOT_AGENTS and sub.agent not in {c.agent for c in chosen}:
            chosen.append(sub)
        if len(chosen) == DIFFED_AGENTS:
            break
    if not chosen:
        return []
    history, missing = _history(cfg)
    out = []
    for sub in chosen:
        sha, diff, why = sub.commit_sha or "", None, missing     # chosen above: each has a commit
        if history is not None:
            diff, why = _diff(history, sha)
        out.append(MethodDiff(sub.agent, sub.id, sha, sub.path or "", sub.ranked_pgr, diff, why))
    return out


def _history(cfg: Settings):
    from lab.errors import NotFound
    from lab.scaffold.history import History

    try:
        return History(cfg.state_dir), None
    except NotFound:
        return None, f"the research repository {cfg.state.research_repo} is missing"


def _diff(history, sha: str) -> tuple[str | None, str | None]:
    from lab.errors import GitError, NotFound

    try:
        return history.diff_from_main(sha), None
    except NotFound:
        return None, f"commit {sha} is missing from the research repository"
    except GitError as exc:
        return None, f"git could not diff commit {sha}: {exc}"


def _blocked(db: Database) -> list[BlockedAgent]:
    return [BlockedAgent(agent, attempts, [(e["created"], e["summary"] or "") for e in latest])
            for agent, attempts, latest in events.blocked_by_agent(db, BLOCKED_LISTED)]


def _span(db: Database) -> tuple[float | None, float | None]:
    lows, highs = [], []
    for table in ("submissions", "posts", "actions"):
        low, high = db.execute(f"SELECT min(created), max(created) FROM {table}").fetchone()
        if low is not None:
            lows.append(low)
            highs.append(high)
    return (min(lows), max(highs)) if lows else (None, None)


def gather(cfg: Settings, db: Database) -> Report:
    board = submissions.leaderboard(db)
    spend = _spend(db, board)
    first, last = _span(db)
    start = db.execute("SELECT min(created) FROM submissions").fetchone()[0]
    totals = {
        "dollars": sum(a.dollars for a in spend),
        "tokens_in": sum(a.tokens_in for a in spend),
        "tokens_out": sum(a.tokens_out for a in spend),
        "experiments": sum(a.experiments for a in spend),
        "scorer_queries": sum(a.scorer_queries for a in spend),
        "dollars_budget": cfg.budget.lab.dollars,
    }
    return Report(
        root=Path(cfg.root).resolve(), generated=time.time(), dev=cfg.task.dev, private=cfg.task.private,
        heldout=list(cfg.task.heldout),
        first=first, last=last, start=start, scored=len(board),
        leaderboard=board[:LEADERBOARD_ROWS],
        best_over_time=submissions.best_over_time(db), baselines=_baselines(db), agents=spend,
        diffs=_diffs(cfg, board), flags=_flags(db), posts=_posts(db),
        submissions=db.execute("SELECT count(*) FROM submissions").fetchone()[0], post_count=forum.count(db),
        actions=db.execute("SELECT count(*) FROM actions").fetchone()[0], totals=totals, blocked=_blocked(db),
        nodes=runs.by_node(db), cluster=read_cluster(cfg.run_dir, since=None), **_now(cfg, db))


def _now(cfg: Settings, db: Database) -> dict:
    from lab.agents import control, spend

    live = control.running(cfg)
    if live is None:
        return {"now": "not running", "warnings": []}
    per_hour = sum(spend.hourly(db, agents.all_agents(db), time.time()).values())
    return {"now": f"running (supervisor pid {live.pid}), spending ${per_hour:.2f} an hour now",
            "warnings": live.warnings}
