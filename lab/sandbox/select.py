"""Choosing the sandbox that lab.toml asks for, and saying which limits hold its runs."""
from __future__ import annotations

import os
import pwd
import sys

from lab.sandbox.base import Sandbox
from lab.sandbox.cgroups import LAB_NICE, RUN_NICE, autogroup_enabled
from lab.sandbox.users import SCORER, uid_of


def make_sandbox(kind: str, warn=lambda line: print(line, file=sys.stderr), user: str = SCORER) -> Sandbox:
    """The sandbox for `user`'s commands: scorer (the scorer's method runs) or agent-N."""
    if kind == "none":
        from lab.sandbox.unsandboxed import WARNING, NoSandbox

        warn(WARNING)
        return NoSandbox(user=user)
    from lab.sandbox.bwrap import BwrapSandbox

    return BwrapSandbox(user=user)


def describe_limits(sandbox: Sandbox, agents: list[str]) -> str:
    """One line: which uids, cgroups and rlimits bound the runs of `agents` and the scorer on this machine."""
    if sandbox.uid is not None:
        first, last = uid_of(agents[0]), uid_of(agents[-1])
        uids = f"uid per agent ({first}{f'-{last}' if last != first else ''}, scorer {uid_of(SCORER)})"
    else:
        me = pwd.getpwuid(os.getuid()).pw_name
        why = "sandbox none" if sandbox.name == "none" else "bwrap in a user namespace"
        uids = f"one uid for every agent and the scorer ({me}: {why})"
    controllers = sandbox.cgroups.controllers
    rlimits = (["address space"] if "memory" not in controllers else []) + \
              (["processes per uid"] if sandbox.uid is not None or os.geteuid() != 0 else []) + ["file size"]
    parts = [uids, sandbox.cgroups.describe(), "rlimits: " + ", ".join(rlimits)]
    if "cpu" not in controllers:
        parts.append(f"cpu: {'autogroup ' if autogroup_enabled() else ''}nice {RUN_NICE} (scorer {LAB_NICE})")
    return "limits: " + "; ".join(parts)
