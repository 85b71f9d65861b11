"""Submitting sparingly: only a recipe that beats this agent's best unflagged submission by more than the noise on
the half of the public test texts it was chosen on, is not below the lab's best by more than those texts' noise, and
is not on a line the scorer flagged; then the same on the other half, which chose nothing (with a bar that rises
with the candidates confirmed so far: the more variants tried, the more one of them beats the bar by luck); then a
fresh look at the leaderboard, and the submission. Submissions are ranked on texts no agent sees: a recipe picked for its luck on the public texts
only widens the gap between its public and private PGR.

The scorer queues a submission and answers at once; the researcher goes on with its next experiment, asks about the
submission now and then (at once after a note from the scorer), and posts what the scorer made of it (its flags
included) when the result is in."""
from __future__ import annotations

import math
import time
from statistics import NormalDist

from lab.agents.backends import recipes
from lab.agents.backends.researcher import budget, forum, knowledge, prose
from lab.agents.backends.researcher.context import Context, Move, ask
from lab.agents.backends.researcher.halves import CONFIRM
from lab.agents.backends.researcher.state import Experiment, Stage, Submission
from lab.agents.turns import ToolResult
from lab.errors import is_lab_fault

CHECK_EVERY_S = 60      # between questions to the scorer about a submission it is working on
WAIT_S = 60             # the longest single wait for a result, when there is nothing else to do
CONFIRM_LEVEL = 0.16    # a candidate's chance of clearing the confirmation bar by luck, shared by all confirmed


def beats(mean: float, se: float, own_best: dict | None, board_best: float | None, text_se: float) -> bool:
    """Whether a candidate (mean dev PGR over a few seeds, its standard error) is worth a submission:
    above this agent's best submission ({"pgr", "se"}) by more than the combined noise, and not below the
    lab's best by more than the public texts' noise (`text_se`). Submissions are ranked on texts no agent
    sees, where a recipe within that noise of the public best is as likely to rank above it as below;
    asking for more than the best's public figure would select recipes for their luck on the public texts."""
    if own_best is not None:
        margin = math.sqrt(se ** 2 + float(own_best.get("se") or 0.0) ** 2)
        if mean <= float(own_best["pgr"]) + margin:
            return False
    if board_best is not None and mean < board_best - text_se:
        return False
    return True


def own_best(ctx: Context) -> Submission | None:
    """Its best submission that the scorer did not flag."""
    scored = [(x.pgr, x) for x in ctx.state.submissions if isinstance(x.pgr, (int, float)) and not x.flags]
    return max(scored, key=lambda pair: pair[0])[1] if scored else None


def own_best_confirmed(ctx: Context) -> float | None:
    """The confirmation-half PGR of its best confirmed, unflagged submission."""
    confirmed = [x.confirmed for x in ctx.state.submissions if x.confirmed is not None and not x.flags]
    return max(confirmed) if confirmed else None


def holds_up(ctx: Context, exp: Experiment) -> bool:
    """Whether the candidate's confirmation-half PGR beats its best confirmed submission's by more than the noise,
    at a bar that rises with the candidates confirmed so far (Bonferroni over them)."""
    best = own_best_confirmed(ctx)
    if best is None:
        return True
    z = NormalDist().inv_cdf(1 - CONFIRM_LEVEL / max(1, ctx.state.confirmations))
    se = knowledge.noise(ctx.state) * math.sqrt(2 / len(exp.confirmed))   # the best's had about as many seeds
    return sum(exp.confirmed) / len(exp.confirmed) > best + z * se


def clears_the_bar(ctx: Context, exp: Experiment) -> bool:
    """Committed, confirmed on more than one seed, not yet scored, within budget, and better than what
    this agent and the lab have by more than the noise."""
    if not exp.commit or len(exp.pgrs) < 2 or budget.submits_left(ctx) < 1:
        return False
    entry = ctx.state.known.get(exp.key)
    if entry is not None and entry.scored:
        return False
    best = own_best(ctx)
    return beats(exp.mean, knowledge.noise(ctx.state) / math.sqrt(len(exp.pgrs)),
                 None if best is None else {"pgr": best.pgr, "se": best.se}, ctx.state.board_best,
                 knowledge.text_noise(ctx.state))


def flagged_line_reason(ctx: Context, exp: Experiment) -> str | None:
    flagged = knowledge.flagged_ancestry(ctx.state, exp)
    if flagged is None:
        return None
    return f"it builds on {prose.flagged_line(flagged, knowledge.is_parent_of(flagged, exp))}"


