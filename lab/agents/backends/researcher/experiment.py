"""One experiment, stage by stage: run a seed, evaluate it (a promising recipe gets more seeds), commit
what ran, post the result. Each stage's turn comes with the handler of its results."""
from __future__ import annotations

import json
import math
import re

from lab.agents.backends import recipes
from lab.agents.backends.researcher import budget, knowledge, prose, submission
from lab.agents.backends.researcher.context import Context, Move, ask
from lab.agents.backends.researcher.halves import SELECT
from lab.agents.backends.researcher.state import Experiment, Known, Stage
from lab.agents.turns import ToolResult
from lab.errors import is_lab_fault

CONFIRM_SEEDS = 3       # seeds a promising recipe gets before it may be submitted (the scorer then runs 5)
INSIGHT_EVERY = 10      # experiments between posts of what the experiments so far say


def run(ctx: Context, exp: Experiment) -> Move:
    """Commit the recipe (on its first seed) and run one seed of it through the lab's `run`, the scheduler the
    scorer's runs use: its predictions come back into the worktree for `evaluate`."""
    calls: list[tuple[str, dict]] = []
    if exp.commit is None:
        calls = [("write_file", {"path": "recipe.json", "content": recipes.recipe_json(exp.recipe)}),
                 ("write_file", {"path": "method.py", "content": recipes.METHOD_PY}),
                 ("git_commit", {"message": prose.commit_message(exp)})]
    calls.append(("run", {"commit": exp.commit or "HEAD", "seed": exp.seed}))
    waiting = budget.scorer_wait(ctx)     # the lab failed this stage's calls a moment ago
    if waiting:
        return waiting
    if exp.seed == 0:
        step = f"trying {recipes.describe(exp.recipe)} ({exp.tag}, seed 0)"
        text = f"{exp.tag}: {exp.why}. Recipe: {json.dumps(exp.recipe, sort_keys=True)}"
    else:
        n = len(exp.pgrs)
        step = text = (f"confirming {exp.tag} with seed {exp.seed} (PGR {exp.mean:+.2f} on "
                       f"{n} seed{'s' if n > 1 else ''} so far)")

    def after(results: list[ToolResult]) -> None:
        committed = next((r for r in results if r.name == "git_commit"), None)
        if committed is not None and not committed.is_error:
            exp.commit = (committed.data or {}).get("commit")
        unchanged = committed is not None and committed.is_error and "nothing to commit" in committed.output
        failed = next((r for r in results if r.is_error and not (r is committed and unchanged)), None)
        ran = next((r for r in results if r.name == "run"), None)
        if failed is not None and is_lab_fault((failed.data or {}).get("kind")):
            budget.lab_failed(ctx.state.clock, failed)    # the lab's failure, not the recipe's: the stage again
            return
        if failed is not None or ran is None:
            fail(ctx, exp, f"{failed.name} failed: {prose.first_line(failed)}" if failed else "the run did not run")
            return
        data = ran.data or {}
        exp.commit = exp.commit or data.get("commit_sha")      # nothing to commit: HEAD already held the recipe
        exp.ran, exp.stage = data.get("predictions"), Stage.EVALUATE
    return ask(step, calls, after, text)


def evaluate(ctx: Context, exp: Experiment) -> Move:
    return budget.evaluate_wait(ctx) or ask(
        f"evaluating {exp.tag} seed {exp.seed}", [("evaluate", {"predictions": exp.predictions, "part": SELECT})],
        lambda results: after_evaluate(ctx, exp, results))


def after_evaluate(ctx: Context, exp: Experiment, results: list[ToolResult]) -> None:
    s = ctx.state
    result = results[0] if results else None
    if result is None:
        return
    if result.is_error:
        kind = (result.data or {}).get("kind")
        if kind == "BudgetExceeded" or is_lab_fault(kind):
            if kind == "BudgetExceeded":
                budget.evaluation_refused(s.clock, result)
            else:
                budget.lab_failed(s.clock, result)
            return   # the stage stays: evaluate once the budget frees up or the lab is back
        fail(ctx, exp, f"evaluate failed: {prose.first_line(result)}")
        return
    budget.evaluation_spent(s.clock)
    s.fail_streak = 0
    data = result.data or {}
    knowledge.texts_seen(s, data)
    exp.predicted.append(exp.predictions)
    exp.pgrs.append(float(data["pgr"]))
    exp.accs.append(float(data["acc"]))
    if len(exp.pgrs) == 2:
        s.diffs.append(exp.pgrs[0] - exp.pgrs[1])
    if len(exp.pgrs) < CONFIRM_SEEDS and promising(ctx, exp) and budget.evals_left(ctx) >= 2:
        exp.seed, exp.stage, exp.ran = len(exp.pgrs), Stage.RUN, None
        return
    exp.stage = Stage.POST if exp.commit else Stage.COMMIT


