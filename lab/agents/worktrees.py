"""The agents' worktrees, made where missing. Each is one sandboxed git run that mostly waits on the sandbox's
mounts being made and torn down (about 0.2 s, little of it this process's CPU), so they are made side by side in
threads: the supervisor starts them as it starts, and starts each agent once its worktree is there.
"""
from __future__ import annotations

from concurrent.futures import Future, ThreadPoolExecutor

from lab.sandbox import make_sandbox
from lab.sandbox.workspace import Workspace
from lab.scaffold.publish_check import PublishLimits
from lab.scaffold.repo import research_repo_path

MAX_THREADS = 16


def ensure(cfg, name: str) -> Workspace:
    """The agent's worktree, made (or repaired) where missing (WorktreeMissing where it cannot be)."""
    return Workspace.ensure(cfg.sandboxes_dir, research_repo_path(cfg.state_dir), name,
                            make_sandbox(cfg.lab.sandbox, warn=lambda line: None, user=name),  # warned at start
                            PublishLimits.of(cfg.agents))


def start_making(cfg, names: list[str]) -> dict[str, Future]:
    """Each named agent's worktree, being made in the background: a future of its Workspace."""
    pool = ThreadPoolExecutor(max_workers=max(1, min(MAX_THREADS, len(names))), thread_name_prefix="worktree")
    try:
        return {name: pool.submit(ensure, cfg, name) for name in names}
    finally:
        pool.shutdown(wait=False)


def prepare(cfg, names: list[str]) -> None:
    """Every named agent's worktree, made side by side; the first failure is raised."""
    for future in start_making(cfg, names).values():
        future.result()
