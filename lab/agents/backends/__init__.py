"""Model backends behind one small interface (lab.agents.turns.Backend); each imports only when chosen."""
from __future__ import annotations

import os

from lab.agents.turns import AgentWorld, Backend
from lab.errors import ConfigError

KINDS = ("researcher", "claude", "scripted")


def resolve(kind: str, task_kind: str = "embedded") -> tuple[str, str]:
    """The backend that `kind` means here, and why: "auto" picks claude where ANTHROPIC_API_KEY is set.

    The offline researcher searches the embedded task's recipe space (w2s/recipe.py), so the hf task
    kind needs agents that write their own code: claude (or a scripted replay).
    """
    if kind == "auto":
        if os.environ.get("ANTHROPIC_API_KEY"):
            return "claude", "backend auto: ANTHROPIC_API_KEY is set, so agents use claude"
        if task_kind == "hf":
            raise ConfigError('task.kind = "hf" needs agents that write their own code: set ANTHROPIC_API_KEY '
                              "for the claude backend (the offline researcher works on the embedded task only)")
        return "researcher", "backend auto: no ANTHROPIC_API_KEY, so agents use the offline researcher"
    if kind == "researcher" and task_kind == "hf":
        raise ConfigError('agents.backend = "researcher" works on the embedded task only; task.kind = "hf" '
                          'needs backend = "claude" (with ANTHROPIC_API_KEY)')
    if kind not in KINDS:
        raise ConfigError(f"unknown backend {kind!r} (expected auto or one of: {', '.join(KINDS)})")
    if kind == "claude" and not os.environ.get("ANTHROPIC_API_KEY"):
        raise ConfigError("agents.backend = \"claude\" needs ANTHROPIC_API_KEY in the environment "
                          "(or use backend = \"researcher\", the offline default)")
    return kind, f"backend {kind}"


def make_backend(kind: str, cfg, world: AgentWorld, saved: dict | None) -> Backend:
    if kind == "claude":
        from lab.agents.backends.claude import ClaudeBackend

        return ClaudeBackend(cfg, world, saved)
    if kind == "researcher":
        from lab.agents.backends.researcher import ResearcherBackend

        return ResearcherBackend(cfg, world, saved)
    if kind == "scripted":
        from lab.agents.backends.scripted import ScriptedBackend

        return ScriptedBackend(cfg, world, saved)
    raise ConfigError(f"unknown backend {kind!r} (expected one of: {', '.join(KINDS)})")
