"""Model backends behind one small interface (lab.agents.turns.Backend); each imports only when chosen."""
from __future__ import annotations

import importlib
import os
from dataclasses import dataclass
from typing import TYPE_CHECKING

from lab.agents.turns import AgentWorld, Backend
from lab.config.backends import BACKENDS
from lab.errors import ConfigError, LabError

if TYPE_CHECKING:
    from lab.config import Config

KINDS = tuple(BACKENDS)
KEY = "ANTHROPIC_API_KEY"


class SpendNotConfirmed(LabError):
    """backend = "auto" would spend money on Claude because a key is in the environment, and nobody said yes."""


@dataclass(frozen=True)
class Choice:
    backend: str
    why: str
    asks: bool = False   # claude, chosen by "auto" from a key in the environment: the person says yes first


def choose(kind: str, task_kind: str = "embedded", offline: bool = False) -> Choice:
    """The backend that `kind` means here, and why. "auto" picks claude where ANTHROPIC_API_KEY is set, and asks:
    a key in the shell for other work is no decision to spend on this lab. `offline` (what `make lab` runs) never
    picks claude, whatever the environment holds.

    The offline researcher searches the embedded task's recipe space (w2s/recipe.py), so the hf task
    kind needs agents that write their own code: claude (or a scripted replay).
    """
    if kind not in ("auto", *KINDS):
        raise ConfigError(f"unknown backend {kind!r} (expected auto or one of: {', '.join(KINDS)})")
    if offline and kind == "claude":
        raise ConfigError('agents.backend = "claude" is not offline: `lab start --offline` (what `make lab` runs) '
                          'starts the offline researcher only; run `lab start` for Claude agents')
    if kind == "auto":
        if os.environ.get(KEY) and not offline:
            return Choice("claude", f"backend auto: {KEY} is set, so agents use claude", asks=True)
        if task_kind == "hf":
            raise ConfigError('task.kind = "hf" needs agents that write their own code: set ANTHROPIC_API_KEY '
                              "for the claude backend (the offline researcher works on the embedded task only)")
        if offline:
            return Choice("researcher", "backend auto, offline: agents use the offline researcher "
                                        f"({KEY} is not used)")
        return Choice("researcher", f"backend auto: no {KEY}, so agents use the offline researcher")
    if kind == "researcher" and task_kind == "hf":
        raise ConfigError('agents.backend = "researcher" works on the embedded task only; task.kind = "hf" '
                          'needs backend = "claude" (with ANTHROPIC_API_KEY)')
    if kind == "claude" and not os.environ.get(KEY):
        raise ConfigError("agents.backend = \"claude\" needs ANTHROPIC_API_KEY in the environment "
                          "(or use backend = \"researcher\", the offline default)")
    return Choice(kind, f"backend {kind}")


def resolve(kind: str, task_kind: str = "embedded") -> tuple[str, str]:
    """The backend and why, where nobody can be asked (the TUI's start, a supervisor started by hand): "auto" that
    would spend on Claude is refused with SpendNotConfirmed; `lab start` asks instead (lab.cli.running)."""
    choice = choose(kind, task_kind)
    if choice.asks:
        raise SpendNotConfirmed(f'backend = "auto" and {KEY} is set, so the agents would be Claude and spend money: '
                                "start from a terminal with `lab start`, which says what it would cost and asks "
                                '(or `lab start --yes`), or name the backend in lab.toml (agents.backend = "claude")')
    return choice.backend, choice.why


def environment(backend: str) -> dict[str, str]:
    """The environment of the lab's processes: a lab without Claude agents never holds the key."""
    if backend == "claude":
        return dict(os.environ)
    return {name: value for name, value in os.environ.items() if name not in (KEY, "ANTHROPIC_AUTH_TOKEN")}


def make_backend(kind: str, cfg: Config, world: AgentWorld, saved: dict | None) -> Backend:
    if kind in BACKENDS:
        module, name = BACKENDS[kind]
        backend: Backend = getattr(importlib.import_module(module), name)(cfg, world, saved)
        return backend
    raise ConfigError(f"unknown backend {kind!r} (expected one of: {', '.join(KINDS)})")
