"""A backend that replays turns from a JSON file: drives the real loop, tools and store in tests and demos.

The file holds {"turns": [{"step": ..., "text": ..., "calls": [{"name": ..., "arguments": {...}}]}, ...],
"repeat": false}. With repeat, the script starts over when it ends; otherwise the agent finishes.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

from lab.agents.turns import AgentFinished, AgentWorld, Message, ToolCall, ToolResult, Turn, Usage
from lab.errors import ConfigError

if TYPE_CHECKING:
    from lab.settings import Settings


class ScriptedBackend:
    name = "scripted"

    def __init__(self, cfg: Settings, world: AgentWorld, saved: dict | None):
        assert cfg.agents.script is not None     # backend = "scripted" needs agents.script (lab.config)
        path = Path(cfg.agents.script)
        path = path if path.is_absolute() else cfg.root / path
        try:
            script = json.loads(path.read_text())
            self.turns, self.repeat = script["turns"], bool(script.get("repeat", False))
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise ConfigError(f"agents.script {path}: not a JSON file with a \"turns\" list ({exc})") from None
        self.world = world
        self.position = (saved or {}).get("position", 0)
        self.seen: list[dict] = (saved or {}).get("seen", [])

    def step(self, inbox: list[Message]) -> Turn:
        self.seen += [{"author": m.author, "text": m.text} for m in inbox]
        if self.position >= len(self.turns):
            if not self.repeat or not self.turns:
                raise AgentFinished(f"the script's {len(self.turns)} turns are done")
            self.position = 0
        spec = self.turns[self.position]
        self.position += 1
        calls = [ToolCall(f"call-{self.position}-{i}", c["name"], dict(c.get("arguments", {})))
                 for i, c in enumerate(spec.get("calls", []))]
        usage = Usage(model="scripted", **spec["usage"]) if "usage" in spec else None
        return Turn(text=spec.get("text", ""), calls=calls, usage=usage,
                    step=spec.get("step", f"scripted turn {self.position}"))

    def observe(self, results: list[ToolResult]) -> None:
        pass

    def state(self) -> dict:
        return {"position": self.position, "seen": self.seen[-50:]}
