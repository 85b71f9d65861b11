"""The agents' backends by name, and where each one's code is: the one list that lab.toml's schema, the backend
factory (lab.agents.backends) and the zygote, which loads a backend's code before it forks runners, read.
Names only here: a backend's module is imported where it is chosen."""
from __future__ import annotations

from typing import Literal, get_args

BackendName = Literal["researcher", "claude", "scripted"]

# name -> (the module that holds its code, its class there)
BACKENDS: dict[str, tuple[str, str]] = {
    "researcher": ("lab.agents.backends.researcher", "ResearcherBackend"),
    "claude": ("lab.agents.backends.claude.backend", "ClaudeBackend"),
    "scripted": ("lab.agents.backends.scripted", "ScriptedBackend"),
}
assert tuple(BACKENDS) == get_args(BackendName), "BACKENDS and BackendName name the same backends, in one order"
