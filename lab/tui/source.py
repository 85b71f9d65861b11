"""What the TUI shows, read from the store in plain data: the one place the TUI touches SQLite and git.

The app calls these from a worker thread once a second; widgets only ever receive the results. One
connection, used by one thread at a time (a lock), in WAL mode so nine writing agents never block it.
Every string read here is made inert (lab.inert) before it leaves: agents wrote most of them.
"""
from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Callable, Sequence

from lab.agents import control, spend
from lab.errors import GitError, NotFound
from lab.inert import inert, inert_data
from lab.machine import Load, prime_cpu, read_load
from lab.store import agents, events, forum, open_db, submissions
from lab.store.scores import Submission

if TYPE_CHECKING:
    from lab.settings import Settings

LEADERBOARD_ROWS = 30
POSTS_ON_DASHBOARD = 12
BLOCKED_SHOWN = 100
DIFF_BYTES = 256 << 10       # a diff view's text is highlighted whole: kept to what renders at once


@dataclass
class Dashboard:
    status: dict                    # control.status: running, agents, lab totals, the scorer's GPU queue
    leaderboard: list[Submission]
    series: dict[str, list[tuple[float, float]]]
    baselines: dict[str, float]     # baseline method -> dev PGR
    posts: list[dict]
    load: Load | None
    now: float

    @property
    def gpu_queue(self) -> dict | None:
        return self.status.get("gpus")

    @property
    def cluster(self) -> dict | None:
        return self.status.get("cluster")

    @property
    def header(self) -> str:
        lab = self.status["lab"]
        return header_line(self.status["supervisor_pid"], lab["best_pgr"], lab["dollars"], lab["experiments"],
                           self.status.get("silent") or [], lab["dollars_per_hour"], lab["dollars_left"])


def header_line(pid: int | None, best: float | None, dollars: float, experiments: int,
                silent: Sequence[str] = (), per_hour: float = 0.0, left: float | None = None) -> str:
    """One line for every screen's header: is the lab running (and is any of its loops silent), what it has spent,
    what is left of its budget and what it spends an hour now, its best PGR."""
    spent = f"${dollars:.2f}" + (f" (${left:.2f} left)" if left is not None else "")
    return " · ".join([*(f"⚠ {line}" for line in silent), f"running (pid {pid})" if pid else "not running (S starts it)",
                       f"${per_hour:.2f}/h", spent,   # first: what money goes shows in a narrow terminal too
                       f"best private PGR {best:+.3f}" if best is not None else "no agent submission ranked yet",
                       f"{experiments} experiments"])


@dataclass
class AgentView:
    row: dict
    events: list[dict]              # new since the last id the screen saw
    notebook: str
    submissions: list[Submission]
    now: float


@dataclass
class ReviewItem:
    submission: Submission
    diff: str = ""


@dataclass
class BlockedAttempts:
    """Agents' tool calls refused for reaching outside their sandbox (events of kind "blocked")."""
    latest: list[dict]              # newest first, at most BLOCKED_SHOWN: id, agent, created, summary
    per_agent: dict[str, int]       # every attempt so far, counted per agent


@dataclass
class ForumView:
    posts: list[dict]
    query: str | None = None
    error: str | None = None


