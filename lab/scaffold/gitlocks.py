"""Lock files that git left behind. A git process that is killed, or meets a full disk, between taking `X.lock` and
renaming it onto X leaves the lock, and every later command that needs X fails with "Unable to create 'X.lock': File
exists ... remove the file manually to continue". Such a lock is stale once no git process works in its repository:
then the lab removes it and tries again, in the research repository itself, and inside the agent's sandbox for an
agent's own repository (lab/sandbox/workspace.py), since no lab process touches a worktree's files from outside.
"""
from __future__ import annotations

import re
import time
from pathlib import Path

import psutil

HELD = re.compile(r"Unable to create '([^']+\.lock)': File exists")
WAIT_S = 0.1              # between tries while a lock may be a live git process's
WAIT_FOR_S = 3.0          # how long a lock is waited for before it is looked at as stale
STALE_AFTER_S = 2.0       # a lock at least this old, with no git process in its repository, is stale


def held_lock(stderr: str) -> Path | None:
    """The lock file a git command failed on, from its error output."""
    match = HELD.search(stderr)
    return Path(match.group(1)) if match else None


def git_running(path: Path, uid: int | None = None) -> bool:
    """Whether a git process (git or one of its helpers) works at or below path, run by uid where it is given."""
    path = Path(path).resolve()
    for proc in psutil.process_iter(["name", "uids"]):
        try:
            if not (proc.info["name"] or "").startswith("git"):
                continue
            if uid is not None and proc.info["uids"] is not None and proc.info["uids"].real != uid:
                continue
            if Path(proc.cwd()).is_relative_to(path):
                return True
        except (psutil.Error, OSError):
            continue
    return False


def remove_if_stale(lock: Path, repository: Path, uid: int | None = None) -> bool:
    """Remove a lock of a repository the lab owns (the research repository) when it is stale; whether it did."""
    try:
        age = time.time() - lock.lstat().st_mtime
    except FileNotFoundError:
        return True      # gone meanwhile: its holder finished
    if not lock.resolve().is_relative_to(Path(repository).resolve()) or age < STALE_AFTER_S:
        return False
    if git_running(repository, uid):
        return False
    lock.unlink(missing_ok=True)
    return True
