"""What every part of the researcher works with, and a Move: a turn beside the handler of its results."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Callable

from lab.agents.backends.recipes import Focus
from lab.agents.backends.researcher.state import ResearcherState
from lab.agents.turns import ToolCall, ToolResult, Turn

if TYPE_CHECKING:
    from lab.settings import Settings


@dataclass
class Context:
    state: ResearcherState
    cfg: Settings
    agent: str                  # agent-3
    focus: Focus                # the dimensions and starting recipe of its direction
    # keys of recipes whose every one-step neighbour is tried: a cache, as a tried recipe stays tried
    exhausted: set[str] = field(default_factory=set)


@dataclass
class Move:
    turn: Turn
    after: Callable[[list[ToolResult]], None]     # what the results of the turn's calls change


def ask(step: str, calls: list[tuple[str, dict]], after: Callable[[list[ToolResult]], None],
        text: str = "") -> Move:
    return Move(Turn(text=text or step, step=step, calls=[ToolCall("", name, args) for name, args in calls]), after)


def ignore(results: list[ToolResult]) -> None:
    """The handler of a turn whose results change nothing (a wait)."""
