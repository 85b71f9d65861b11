"""What the lab is spending on model calls now, in dollars an hour, per agent and in all, beside its dollar budgets.

One reading for `lab status`, the TUI and anything else that shows it: an agent's rate is what its calls
cost over the last hour of its current run (over at least its last five minutes, so that one call just
after a start does not read as a fortune an hour); an agent that is not running spends nothing now.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from lab.store import Database

WINDOW_S = 3600.0
SETTLING_S = 300.0
SPENDING = ("starting", "running")


def hourly(db: Database, rows: list[dict], now: float) -> dict[str, float]:
    """Dollars an hour, for each agent whose row (with `name`, `state` and `started`) says it is running."""
    spans = {row["name"]: min(WINDOW_S, max(SETTLING_S, now - (row.get("started") or now)))
             for row in rows if row.get("state") in SPENDING}
    if not spans:
        return {}
    calls = db.execute("SELECT agent, created, dollars FROM model_calls WHERE created >= ?",
                       [now - max(spans.values())]).fetchall()
    spent = dict.fromkeys(spans, 0.0)
    for agent, created, dollars in calls:
        if agent in spans and created >= now - spans[agent]:
            spent[agent] += dollars or 0.0
    return {agent: spent[agent] * 3600.0 / spans[agent] for agent in spans}


def left(budget: float, spent: float) -> float | None:
    """Dollars left of a budget; None where there is no limit (0)."""
    return max(0.0, budget - spent) if budget else None
