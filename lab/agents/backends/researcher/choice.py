"""The next recipe: the best known one on an unflagged line, changed along one dimension (its direction's
dimensions first); now and then crossed with the best of another lineage; never a recipe tried before. Where
every step from the best is tried, the next best is the parent, and so on down the known recipes: nine agents
try every step from the best five in about half an hour, and a researcher at a local optimum looks further
afield rather than stopping."""
from __future__ import annotations

from dataclasses import dataclass

from lab.agents.backends import recipes
from lab.agents.backends.researcher import knowledge
from lab.agents.backends.researcher.context import Context
from lab.agents.backends.researcher.state import Known

OWN_LINEAGE = 2         # experiments on its direction's own starting recipe before building on the best
EXPLORE_EVERY = 4       # every n-th experiment changes a dimension outside the direction
CROSS_EVERY = 5         # every n-th experiment crosses the best recipe with another lineage's best


@dataclass
class Choice:
    recipe: dict
    parent: Known | None
    why: str


def choose(ctx: Context) -> Choice | None:
    """The next experiment, or None when every step from every known recipe has been tried.

    A recipe on a flagged line (see knowledge.flagged_line) is a parent only where no other is known."""
    s, start = ctx.state, ctx.focus.start
    n = s.experiments
    if not knowledge.is_tried(s, start):
        return Choice(start, None, f"the starting point of {ctx.focus.label}")
    ranked = knowledge.ranked(s)
    own_start = s.known.get(recipes.key(start))
    parents = ranked
    if n < OWN_LINEAGE + 1 and own_start and own_start.pgr is not None:
        parents = [own_start] + [e for e in ranked if e is not own_start]
    if not parents:
        parents = [knowledge.entry(s, start)]
    parents, only_flagged = knowledge.unflagged_first(s, parents)
    if n % CROSS_EVERY == CROSS_EVERY - 1 and len(ranked) > 1:
        best = parents[0]
        for other in ranked[1:6]:
            if other.author == best.author and other.author == ctx.agent:
                continue
            if not only_flagged and knowledge.flagged_line(s, other):
                continue
            for child in recipes.crossovers(best.recipe, other.recipe):
                if not knowledge.is_tried(s, child):
                    return Choice(child, best, f"combining with {knowledge.who(other)} (PGR {other.pgr:+.2f})")
    explore = n % EXPLORE_EVERY == EXPLORE_EVERY - 1
    counts = recipes.setting_counts(s.known)
    for parent in parents:
        parent_key = recipes.key(parent.recipe)
        if parent_key in ctx.exhausted:
            continue
        for name in dimension_order(ctx, explore):
            dim = recipes.DIMENSIONS[name]
            for child in recipes.neighbours(parent.recipe, dim, counts[name]):
                if not knowledge.is_tried(s, child):
                    if name in ctx.focus.dims:
                        s.focus_pos += 1
                    return Choice(child, parent, f"changing {dim.words}")
        ctx.exhausted.add(parent_key)
    return None


def dimension_order(ctx: Context, explore: bool) -> list[str]:
    """Its direction's dimensions, rotated so each gets its turn; then (or, when exploring, first) the
    others, those that helped most so far first."""
    focus = list(ctx.focus.dims)
    i = ctx.state.focus_pos % len(focus)
    rotated = focus[i:] + focus[:i]
    others = other_dimensions(ctx)
    return others + rotated if explore else rotated + others


def other_dimensions(ctx: Context) -> list[str]:
    # in an order of this agent's own, so that agents sharing a parent try different things
    base = recipes.stable_order([d for d in recipes.SEARCHED if d not in ctx.focus.dims], ctx.agent)

    def mean_effect(dim: str) -> float:
        deltas = ctx.state.effects.get(dim) or [0.0]
        return sum(deltas) / len(deltas)
    return sorted(base, key=lambda d: -mean_effect(d))
