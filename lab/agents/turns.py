"""What passes between the loop and a backend: turns with tool calls, tool results, usage.

A backend is anything with `step(inbox) -> Turn`, `observe(results)` and `state() -> dict`:
the loop asks for a turn, runs its tool calls, and hands the results back. Its saved state is
JSON, stored in the database after every step, so a restarted agent resumes where it was.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Callable, Protocol

from lab.errors import LabError


class BackendError(LabError):
    """The backend cannot go on (bad credentials, retries exhausted); the supervisor restarts the agent.

    `spent` is what the failed step cost all the same (streams that broke before the failure), for the ledger."""
    spent: "Usage | None" = None


class AgentFinished(LabError):
    """The backend has nothing more to do (a script ran out); the agent stops cleanly."""


@dataclass
class ToolCall:
    id: str
    name: str
    arguments: dict[str, Any]


@dataclass
class ToolResult:
    call_id: str
    name: str
    output: str                      # what a language model reads
    is_error: bool = False
    data: dict[str, Any] | None = None  # the same result as structured data, for programmatic backends


@dataclass
class Usage:
    model: str
    input_tokens: int = 0
    output_tokens: int = 0
    cache_write_tokens: int = 0
    cache_read_tokens: int = 0
    dollars: float = 0.0
    duration_s: float = 0.0
    retries: int = 0


@dataclass
class Turn:
    text: str = ""
    calls: list[ToolCall] = field(default_factory=list)
    usage: Usage | None = None
    step: str = ""        # a few words on what the agent is doing now, shown in `lab status`

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class Message:
    """Something that reaches the agent at its next step: a message from the person, or a note from the lab."""
    author: str
    text: str


class Backend(Protocol):
    name: str

    def step(self, inbox: list[Message]) -> Turn:
        """The next turn, given what arrived since the last one."""

    def observe(self, results: list[ToolResult]) -> None:
        """The results of the last turn's tool calls, in order."""

    def state(self) -> dict:
        """JSON-serialisable state to resume from after a restart."""


@dataclass
class AgentWorld:
    """What a backend knows of its agent and the lab when it starts."""
    name: str                       # agent-3
    direction: str                  # its starting research direction
    readme: str                     # the research repository's README.md (the task, PGR, the scaffold, the rules)
    tools: list[dict]               # the tool schemas (lab.agents.tools.TOOLS)
    notebook: Callable[[], str]     # the agent's notebook as it is now
    worktree: str = ""              # where its worktree is, for the prompt
