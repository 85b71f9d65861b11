"""What the researcher believes of each recipe it knows: its value given the noise, its rank, and
whether its line of work (it, the recipe it was built on, and so on up) was flagged by the scorer."""
from __future__ import annotations

import math

from lab.agents.backends import recipes
from lab.agents.backends.researcher.state import Experiment, Known, Parent, ResearcherState

NOISE = 0.05            # prior for the spread of one seed's dev PGR (measured: 0.04 to 0.06)
# Share of the test texts on which two nearby recipes' predictions differ (bench/bench_recipe_transfer.py measures
# it: a median of 0.028, quartiles 0.021 and 0.055, from the elicitation start to its one-step neighbours). Seeds do
# not average out which texts a half holds: the PGR difference of two recipes on a half of n texts has an SE of
# sqrt(this / n) / gap.
DISAGREEMENT = 0.03
TEXT_NOISE = math.sqrt(DISAGREEMENT / 550) / 0.118   # that SE (0.063) before an evaluation says the half's size and gap


def entry(state: ResearcherState, recipe: dict, author: str | None = None) -> Known:
    """What is known of a recipe, made empty on first sight."""
    k = recipes.key(recipe)
    if k not in state.known:
        state.known[k] = Known(recipe=recipes.canonical(recipe), author=author)
    return state.known[k]


def is_tried(state: ResearcherState, recipe: dict) -> bool:
    k = recipes.key(recipe)
    return k in state.tried or k in state.known


def noise(state: ResearcherState) -> float:
    """The spread of one seed's dev PGR: measured from confirmations, the prior until there are some."""
    if len(state.diffs) < 3:
        return NOISE
    return min(0.15, max(0.02, math.sqrt(sum(d * d for d in state.diffs) / (2 * len(state.diffs)))))


def text_noise(state: ResearcherState) -> float:
    """The SE of two nearby recipes' PGR difference that comes from which texts the half holds."""
    return state.text_noise or TEXT_NOISE


def texts_seen(state: ResearcherState, data: dict) -> None:
    """Learn the half's size and the dev gap from an evaluation's answer."""
    try:
        texts, gap = int(data["texts"]), float(data["ceiling_acc"]) - float(data["weak_acc"])
    except (KeyError, TypeError, ValueError):
        return
    if texts > 0 and gap > 0:
        state.text_noise = math.sqrt(DISAGREEMENT / texts) / gap


def standard_error(state: ResearcherState, known: Known) -> float:
    if known.se:
        return float(known.se)
    return noise(state) / math.sqrt(max(1, known.seeds or 1))


def value(state: ResearcherState, known: Known) -> float:
    """What a recipe is believed to score, a little below its mean where few seeds back it."""
    assert known.pgr is not None    # only scored recipes are ranked
    return known.pgr - 0.5 * standard_error(state, known)


def ranked(state: ResearcherState) -> list[Known]:
    scored = [e for e in state.known.values() if isinstance(e.pgr, (int, float))]
    return sorted(scored, key=lambda e: value(state, e), reverse=True)


def flagged_line(state: ResearcherState, known: Known) -> Known | None:
    """The nearest flagged recipe on this recipe's line of work (itself first), or None."""
    seen: set[str] = set()
    here: Known | None = known
    while here is not None:
        if here.flags:
            return here
        if here.parent is None or here.parent in seen:
            return None
        seen.add(here.parent)
        here = state.known.get(here.parent)
    return None


def flagged_ancestry(state: ResearcherState, exp: Experiment) -> Known | Parent | None:
    """The flagged recipe on the line an experiment builds on, as known now (or when it was chosen)."""
    if exp.parent is None:
        return None
    known = state.known.get(exp.parent.key)
    if known is not None:
        return flagged_line(state, known)
    return exp.parent if exp.parent.flags else None


def is_parent_of(flagged: Known | Parent, exp: Experiment) -> bool:
    return exp.parent is not None and (flagged is exp.parent or (
        isinstance(flagged, Known) and recipes.key(flagged.recipe) == exp.parent.key))


def unflagged_first(state: ResearcherState, entries: list[Known]) -> tuple[list[Known], bool]:
    """The entries on unflagged lines, or all of them where every line is flagged (then True)."""
    clean = [e for e in entries if flagged_line(state, e) is None]
    return (clean, False) if clean or not entries else (entries, True)


def who(known: Known | Parent) -> str:
    author = known.author or "?"
    return f"{author}'s {known.commit[:10]}" if known.commit else author
