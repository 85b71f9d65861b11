"""Choosing the sandbox that lab.toml asks for."""
from __future__ import annotations

import sys

from lab.sandbox.base import Sandbox


def make_sandbox(kind: str, warn=lambda line: print(line, file=sys.stderr)) -> Sandbox:
    if kind == "none":
        from lab.sandbox.unsandboxed import WARNING, NoSandbox

        warn(WARNING)
        return NoSandbox()
    from lab.sandbox.bwrap import BwrapSandbox

    return BwrapSandbox()
