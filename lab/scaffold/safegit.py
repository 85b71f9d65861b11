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

from lab.disk_full import described, says_full
from lab.errors import GitError, NotFound
from lab.scaffold import gitlocks
from lab.scaffold.bounded import Capped, run_capped

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
# Every read of what agents wrote: stopped past these, whatever the repository holds (lab.scaffold.bounded).
READ_MEMORY_MB = 128
READ_TIMEOUT_S = 10.0
# ... and held to small caches and pack windows, so that the memory limit leaves room for the work itself
READ_CONFIG = {"core.deltaBaseCacheLimit": "16m", "core.packedGitWindowSize": "16m", "core.packedGitLimit": "64m"}
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
            if says_full(stderr):
                raise described(f"git {args[0]}: {last}")
            raise GitError(f"git {args[0]} failed: {last}")
        return proc

    def text(self, *args: str, **kwargs) -> str:
        return self.run(*args, **kwargs).stdout.decode(errors="replace")

    def read(self, *args: str, max_bytes: int, input: bytes | None = None, config: dict[str, str] | None = None,
             timeout_s: float = READ_TIMEOUT_S, memory_mb: int = READ_MEMORY_MB) -> Capped:
        """git with these arguments, bounded: at most max_bytes of its output are read, then it is stopped; so it is
        past timeout_s, and it may use at most memory_mb. For every read of what agents wrote."""
        settings = [f"{key}={value}" for key, value in {**READ_CONFIG, **(config or {})}.items()]
        argv = ["git", *[item for setting in settings for item in ("-c", setting)], *args]
        return run_capped(argv, self._env, self.git_dir, max_bytes=max_bytes, timeout_s=timeout_s,
                          memory_mb=memory_mb, input=input)

    def object_info(self, names: list[str]) -> dict[str, tuple[str, int]]:
        """The kind and size of each named object (full ids, or names check_ref allows), read from the object's
        header only: a compression bomb is never inflated. Missing objects are left out."""
        if not names:
            return {}
        asked = "".join(f"{check_ref(name)}\n" for name in names).encode()
        got = self.read("cat-file", "--batch-check=%(objectname) %(objecttype) %(objectsize)", input=asked,
                        max_bytes=len(names) * 128 + 4096)
        if not got.ok:
            raise GitError(f"git cat-file failed: {got.why()}")
        found = {}
        for name, line in zip(names, got.out.decode(errors="replace").splitlines()):
            fields = line.split()
            if len(fields) == 3 and fields[2].isdigit():
                found[name] = (fields[1], int(fields[2]))
        return found

    def commit_of(self, ref: str) -> str | None:
        """The full id of a commit, or None if the repository has no such commit. The commit is not parsed (a bomb
        of a message is never read); an annotated tag is peeled to its commit."""
        named = self.read("rev-parse", "--verify", "--quiet", "--end-of-options", check_ref(ref), max_bytes=4096)
        sha = named.out.decode(errors="replace").strip() if named.ok else ""
        kind = self.object_info([sha]).get(sha, ("", 0))[0] if sha else ""
        if kind == "tag":
            peeled = self.read("rev-parse", "--verify", "--quiet", "--end-of-options", f"{sha}^{{commit}}",
                               max_bytes=4096)
            sha, kind = peeled.out.decode(errors="replace").strip(), "commit" if peeled.ok else ""
        return sha if kind == "commit" and sha else None

    def has_commit(self, sha: str) -> bool:
        return self.object_info([sha]).get(sha, ("", 0))[0] == "commit"

    def heads(self) -> dict[str, str]:
        out = self.text("for-each-ref", "--format=%(refname:strip=2) %(objectname)", "refs/heads/")
        return dict(line.split(" ", 1) for line in out.splitlines() if line)

    def update_ref(self, ref: str, sha: str) -> None:
        self.run("update-ref", "--no-deref", ref, sha)
