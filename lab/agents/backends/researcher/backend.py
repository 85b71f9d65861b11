"""The researcher behind the backend interface: each step reads the forum now and then, else asks the
scorer about a submission it is working on (when due), else moves the experiment in flight a stage on,
else starts the next one; each observation hands the results to the handler of the turn that asked."""
from __future__ import annotations

import re
from typing import TYPE_CHECKING, Callable

from lab.agents.backends import recipes
from lab.agents.backends.researcher import forum, stages, submission
from lab.agents.backends.researcher.context import Context, Move
from lab.agents.backends.researcher.state import from_json, to_json
from lab.agents.turns import AgentFinished, AgentWorld, Message, ToolResult, Turn

if TYPE_CHECKING:
    from lab.settings import Settings

ORIENT_EVERY = 1        # experiments between readings of the newest posts (others' runs are not repeated)
MAX_FAIL_STREAK = 5     # failed experiments in a row before the researcher gives up


class ResearcherBackend:
    name = "researcher"

    def __init__(self, cfg: Settings, world: AgentWorld, saved: dict | None):
        state = from_json(saved, world.direction)
        self.ctx = Context(state, cfg, world.name, recipes.focus_for(state.direction, world.name))
        self.pending: Callable[[list[ToolResult]], None] | None = None   # the handler of the last turn's results

    # ---- the protocol --------------------------------------------------------------------------
    def step(self, inbox: list[Message]) -> Turn:
        for message in inbox:
            self.hear(message)
        self.ctx.state.turns += 1
        move = self.next_move()
        self.pending = move.after
        for i, call in enumerate(move.turn.calls):
            call.id = f"r{self.ctx.state.turns}-{i}"
        return move.turn

    def observe(self, results: list[ToolResult]) -> None:
        after, self.pending = self.pending, None
        if after is not None:
            after(results)

    def state(self) -> dict:
        return to_json(self.ctx.state)

    # ---- the loop ------------------------------------------------------------------------------
    def next_move(self) -> Move:
        s = self.ctx.state
        if s.last_orient is None:
            return forum.orient(self.ctx, first=not s.read_notebook)
        if submission.due(self.ctx):
            return submission.follow_up(self.ctx)
        if s.current:
            return stages.advance(self.ctx)
        try:
            if s.fail_streak >= MAX_FAIL_STREAK:
                raise AgentFinished(f"{s.fail_streak} experiments in a row failed; the last: {s.last_error}")
            if s.experiments - s.last_orient >= ORIENT_EVERY:
                return forum.orient(self.ctx, first=False)
            return stages.start(self.ctx)
        except AgentFinished:
            if s.awaiting is not None:     # nothing else to do: wait for the submission's result first
                return submission.follow_up(self.ctx, wait_s=submission.WAIT_S)
            raise

    # ---- the person ----------------------------------------------------------------------------
    def hear(self, message: Message) -> None:
        s = self.ctx.state
        if message.author == "scorer":     # a submission's result is in: the next step asks for it
            submission.heard_from_scorer(self.ctx)
            return
        s.messages.append(Message(message.author, message.text))
        match = re.search(r"direction\s*[:=]\s*(.+)", message.text, re.I | re.S)
        if match:
            s.direction = match.group(1).strip()
            self.ctx.focus = recipes.focus_for(s.direction, self.ctx.agent)
            s.notes.append(f"- new direction from {message.author}: {s.direction} (focus: {self.ctx.focus.label})")
        else:
            s.notes.append(f"- message from {message.author}: {message.text.strip()[:300]}")