def worth_submitting(ctx: Context, exp: Experiment) -> bool:
    return clears_the_bar(ctx, exp) and flagged_line_reason(ctx, exp) is None


def after_post(ctx: Context, exp: Experiment) -> None:
    """After the result is posted: confirmation on the other half where it is worth submitting, else done."""
    if worth_submitting(ctx, exp):
        exp.stage = Stage.CONFIRM
        return
    reason = flagged_line_reason(ctx, exp)
    if reason and clears_the_bar(ctx, exp):
        ctx.state.notes.append(f"- not submitting {exp.tag}: {reason}")
    ctx.state.current = None


def confirm(ctx: Context, exp: Experiment) -> Move:
    """Score the next seed's predictions on the confirmation half; with every seed scored, go on or stop there."""
    predictions = exp.predicted[len(exp.confirmed)]

    def after(results: list[ToolResult]) -> None:
        result = results[0] if results else None
        if result is None:
            return
        data = result.data or {}
        kind = data.get("kind")
        if result.is_error and (kind == "BudgetExceeded" or is_lab_fault(kind)):
            (budget.evaluation_refused if kind == "BudgetExceeded" else budget.lab_failed)(ctx.state.clock, result)
            return      # the stage stays
        if result.is_error:
            ctx.state.notes.append(f"- not submitting {exp.tag}: confirming it failed ({prose.first_line(result)})")
            ctx.state.current = None
            return
        budget.evaluation_spent(ctx.state.clock)
        exp.confirmed.append(float(data["pgr"]))
        if len(exp.confirmed) < len(exp.predicted):
            return
        ctx.state.confirmations += 1
        mean_b = sum(exp.confirmed) / len(exp.confirmed)
        if holds_up(ctx, exp):
            exp.stage = Stage.CHECK
            return
        ctx.state.notes.append(f"- not submitting {exp.tag}: PGR {exp.mean:+.2f} on the half it was chosen on, "
                               f"{mean_b:+.2f} on the other half, not above its best by more than the noise")
        ctx.state.current = None
    return budget.evaluate_wait(ctx) or ask(
        f"confirming {exp.tag} on the other half of the public texts (seed {len(exp.confirmed)})",
        [("evaluate", {"predictions": predictions, "part": CONFIRM})], after)


def check(ctx: Context, exp: Experiment) -> Move:
    def after(results: list[ToolResult]) -> None:
        forum.learn(ctx, results)
        ctx.state.last_orient = ctx.state.experiments
        if worth_submitting(ctx, exp):
            exp.stage = Stage.SUBMIT
            return
        ctx.state.notes.append(f"- not submitting {exp.tag}: "
                               f"{flagged_line_reason(ctx, exp) or 'the leaderboard moved past it'}")
        ctx.state.current = None
    return ask(f"checking the leaderboard before submitting {exp.tag}",
               [("leaderboard", {"limit": 50}), ("forum_read", {"order": "new", "limit": 30})], after)


def submit(ctx: Context, exp: Experiment) -> Move:
    """Queue the experiment with the scorer; while an earlier submission is still being scored, wait for
    its result first (it may raise the bar this one has to clear: see settled)."""
    if ctx.state.awaiting is not None:
        return follow_up(ctx, wait_s=WAIT_S)
    step = (f"submitting {exp.committed[:10]} (dev PGR {exp.mean:+.2f} on {len(exp.pgrs)} seeds, "
            f"{recipes.describe(exp.recipe)})")
    return budget.submit_wait(ctx) or ask(step, [("submit", {"commit": exp.committed})],
                                             lambda results: after_submit(ctx, exp, results))


def after_submit(ctx: Context, exp: Experiment, results: list[ToolResult]) -> None:
    """Queued: the experiment waits for its result beside the next one. Refused: noted, or tried again
    once the scorer is back or the budget frees up."""
    s = ctx.state
    result = results[0] if results else None
    if result is None:
        return
    if result.is_error:
        kind = (result.data or {}).get("kind")
        if is_lab_fault(kind):
            budget.lab_failed(s.clock, result)
            return      # the stage stays: submit once the scorer answers again (or the lab is back)
        if kind == "BudgetExceeded":
            budget.submission_refused(s.clock, result)
        s.notes.append(f"- submitting {exp.committed[:10]} failed: {prose.first_line(result)[:200]}")
        s.current = None
        return
    budget.submission_spent(s.clock)
    request = (result.data or {}).get("request")
    if not isinstance(request, int):
        s.notes.append(f"- submitting {exp.committed[:10]}: the scorer gave no request id "
                       f"({prose.first_line(result)[:200]})")
        s.current = None
        return
    exp.request, exp.stage = request, Stage.AWAIT
    s.awaiting, s.awaiting_checked, s.current = exp, time.time(), None


