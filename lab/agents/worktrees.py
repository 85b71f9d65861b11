"""The agents' worktrees, made where missing. Each is one sandboxed git run that mostly waits on the sandbox's
mounts being made and torn down (about 0.2 s, little of it this process's CPU), so they are made side by side in
threads: the supervisor starts them as it starts, and starts each agent once its worktree is there. Where the agents'
disk quotas are loop-mounted filesystems (lab/sandbox/disk_quota.py), each worktree's disk is mounted first.
"""
from __future__ import annotations

from concurrent.futures import Future, ThreadPoolExecutor
from typing import TYPE_CHECKING, Callable

from lab.sandbox import disk_quota, make_sandbox
from lab.sandbox.workspace import Workspace
from lab.scaffold.publish_check import PublishLimits
from lab.scaffold.repo import research_repo_path

if TYPE_CHECKING:
    from lab.settings import Settings

MAX_THREADS = 16


def ensure(cfg: Settings, name: str, disk_mode: str | None = None,
           warn: Callable[[str], None] = lambda line: None) -> Workspace:
    """The agent's worktree, on its own disk where `disk_mode` (disk_quota.resolve_mode's; None: resolved here) is
    "loop", made (or repaired) where missing (WorktreeMissing or DiskQuotaError where it cannot be). Where a disk
    cannot be mounted and lab.toml says "auto", the agent's quota is measured instead, and `warn` says why."""
    sandbox = make_sandbox(cfg.lab.sandbox, warn=lambda line: None, user=name)   # warned at start
    if disk_mode is None:
        disk_mode, _ = disk_quota.resolve_mode(cfg.agents.disk_quota)
    if disk_mode == "loop":
        try:
            disk_quota.ensure_mounted(disk_quota.disk_of(cfg, name, "loop"), sandbox.uid)
        except disk_quota.DiskQuotaError as exc:
            if cfg.agents.disk_quota != "auto":
                raise
            warn(f"warning: {name}'s disk quota is only measured, after the fact: {exc}")
    return Workspace.ensure(cfg.sandboxes_dir, research_repo_path(cfg.state_dir), name, sandbox,
                            PublishLimits.of(cfg.agents))


def start_making(cfg: Settings, names: list[str], disk_mode: str | None = None,
                 warn: Callable[[str], None] = lambda line: None) -> dict[str, Future]:
    """Each named agent's worktree, being made in the background: a future of its Workspace."""
    pool = ThreadPoolExecutor(max_workers=max(1, min(MAX_THREADS, len(names))), thread_name_prefix="worktree")
    try:
        return {name: pool.submit(ensure, cfg, name, disk_mode, warn) for name in names}
    finally:
        pool.shutdown(wait=False)


def prepare(cfg: Settings, names: list[str]) -> None:
    """Every named agent's worktree, made side by side; the first failure is raised."""
    disk_mode, _ = disk_quota.resolve_mode(cfg.agents.disk_quota)
    for future in start_making(cfg, names, disk_mode).values():
        future.result()
