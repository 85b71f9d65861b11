"""The scorer's budgets as this agent keeps count of them: evaluations and submissions per window, when
a refused one (or one the scorer was down for) may be tried again, and a turn that waits for that."""
from __future__ import annotations

import re
import time
from datetime import datetime, timezone

from lab.agents.backends.researcher.context import Context, Move, ask, ignore
from lab.agents.backends.researcher.state import ScorerClock
from lab.agents.turns import ToolResult

WAIT_S = 60             # longest single wait for a budget to free up
DOWN_WAIT_S = 30        # before trying a scorer again that did not answer
FAULT_WAIT_S = 10       # before trying again a call that the lab failed (a full disk, a run killed from outside)


def window_s(ctx: Context) -> float:
    return ctx.cfg.scorer.budget_window_hours * 3600


def evals_left(ctx: Context) -> int:
    now = time.time()
    used = sum(1 for t in ctx.state.clock.eval_times if t > now - window_s(ctx))
    return ctx.cfg.scorer.evaluate_budget - used


def submits_left(ctx: Context) -> int:
    clock, now = ctx.state.clock, time.time()
    if now < clock.submit_free_at:
        return 0
    return ctx.cfg.scorer.submit_budget - sum(1 for t in clock.submit_times if t > now - window_s(ctx))


def evaluation_spent(clock: ScorerClock) -> None:
    clock.eval_times.append(time.time())


def submission_spent(clock: ScorerClock) -> None:
    clock.submit_times.append(time.time())


def evaluation_refused(clock: ScorerClock, result: ToolResult) -> None:
    # wait at least a little, whatever clock the scorer keeps
    clock.eval_free_at = max(free_at(result, time.time() + WAIT_S), time.time() + 10)


def submission_refused(clock: ScorerClock, result: ToolResult) -> None:
    clock.submit_free_at = max(free_at(result, time.time() + 600), time.time() + 60)


def scorer_down(clock: ScorerClock) -> None:
    """The scorer did not answer (down or restarting): evaluations and submissions wait a little."""
    clock.scorer_back_at, clock.waiting_for = time.time() + DOWN_WAIT_S, "the scorer to answer again"


def lab_failed(clock: ScorerClock, result: ToolResult) -> None:
    """A call failed for the lab's own reasons (lab.errors.LAB_FAULTS): not the experiment's failure; the stage is
    tried again after a short wait."""
    kind = (result.data or {}).get("kind")
    if kind == "ScorerUnavailable":
        scorer_down(clock)
        return
    clock.scorer_back_at, clock.waiting_for = time.time() + FAULT_WAIT_S, f"the lab to recover ({kind})"


def evaluate_wait(ctx: Context) -> Move | None:
    """A turn that waits while the evaluate budget is spent, else None."""
    clock, now = ctx.state.clock, time.time()
    free = clock.eval_free_at
    if evals_left(ctx) <= 0 and clock.eval_times:
        used = sorted(t for t in clock.eval_times if t > now - window_s(ctx))
        free = max(free, used[0] + window_s(ctx)) if used else free
    return scorer_wait(ctx) or _wait("the evaluate budget", free)


def submit_wait(ctx: Context) -> Move | None:
    """A turn that waits while the scorer refuses submissions, else None."""
    return scorer_wait(ctx) or _wait("the submit budget", ctx.state.clock.submit_free_at)


def scorer_wait(ctx: Context) -> Move | None:
    """A turn that waits a little for a scorer that did not answer (or a lab that failed a call), else None."""
    clock = ctx.state.clock
    return _wait(clock.waiting_for or "the scorer to answer again", clock.scorer_back_at, "trying")


def _wait(what: str, free: float, verb: str = "free again") -> Move | None:
    """A short sleep in the sandbox until `free` (at most WAIT_S), or None where that time has come."""
    now = time.time()
    if free <= now:
        return None
    seconds = int(min(WAIT_S, max(1, free - now)))
    at = datetime.fromtimestamp(free, timezone.utc).strftime("%H:%M:%S")
    return ask(f"waiting for {what} ({verb} at {at} UTC)",
               [("shell", {"command": f"sleep {seconds}", "timeout_s": seconds + 30})], ignore)


def free_at(result: ToolResult, fallback: float) -> float:
    """When a budget frees up, from BudgetExceeded's "the next one is allowed at ... UTC"."""
    match = re.search(r"allowed at (\d{4}-\d\d-\d\d \d\d:\d\d:\d\d) UTC", result.output or "")
    if not match:
        return fallback
    return datetime.strptime(match.group(1), "%Y-%m-%d %H:%M:%S").replace(tzinfo=timezone.utc).timestamp()