def promising(ctx: Context, exp: Experiment) -> bool:
    """Worth another seed: the seeds so far are within reach of the best recipe known on an unflagged line, that is
    within the noise of which texts the half holds (a recipe there may rank above the best on texts no agent sees)."""
    others = [e for e in knowledge.ranked(ctx.state) if recipes.key(e.recipe) != exp.key]
    others, _ = knowledge.unflagged_first(ctx.state, others)
    if not others:
        return True
    bar = knowledge.value(ctx.state, others[0])
    reach = max(knowledge.text_noise(ctx.state), 0.5 * knowledge.noise(ctx.state) / math.sqrt(len(exp.pgrs)))
    return exp.mean >= bar - reach


def fail(ctx: Context, exp: Experiment, why: str) -> None:
    s = ctx.state
    s.fail_streak += 1
    s.last_error = why
    s.notes.append(f"- {exp.tag} {recipes.describe(exp.recipe)}: FAILED ({why[:200]})")
    knowledge.entry(s, exp.recipe, author=ctx.agent).failed = why[:200]
    if exp.pgrs:   # a later seed failed: keep what the first ones showed
        exp.stage = Stage.COMMIT
        return
    s.current = None


def commit(ctx: Context, exp: Experiment) -> Move:
    def after(results: list[ToolResult]) -> None:
        result = results[0] if results else None
        if result is not None and not result.is_error and result.data and result.data.get("commit"):
            exp.commit, exp.stage = result.data["commit"], Stage.POST
        elif result is not None and "nothing to commit" in result.output:
            exp.stage = Stage.REVPARSE
        else:
            why = prose.first_line(result) if result else "no result"
            ctx.state.notes.append(f"- {exp.tag}: commit failed ({why})")
            exp.stage = Stage.POST
    return ask(f"committing {exp.tag} ({recipes.describe(exp.recipe)})",
               [("git_commit", {"message": prose.commit_message(exp)})], after)


def revparse(ctx: Context, exp: Experiment) -> Move:
    def after(results: list[ToolResult]) -> None:
        result = results[0] if results else None
        sha = ((result.data or {}).get("stdout") or "").strip() if result and not result.is_error else ""
        exp.commit = sha if re.fullmatch(r"[0-9a-f]{40}", sha) else None
        exp.stage = Stage.POST
    return ask(f"finding the commit of {exp.tag}", [("shell", {"command": "git rev-parse HEAD", "timeout_s": 30})],
               after)


def post(ctx: Context, exp: Experiment) -> Move:
    """Post the result with its commit and metrics (saying so where it builds on a flagged line), note it,
    vote for a parent of another agent that it improved on, and now and then post the lessons so far."""
    s = ctx.state
    record(ctx, exp)
    args, note = prose.result_post(ctx, exp, knowledge.flagged_ancestry(ctx.state, exp))
    calls = [("forum_post", args), ("notebook", {"action": "append", "text": prose.notebook_text(ctx, note)})]
    parent = exp.parent
    if parent and parent.post and parent.author not in (ctx.agent, None) and \
            prose.verdict(ctx, exp) == "better than":
        calls.append(("forum_vote", {"post_id": int(parent.post), "value": 1}))
    if s.experiments % INSIGHT_EVERY == 0 and s.effects:
        calls.append(("forum_post", prose.insight_post(ctx)))

    def after(results: list[ToolResult]) -> None:
        submission.after_post(ctx, exp)
    return ask(f"posting {exp.tag}: {recipes.describe(exp.recipe)}, dev PGR {exp.mean:+.2f}", calls, after)


def record(ctx: Context, exp: Experiment) -> Known:
    """Write the experiment into what is known: its PGR, the recipe it was built on, and the effect of
    each dimension it changed."""
    s = ctx.state
    entry = knowledge.entry(s, exp.recipe, author=ctx.agent)
    if not entry.scored and len(exp.pgrs) >= (entry.seeds or 0):
        entry.pgr, entry.seeds, entry.se, entry.author = exp.mean, len(exp.pgrs), None, ctx.agent
        entry.commit = exp.commit or entry.commit
    entry.failed = None
    parent = exp.parent
    if parent is not None and entry.parent is None and parent.key != exp.key:
        entry.parent = parent.key
    if parent and parent.pgr is not None:
        parent_known = s.known.get(parent.key)
        if parent_known is not None:
            for dim in recipes.changed_dims(parent_known.recipe, recipes.canonical(exp.recipe)):
                s.effects.setdefault(dim, []).append(round(exp.mean - parent.pgr, 4))
    return entry