def due(ctx: Context) -> bool:
    """Whether to ask about the submission being scored now: its result is in and waits to be posted, the
    scorer sent a note, or it has been a while."""
    s = ctx.state
    return s.awaiting is not None and (s.awaiting.stage == Stage.POST_SUBMISSION
                                       or time.time() - s.awaiting_checked >= CHECK_EVERY_S)


def heard_from_scorer(ctx: Context) -> None:
    """A note from the scorer: a result may be in, so ask at the next step."""
    ctx.state.awaiting_checked = 0.0


def follow_up(ctx: Context, wait_s: float = 0) -> Move:
    """Post the submission's result if it is in; else ask the scorer about it (waiting up to wait_s)."""
    exp = ctx.state.awaiting
    assert exp is not None      # asked only while a submission is awaited
    if exp.stage == Stage.POST_SUBMISSION:
        return post_submission(ctx, exp)
    step = (f"waiting for the scorer's result of {exp.committed[:10]} (request {exp.request})" if wait_s
            else f"asking the scorer about {exp.committed[:10]} (request {exp.request})")
    return ask(step, [("submission", {"request": exp.request, "wait_s": wait_s})],
               lambda results: after_result(ctx, exp, results))


def after_result(ctx: Context, exp: Experiment, results: list[ToolResult]) -> None:
    s = ctx.state
    s.awaiting_checked = time.time()
    result = results[0] if results else None
    if result is None:
        return
    data = result.data or {}
    if result.is_error and data.get("state") != "failed" and data.get("kind") in ("ScorerUnavailable", "ToolError"):
        return          # ask again later
    if result.is_error:
        why = data.get("reason") or prose.first_line(result)
        s.notes.append(f"- submission of {exp.committed[:10]} (request {exp.request}) failed: {why[:200]}")
        s.awaiting = None
        settled(ctx)
        return
    if data.get("state") != "done":
        return
    sub = Submission(submission=data.get("submission"), commit=exp.committed, key=exp.key, pgr=data.get("pgr"),
                     se=data.get("pgr_se"), acc=data.get("acc"), seeds=data.get("seeds"),
                     flags=forum.read_flags(data.get("flags")),
                     teacher=forum.read_teacher(data.get("teacher_dependence")),
                     confirmed=sum(exp.confirmed) / len(exp.confirmed) if exp.confirmed else None)
    s.submissions.append(sub)
    entry = knowledge.entry(s, exp.recipe, author=ctx.agent)
    if isinstance(sub.pgr, (int, float)):
        entry.pgr, entry.se, entry.scored, entry.commit = float(sub.pgr), sub.se, True, exp.commit
        entry.seeds = (len(sub.seeds) if isinstance(sub.seeds, list) else 0) or ctx.cfg.scorer.seeds
        if not sub.flags:
            s.board_best = max(s.board_best if s.board_best is not None else -1e9, float(sub.pgr))
    forum.set_flags(entry, sub.flags, sub.submission, sub.teacher)
    if sub.flags:
        s.notes.append(prose.flagged_submission_note(exp, sub))
    exp.submitted, exp.stage = sub, Stage.POST_SUBMISSION
    settled(ctx)


def settled(ctx: Context) -> None:
    """A submission's outcome is in: a candidate that waited for it looks at the bar again before it goes."""
    current = ctx.state.current
    if current is not None and current.stage == Stage.SUBMIT:
        current.stage = Stage.CHECK


def post_submission(ctx: Context, exp: Experiment) -> Move:
    sub = exp.submitted
    assert sub is not None      # its result is in (Stage.POST_SUBMISSION)
    args, note = prose.submission_post(exp, sub)

    def after(results: list[ToolResult]) -> None:
        s = ctx.state
        if s.awaiting is exp:
            s.awaiting = None
        if s.current is exp:    # a state saved before submissions were queued
            s.current = None
    return ask(f"posting submission {sub.submission}: dev PGR {sub.pgr:+.2f}",
               [("forum_post", args), ("notebook", {"action": "append", "text": prose.notebook_text(ctx, note)})],
               after)
