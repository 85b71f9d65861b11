"""The agents at a glance: state, best PGR, spend, what each is doing now."""
from __future__ import annotations

from lab import score_text
from lab.tui import format as fmt
from lab.tui.widgets.synced_table import SyncedTable

COLUMNS = [("name", "agent"), ("state", "state"), ("best", "best PGR"), ("exps", "exps"), ("dollars", "$"),
           ("rate", "$/h"), ("tokens", "tokens"), ("uptime", "uptime"), ("step", "step / reason"), ("slice", "slice"),
           ("backend", "backend"), ("model", "model"), ("direction", "direction")]


class AgentsTable(SyncedTable):
    def __init__(self, **kwargs):
        super().__init__(COLUMNS, **kwargs)

    def show(self, status: dict) -> None:
        rows = []
        for a in status["agents"]:
            doing = a["step"] if a["state"] in ("running", "starting") else a["reason"]
            rows.append((a["name"], (a["name"], fmt.state(a["state"]), score_text.pgr(a["best_pgr"]),
                                     str(a["experiments"]),
                                     fmt.dollars(a["dollars"]), fmt.dollars(a["dollars_per_hour"]),
                                     fmt.tokens(a["tokens"]), fmt.duration(a["uptime_s"]), (doing or "")[:48],
                                     a["slice"] or "-", a["backend"] or "-", fmt.model(a["model"], a["effort"]),
                                     (a["direction"] or "")[:40])))
        self.sync(rows)
