"""Where a running lab keeps its supervisor's pid, the scorer's URL and the logs; light, so that `lab status`
finds the supervisor without importing it."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from lab import heartbeat


@dataclass
class Paths:
    run: Path
    logs: Path = field(init=False)
    pid: Path = field(init=False)
    url: Path = field(init=False)
    beat: Path = field(init=False)           # the supervisor's heartbeat
    scorer_beat: Path = field(init=False)    # the scorer queue's

    def __post_init__(self):
        self.logs, self.pid, self.url = self.run / "logs", self.run / "supervisor.pid", self.run / "scorer.url"
        self.beat, self.scorer_beat = self.run / heartbeat.SUPERVISOR, self.run / heartbeat.SCORER_QUEUE
