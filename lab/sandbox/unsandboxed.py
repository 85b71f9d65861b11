"""No isolation at all, for machines without bubblewrap when lab.toml says sandbox = "none"."""
from __future__ import annotations

import os

from lab.sandbox.base import Bind, Limits, RunResult, passthrough_env, run_limited
from lab.sandbox.cgroups import Cgroups, detect
from lab.sandbox.users import SCORER, slot
from lab.threads import thread_env

WARNING = ("WARNING: sandbox = \"none\": methods and agent commands run unsandboxed and can read the "
           "hidden labels; results are NOT trustworthy")


class NoSandbox:
    name = "none"
    trustworthy = False
    uid: int | None = None   # commands run as ourselves

    def __init__(self, user: str = SCORER, cgroups: Cgroups | None = None):
        slot(user)
        self.user = user
        self.cgroups = detect() if cgroups is None else cgroups

    def inside(self, bind: Bind) -> str:
        return str(bind.host)

    def hand_over(self, path) -> None:
        pass

    def run(self, argv: list[str], binds: list[Bind], cwd: Bind, limits: Limits,
            env: dict[str, str] | None = None, cancel=None) -> RunResult:
        full_env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": os.environ.get("HOME", "/tmp"),
                    "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "PYTHONDONTWRITEBYTECODE": "1",
                    **passthrough_env(), **thread_env(limits.threads), **(env or {})}
        return run_limited(argv, limits, env=full_env, cwd=str(cwd.host), cancel=cancel, cgroups=self.cgroups,
                           user=self.user)
