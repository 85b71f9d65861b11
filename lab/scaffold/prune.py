"""Unreachable objects of the research repository, pruned on a schedule (agents.prune_every_minutes).

Its gc.auto is 0 (lab.scaffold.repo), so nothing else ever drops an object: without this, a branch an agent publishes
and then resets keeps its bytes for good. Every ref pins what it reaches: the agents' branches, the scored commits
(refs/lab/scored/*), the commits forum posts name (refs/lab/posted/*) and a publish in flight (refs/lab/incoming/*). An object is pruned only once it is older than
agents.prune_grace_minutes too, so that neither a publish whose pack has arrived but whose ref is not written yet (a
few milliseconds), nor an agent's repository that borrows the objects (alternates) and still names a commit its
branch left a moment ago, loses one.
"""
from __future__ import annotations

import threading
import time
from typing import TYPE_CHECKING, Callable

from lab.errors import LabError
from lab.scaffold.repo import research_repo_path
from lab.scaffold.safegit import SafeGit

if TYPE_CHECKING:
    from lab.settings import Settings


def stored_bytes(repo: SafeGit) -> int:
    """Bytes the repository's objects take: loose, packed and garbage."""
    counts = dict(line.split(": ", 1) for line in repo.text("count-objects", "-v").splitlines() if ": " in line)
    return sum(int(counts.get(key, 0)) for key in ("size", "size-pack", "size-garbage")) * 1024


def prune(repo: SafeGit, grace_s: float) -> tuple[int, int]:
    """Drop the objects no ref reaches that are older than grace_s; the bytes stored before and after."""
    before = stored_bytes(repo)
    expire = "now" if grace_s <= 0 else f"{int(grace_s)}.seconds.ago"
    repo.run("gc", "--quiet", f"--prune={expire}")
    return before, stored_bytes(repo)


class Pruner:
    """The supervisor's schedule: a prune every prune_every_minutes, each in a thread of its own (its loop goes on)."""

    def __init__(self, cfg: Settings, log: Callable[[str], None], clock: Callable[[], float] = time.monotonic):
        self.repo = SafeGit(research_repo_path(cfg.state_dir))
        self.every_s = cfg.agents.prune_every_minutes * 60
        self.grace_s = cfg.agents.prune_grace_minutes * 60
        self.log, self.clock = log, clock
        self.due = clock() + self.every_s
        self.thread: threading.Thread | None = None

    def start_if_due(self) -> None:
        if self.clock() < self.due or (self.thread is not None and self.thread.is_alive()):
            return
        self.due = self.clock() + self.every_s
        self.thread = threading.Thread(target=self._prune, name="prune", daemon=True)
        self.thread.start()

    def _prune(self) -> None:
        try:
            before, after = prune(self.repo, self.grace_s)
        except LabError as exc:      # a full state disk, a lock held: tried again at the next turn
            self.log(f"research.git not pruned: {exc}")
            return
        self.log(f"research.git pruned: {before / 2**20:.1f} MB -> {after / 2**20:.1f} MB")

    def wait(self) -> None:
        if self.thread is not None:
            self.thread.join()
