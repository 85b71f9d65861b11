"""Budgets from lab.toml, per agent and for the whole lab: hours, dollars, tokens, scorer queries."""
from __future__ import annotations

from typing import TYPE_CHECKING

from lab.errors import LabError
from lab.store import agents

if TYPE_CHECKING:
    from lab.settings import Settings
    from lab.store import Database


class BudgetReached(LabError):
    """An agent, or the lab, has spent what lab.toml allows; the agent stops cleanly."""


def _spent(row: dict) -> dict[str, float]:
    return {"hours": (row.get("active_s") or 0) / 3600, "dollars": row.get("dollars") or 0,
            "tokens": (row.get("tokens_in") or 0) + (row.get("tokens_out") or 0),
            "scorer_queries": row.get("scorer_queries") or 0}


def _over(limit, spent: dict[str, float], who: str) -> None:
    for key, used in spent.items():
        allowed = getattr(limit, key)
        if allowed and used >= allowed:
            raise BudgetReached(f"{who} has reached its budget of {allowed:g} {key.replace('_', ' ')} "
                                f"(spent {used:.4g}; raise [budget.{'lab' if who == 'the lab' else 'agent'}] "
                                f"{key} in lab.toml)")


def check(db: Database, cfg: Settings, agent: str) -> None:
    _over(cfg.budget.agent, _spent(agents.get(db, agent)), agent)
    _over(cfg.budget.lab, _spent(agents.totals(db)), "the lab")
