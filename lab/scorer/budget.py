"""Per-agent query budgets over a sliding window."""
from __future__ import annotations

import time
from datetime import datetime, timezone
from typing import TYPE_CHECKING

from lab.errors import BudgetExceeded
from lab.store import submissions

if TYPE_CHECKING:
    from lab.store import Database

UNBUDGETED = ("person", "baseline")


def check(db: Database, table: str, agent: str, allowed: int, window_hours: float,
          now: float | None = None) -> None:
    if agent in UNBUDGETED:
        return
    now = time.time() if now is None else now
    window = window_hours * 3600
    used = submissions.recent(db, table, agent, now - window)
    if len(used) >= allowed:
        frees = datetime.fromtimestamp(used[len(used) - allowed] + window, timezone.utc)
        what = "evaluations" if table == "evaluations" else "submissions"
        raise BudgetExceeded(f"{agent} has used its {allowed} {what} per {window_hours:g} h; "
                             f"the next one is allowed at {frees:%Y-%m-%d %H:%M:%S} UTC")
