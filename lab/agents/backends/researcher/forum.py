"""Learning from others: the notebook, forum posts, the leaderboard (with what the scorer flagged) and
the recipes committed by the agents whose results it builds on."""
from __future__ import annotations

import dataclasses
import json

from lab.agents.backends import recipes
from lab.agents.backends.researcher import knowledge
from lab.agents.backends.researcher.context import Context, Move, ask
from lab.agents.backends.researcher.state import Known, Plan, ResearcherState, TeacherDependence
from lab.agents.turns import ToolResult

FULL_ORIENT_EVERY = 5   # experiments between readings of the top posts as well as the newest


def orient(ctx: Context, first: bool) -> Move:
    s = ctx.state
    calls: list[tuple[str, dict]] = []
    if first:
        calls.append(("notebook", {"action": "read"}))
    if first or s.last_orient is None or s.experiments % FULL_ORIENT_EVERY == 0:
        calls.append(("forum_read", {"order": "top", "limit": 30}))
    calls += [("forum_read", {"order": "new", "limit": 30}), ("leaderboard", {"limit": 50})]
    step = (f"reading notebook, forum and leaderboard before trying {ctx.focus.label}" if first
            else "reading the newest forum posts and the leaderboard")

    def after(results: list[ToolResult]) -> None:
        learn(ctx, results)
        s.last_orient = s.experiments
    return ask(step, calls, after, f"Direction: {s.direction}" if first else step)


def learn(ctx: Context, results: list[ToolResult]) -> None:
    """Take in what a reading of the notebook, the forum and the leaderboard returned."""
    for result in results:
        if result.is_error or not result.data:
            continue
        if result.name == "notebook":
            ctx.state.read_notebook = True
        elif result.name in ("forum_read", "forum_search"):
            posts = result.data.get("posts") or ([result.data["post"]] if result.data.get("post") else [])
            for post in posts:
                learn_post(ctx.state, post)
        elif result.name == "leaderboard":
            learn_board(ctx, result.data.get("leaderboard") or [])


def learn_post(state: ResearcherState, post: dict) -> None:
    recipe = recipes.recipe_of_post(post)
    metrics = post.get("metrics") or {}
    if recipe is None or not isinstance(metrics.get("pgr"), (int, float)):
        return
    seeds = metrics.get("seeds")
    seeds = int(seeds) if isinstance(seeds, (int, float)) and seeds >= 1 else 1
    entry = knowledge.entry(state, recipe, author=post.get("author"))
    if seeds >= (entry.seeds or 0):
        se = metrics.get("pgr_se")
        entry.pgr, entry.seeds = float(metrics["pgr"]), seeds
        entry.se = float(se) if isinstance(se, (int, float)) and se > 0 else None
        entry.commit = post.get("commit_sha") or entry.commit
        entry.post, entry.author = post.get("id"), post.get("author")
    if entry.parent is None and metrics.get("parent_commit"):
        parent = next((k for k, e in state.known.items() if e.commit == metrics["parent_commit"]), None)
        entry.parent = parent if parent != recipes.key(recipe) else None


def learn_board(ctx: Context, rows: list[dict]) -> None:
    """Scores, flags and teacher dependence of the submissions of recipes it knows; the best unflagged PGR."""
    state = ctx.state
    by_commit: dict[str | None, Known] = {e.commit: e for e in state.known.values() if e.commit}
    scored, best = False, None
    for row in rows:
        pgr = row.get("pgr")
        if not isinstance(pgr, (int, float)):
            continue
        scored = True
        flags = read_flags(row.get("flags"))
        if not flags:
            best = pgr if best is None else max(best, pgr)
        entry = by_commit.get(row.get("commit"))
        if entry is None and row.get("agent") == "baseline" and row.get("method") in recipes.BASELINE_RECIPES:
            entry = knowledge.entry(state, recipes.BASELINE_RECIPES[row["method"]], author="baseline")
            entry.commit = row.get("commit")
        if entry is not None:
            entry.pgr, entry.se, entry.seeds, entry.scored = float(pgr), row.get("pgr_se"), ctx.cfg.scorer.seeds, True
            if "flags" in row:      # a board without the key says nothing of flags; an empty list clears them
                set_flags(entry, flags, row.get("submission"), read_teacher(row.get("teacher_dependence")))
    if scored:
        state.board_best = best       # None where every scored submission is flagged


def read_flags(raw) -> dict[str, str]:
    """kind -> message from the scorer's flags: dicts with "kind" and "message", or bare kinds."""
    flags: dict[str, str] = {}
    for item in raw if isinstance(raw, list) else []:
        if isinstance(item, str) and item:
            flags.setdefault(item, "")
        elif isinstance(item, dict) and isinstance(item.get("kind"), str):
            flags[item["kind"]] = str(item.get("message") or flags.get(item["kind"], ""))
    return flags


def read_teacher(raw) -> TeacherDependence | None:
    if not isinstance(raw, dict):
        return None
    numbers = {k: raw.get(k) if isinstance(raw.get(k), (int, float)) else None
               for k in ("pgr", "counterfactual_pgr", "difference", "difference_se")}
    return TeacherDependence(**numbers, seeds=raw.get("seeds"))


def set_flags(entry: Known, flags: dict[str, str], submission, teacher: TeacherDependence | None) -> None:
    """What the scorer now says of a recipe's submission; messages already known are kept where the
    leaderboard gives the kinds alone."""
    entry.flags = {kind: message or entry.flags.get(kind, "") for kind, message in flags.items()}
    entry.flagged_in = submission if flags and isinstance(submission, int) else None
    entry.teacher = teacher or entry.teacher


# ---- reading a recipe from another agent's commit ----------------------------------------------
def fetch(ctx: Context, plan: Plan, parent: Known) -> Move:
    """Build on another agent's result from its commit: first read the recipe it committed."""
    commit = parent.commit
    assert commit is not None   # fetched only from a commit (stages.start)
    ctx.state.planned = plan
    step = f"reading the recipe of {knowledge.who(parent)} (PGR {parent.pgr:+.2f}) to build on it"
    return ask(step, [("shell", {"command": f"git show {commit}:recipe.json", "timeout_s": 30})],
               lambda results: learn_fetched(ctx.state, commit, results))


def learn_fetched(state: ResearcherState, commit: str, results: list[ToolResult]) -> None:
    result = results[0] if results else None
    recipe = None
    if result is not None and not result.is_error and result.data:
        try:
            recipe = recipes.valid(json.loads(result.data.get("stdout") or ""))
        except ValueError:
            recipe = None
    # what the commit holds is what its author ran; where it holds no recipe, trust the post
    state.fetched[commit] = recipe or {}
    if recipe is None:
        return
    for old_key, entry in list(state.known.items()):
        if entry.commit == commit and old_key != recipes.key(recipe):
            # the post described it differently: file the result under what the commit runs, and
            # plan afresh from there
            del state.known[old_key]
            state.known.setdefault(recipes.key(recipe), dataclasses.replace(entry, recipe=recipe))
            state.planned = None
