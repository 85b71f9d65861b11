"""Starting an experiment (choose a recipe; read the parent's recipe from its commit first where another
agent made it) and moving the experiment in flight through its stages."""
from __future__ import annotations

from typing import Callable

from lab.agents.backends import recipes
from lab.agents.backends.researcher import experiment, forum, knowledge, submission
from lab.agents.backends.researcher.choice import Choice, choose
from lab.agents.backends.researcher.context import Context, Move
from lab.agents.backends.researcher.state import Experiment, Parent, Plan, Stage
from lab.agents.turns import AgentFinished

STAGES: dict[Stage, Callable[[Context, Experiment], Move]] = {
    Stage.RUN: experiment.run,
    Stage.EVALUATE: experiment.evaluate,
    Stage.COMMIT: experiment.commit,
    Stage.REVPARSE: experiment.revparse,
    Stage.POST: experiment.post,
    Stage.CONFIRM: submission.confirm,
    Stage.CHECK: submission.check,
    Stage.SUBMIT: submission.submit,
    Stage.POST_SUBMISSION: submission.post_submission,
}


def advance(ctx: Context) -> Move:
    """The turn of the stage the experiment in flight has reached."""
    exp = ctx.state.current
    assert exp is not None      # advanced only while an experiment is in flight
    return STAGES[exp.stage](ctx, exp)


def start(ctx: Context) -> Move:
    s = ctx.state
    choice = planned_choice(ctx) or choose(ctx)
    if choice is None:
        raise AgentFinished("every recipe one step from a known one has been tried")
    parent = choice.parent
    if parent and parent.author not in (ctx.agent, "baseline", None) and parent.commit \
            and parent.commit not in s.fetched:
        return forum.fetch(ctx, Plan(choice.recipe, recipes.key(parent.recipe), choice.why), parent)
    s.experiments += 1
    s.current = Experiment(tag=f"e{s.experiments:03d}", recipe=choice.recipe, key=recipes.key(choice.recipe),
                           why=choice.why, parent=None if parent is None else Parent(
                               key=recipes.key(parent.recipe), pgr=parent.pgr, commit=parent.commit,
                               author=parent.author, post=parent.post, flags=dict(parent.flags),
                               flagged_in=parent.flagged_in))
    s.tried.append(s.current.key)
    return advance(ctx)


def planned_choice(ctx: Context) -> Choice | None:
    """The experiment chosen before its parent's commit was read, where that still stands."""
    s = ctx.state
    plan, s.planned = s.planned, None
    if plan and plan.parent in s.known and not knowledge.is_tried(s, plan.recipe):
        return Choice(plan.recipe, s.known[plan.parent], plan.why)
    return None