@dataclass
class Source:
    """Reads for the TUI. `clock` and `load` are injectable so that screenshots of a seeded lab are stable."""
    cfg: Settings
    clock: Callable[[], float] = time.time
    load: Callable[[], Load | None] = read_load
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def __post_init__(self):
        self.db = open_db(self.cfg.state.db)
        self._history = None
        self._blocked_after = 0                      # the last event id the blocked attempts were read up to
        self._blocked = BlockedAttempts([], {})
        prime_cpu()   # while the app starts: the first frame's CPU reading then spans its start, not nothing

    def _history_or_none(self):
        from lab.scaffold.history import History

        if self._history is None and self.cfg.state.research_repo.exists():
            self._history = History(self.cfg.state_dir)
        return self._history

    def dashboard(self) -> Dashboard:
        load = self.load()
        with self._lock:
            now = self.clock()
            board = submissions.leaderboard(self.db, limit=LEADERBOARD_ROWS)
            status = control.status(self.cfg, self.db, now=now)   # reads the GPU queue's file too
            return inert_data(Dashboard(status, [s for s in board if s.agent != "baseline"],
                                        submissions.best_over_time(self.db), submissions.baseline_pgrs(self.db),
                                        forum.recent(self.db, POSTS_ON_DASHBOARD), load, now))

    def header(self) -> str:
        """The header line, for screens other than the dashboard (whose read already holds what it says)."""
        live = control.running(self.cfg)
        with self._lock:
            best = submissions.best_over_time(self.db).get("lab")
            totals = agents.totals(self.db)
            per_hour = sum(spend.hourly(self.db, agents.all_agents(self.db), self.clock()).values()) if live else 0.0
        return header_line(live.pid if live else None, best[-1][1] if best else None, totals["dollars"],
                           totals["experiments"], live.silent if live else [], per_hour,
                           spend.left(self.cfg.budget.lab.dollars, totals["dollars"]))

    def agent(self, name: str, after_event: int = 0) -> AgentView:
        live = control.running(self.cfg)
        with self._lock:
            row = agents.get(self.db, name)
            if not live and row["state"] in agents.LIVE:
                row = {**row, "state": "stopped", "reason": "the lab is not running"}
            return inert_data(AgentView(row, events.transcript(self.db, name, after_event, limit=500),
                                        agents.notebook(self.db, name), submissions.of_agent(self.db, name),
                                        self.clock()))

    def commits(self, name: str, limit: int = 100) -> list:
        history = self._history_or_none()
        return inert_data(history.commits([name], limit)) if history else []

    def show_commit(self, sha: str) -> str:
        history = self._history_or_none()
        if not history:
            return "no research repository yet"
        try:
            return inert(history.show(sha, max_bytes=DIFF_BYTES))
        except (NotFound, GitError) as exc:
            return inert(str(exc))

    def method_diff(self, sha: str | None) -> str:
        history = self._history_or_none()
        if not sha:
            return "this submission was scored from a path, not a commit: no diff to show"
        if not history:
            return "no research repository yet"
        try:
            return inert(history.diff_from_main(sha, max_bytes=DIFF_BYTES)) or "the commit changes nothing relative to main"
        except (NotFound, GitError) as exc:
            return inert(str(exc))

    def forum(self, query: str | None = None, limit: int = 200) -> ForumView:
        with self._lock:
            if query and query.strip():
                try:
                    return inert_data(ForumView(forum.search(self.db, query, limit), query))
                except forum.BadPost as exc:
                    return inert_data(ForumView([], query, str(exc)))
            return inert_data(ForumView(forum.recent(self.db, limit)))

    def thread(self, post_id: int) -> dict:
        with self._lock:
            return inert_data(forum.read(self.db, post_id))

    def review(self) -> list[Submission]:
        with self._lock:
            return inert_data(submissions.flagged(self.db))

    def submission(self, submission_id: int) -> ReviewItem:
        with self._lock:
            sub = submissions.get(self.db, submission_id)
        return ReviewItem(inert_data(sub), self.method_diff(sub.commit_sha))

    def blocked(self) -> BlockedAttempts:
        """Blocked attempts, read on from the last event seen: only the first read scans every event."""
        with self._lock:
            rows = events.blocked_after(self.db, self._blocked_after)
            if rows:
                new = [inert_data({k: r[k] for k in ("id", "agent", "created", "summary")}) for r in rows]
                counts = dict(self._blocked.per_agent)
                for attempt in new:
                    counts[attempt["agent"]] = counts.get(attempt["agent"], 0) + 1
                self._blocked_after = rows[0]["id"]
                self._blocked = BlockedAttempts((new + self._blocked.latest)[:BLOCKED_SHOWN], counts)
            return self._blocked
