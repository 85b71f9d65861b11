"""git on the research repository from outside any sandbox: it reads data and runs nothing.

The repository's own config, hooks and info/ are written only by the lab (see repo.harden) and no
sandbox can write any of it; on top of that, every call runs with an environment that takes no
configuration from the machine or the user, no pager, editor, askpass or credential helper, no
fsmonitor, hooks, attributes file, external diff or textconv, no replace objects, and allows no
transport. Agents' own repositories (inside their worktrees) are never opened from here.
"""
from __future__ import annotations

import os
import re
import subprocess
import time
from pathlib import Path

from lab.errors import GitError, NotFound, StateDiskFull
from lab.scaffold import gitlocks

# Command-line configuration outranks every file, so these hold whatever a config file says.
HARDENED = {
    "core.hooksPath": "/dev/null",
    "core.fsmonitor": "false",
    "core.attributesFile": "/dev/null",
    "core.pager": "cat",
    "core.editor": "false",
    "core.askPass": "",
    "core.sshCommand": "false",
    "core.gitProxy": "",
    "core.alternateRefsCommand": "",
    "credential.helper": "",
    "diff.external": "",
    "log.showSignature": "false",
    "gpg.program": "false",
    "protocol.allow": "never",
    "transfer.fsckObjects": "true",
    "fetch.fsck.hasDotgit": "error",
    "fetch.fsck.hasDotdot": "error",
    "fetch.fsck.hasDot": "error",
    "fetch.fsck.fullPathname": "error",
    "fetch.fsck.zeroPaddedFilemode": "ignore",
    "gc.auto": "0",
    "maintenance.auto": "false",
    "core.sharedRepository": "0644",
}
# Revisions an agent may name: hex ids, branch-like names; never an option or a revision expression.
REF = re.compile(r"^(?!-)[A-Za-z0-9][A-Za-z0-9._/-]{0,199}$")


def environment() -> dict[str, str]:
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LANG": "C.UTF-8", "LC_ALL": "C.UTF-8",
        "HOME": "/nonexistent", "GIT_CONFIG_NOSYSTEM": "1", "GIT_CONFIG_GLOBAL": "/dev/null",
        "GIT_ATTR_NOSYSTEM": "1", "GIT_NO_REPLACE_OBJECTS": "1", "GIT_TERMINAL_PROMPT": "0",
        "GIT_OPTIONAL_LOCKS": "0", "GIT_PAGER": "cat", "PAGER": "cat", "GIT_EDITOR": "false",
        "GIT_ASKPASS": "", "SSH_ASKPASS": "", "GIT_CEILING_DIRECTORIES": "/",
    }
    env["GIT_CONFIG_COUNT"] = str(len(HARDENED))
    for i, (key, value) in enumerate(HARDENED.items()):
        env[f"GIT_CONFIG_KEY_{i}"], env[f"GIT_CONFIG_VALUE_{i}"] = key, value
    return env


def check_ref(ref: str) -> str:
    if not isinstance(ref, str) or not REF.match(ref) or ".." in ref or ref.endswith((".lock", "/", ".")):
        raise NotFound(f"{ref!r} is not a commit id or branch name")
    return ref


class SafeGit:
    """One bare repository that only the lab writes, read and written by plain git processes."""

    def __init__(self, git_dir: Path):
        self.git_dir = Path(git_dir)
        self._env = {**environment(), "GIT_DIR": str(self.git_dir)}

    def run(self, *args: str, input: bytes | None = None, env: dict[str, str] | None = None,
            allow_file_protocol: bool = False, check: bool = True) -> subprocess.CompletedProcess:
        """git with these arguments. A lock that another git process holds is waited for, and one that a killed
        git left behind is removed (lab.scaffold.gitlocks); a full disk is StateDiskFull."""
        extra = ["-c", "protocol.file.allow=always"] if allow_file_protocol else []
        waited_until = time.monotonic() + gitlocks.WAIT_FOR_S
        while True:
            proc = subprocess.run(["git", *extra, *args], input=input, capture_output=True,
                                  env={**self._env, **(env or {})}, cwd=self.git_dir,
                                  stdin=None if input is not None else subprocess.DEVNULL)
            stderr = proc.stderr.decode(errors="replace")
            lock = gitlocks.held_lock(stderr) if proc.returncode != 0 else None
            if lock is None:
                break
            if gitlocks.remove_if_stale(lock, self.git_dir, os.getuid()):
                continue
            if time.monotonic() >= waited_until:
                break
            time.sleep(gitlocks.WAIT_S)
        if check and proc.returncode != 0:
            last = (stderr.strip().splitlines() or ["(no message)"])[-1]
            if lock is not None:
                raise GitError(f"git {args[0]} failed: {lock.name} is held by another git process of the research "
                               f"repository (waited {gitlocks.WAIT_FOR_S:g} s)")
            if "No space left on device" in stderr or "Disk quota exceeded" in stderr:
                raise StateDiskFull(f"the lab's state disk is full (git {args[0]}: {last}): nothing was written; "
                                    "try again once there is space")
            raise GitError(f"git {args[0]} failed: {last}")
        return proc

    def text(self, *args: str, **kwargs) -> str:
        return self.run(*args, **kwargs).stdout.decode(errors="replace")

    def commit_of(self, ref: str) -> str | None:
        """The full id of a commit, or None if the repository has no such commit."""
        proc = self.run("rev-parse", "--verify", "--quiet", "--end-of-options", f"{check_ref(ref)}^{{commit}}",
                        check=False)
        if proc.returncode != 0:
            return None
        return proc.stdout.decode().strip() or None

    def has_commit(self, sha: str) -> bool:
        return self.run("cat-file", "-e", f"{sha}^{{commit}}", check=False).returncode == 0

    def heads(self) -> dict[str, str]:
        out = self.text("for-each-ref", "--format=%(refname:strip=2) %(objectname)", "refs/heads/")
        return dict(line.split(" ", 1) for line in out.splitlines() if line)

    def update_ref(self, ref: str, sha: str) -> None:
        self.run("update-ref", "--no-deref", ref, sha)
