"""An agent's workspace: its worktree under sandboxes/, a git repository of its own, and its branch.

The agent's repository lives in its worktree (`.git`) and belongs to the agent: git runs on it only
inside the agent's sandbox. It borrows the research repository's objects (alternates) and sees it as
the remote `lab`, read-only, so every branch and commit of every agent can be read and cherry-picked.
Its commits reach the research repository only by publishing: inside the sandbox, git writes a
bundle of the branch; outside, the lab fetches that bundle (data, every object checked) onto the
agent's own branch there. No agent can write any other ref, nor any file of the research repository.

Every host-side touch of the worktree goes through lab.untrusted: no link is followed, nothing but
a regular file is read or written, and nothing is resolved by name twice.
"""
from __future__ import annotations

import os
import shutil
import stat
import tempfile
from pathlib import Path
from typing import Sequence

from lab import untrusted
from lab.disk_full import is_full, says_full
from lab.errors import Blocked, LabError, NotFound
from lab.sandbox.base import Bind, Limits, RunResult
from lab.sandbox.disk_quota import AgentDisk, DiskQuotaExceeded
from lab.scaffold import gitlocks
from lab.scaffold import repo as research
from lab.scaffold.publish_check import PublishLimits
from lab.scaffold.safegit import SafeGit
from lab.state_layout import StateLayout

EXPORT_INSIDE = "/export"
MAX_BUNDLE_BYTES = 256 * 1024 * 1024
MAX_READ_BYTES = 8 * 1024 * 1024

# Inside the sandbox, as the agent: make (or repair) the agent's repository around whatever the worktree holds.
SETUP = r"""
set -eu
central=$1 branch=$2
if [ -e .git ] && [ ! -d .git ]; then rm -f .git; fi
[ -d .git ] || git init -q -b "$branch"
printf '%s/objects\n' "$central" > .git/objects/info/alternates
git remote remove lab 2>/dev/null || true
git remote add lab "$central"
git fetch -q --prune lab
if git rev-parse -q --verify HEAD >/dev/null; then exit 0; fi
start=lab/main
if git rev-parse -q --verify "refs/remotes/lab/$branch" >/dev/null; then start="lab/$branch"; fi
if [ -z "$(ls -A | grep -vx .git || true)" ]; then
  git checkout -q -B "$branch" "$start"
else
  git symbolic-ref HEAD "refs/heads/$branch"
  git reset -q "$start"
fi
"""
# Inside the sandbox: the id of HEAD, and a bundle of what the research repository does not hold yet.
EXPORT = r"""
export_dir=$1; shift
head=$(git rev-parse --verify -q 'HEAD^{commit}') || { echo "your branch has no commit yet" >&2; exit 3; }
printf '%s\n' "$head" > "$export_dir/head"
git bundle create -q "$export_dir/out.bundle" HEAD --not "$@" 2>/dev/null || true
"""
COMMIT = r"""
set -e
message=$1; shift
git add -A
git commit -q -m "$message"
""" + EXPORT
# Inside the sandbox: the lock files a killed git left in the agent's repository (run only while no git works there).
CLEAR_LOCKS = r"""
[ -d .git ] && [ ! -L .git ] || exit 0
find .git -type f -name '*.lock' -not -path '.git/objects/*' -print -delete
"""


class WorktreeMissing(LabError):
    """An agent's worktree was deleted or broken while the agent ran."""


class Workspace:
    def __init__(self, path: Path, repo_path: Path, branch: str, sandbox, limits: PublishLimits = PublishLimits(),
                 disk: AgentDisk | None = None,
                 publish_quota=None):
        """`limits`: what one publish may bring into the research repository; `disk`: the agent's disk quota, named
        in what a full worktree tells it; `publish_quota`: admits and counts the bytes each publish brings into the
        research repository (lab.agents.publish_quota)."""
        self.path, self.repo_path, self.branch, self.sandbox = Path(path), Path(repo_path), branch, sandbox
        self.disk, self.publish_quota = disk, publish_quota
        self.research = SafeGit(self.repo_path)
        self.limits = limits          # what one publish may bring into the research repository

    # ---- the sandbox's view ----------------------------------------------------------------------
    @property
    def gitconfig(self) -> Path:
        """The agent's global git config, written by the lab: the research repository is safe to read."""
        return StateLayout.of_research_repo(self.repo_path).run.agent_gitconfig

    def _write_gitconfig(self) -> None:
        text = f"[safe]\n\tdirectory = {self.repo_path}\n[advice]\n\tdetachedHead = false\n"
        path = self.gitconfig
        if not path.is_file() or path.read_text() != text:
            path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)   # a name of its own: workspaces
            with os.fdopen(fd, "w") as out:                                        # are made side by side
                out.write(text)
            os.chmod(tmp, 0o644)
            os.replace(tmp, path)

    def binds(self) -> list[Bind]:
        """The worktree (writable), the research repository and the agent's git config (read-only)."""
        return [Bind(self.path, str(self.path), writable=True), Bind(self.repo_path, str(self.repo_path)),
                Bind(self.gitconfig, str(self.gitconfig))]

    def git_env(self) -> dict[str, str]:
        return {"GIT_CONFIG_GLOBAL": str(self.gitconfig), "LAB_RESEARCH": str(self.repo_path),
                "GIT_CEILING_DIRECTORIES": str(self.path.parent)}

    def _run(self, script: str, args: list[str], extra: Sequence[Bind] = (), timeout_s: float = 120,
             env: dict[str, str] | None = None) -> RunResult:
        binds = self.binds() + list(extra)
        limits = Limits(timeout_s=timeout_s, memory_mb=2048, max_processes=64, max_file_mb=MAX_BUNDLE_BYTES >> 20)
        return self.sandbox.run(["bash", "-c", script, "bash", *args], binds, cwd=binds[0], limits=limits,
                                env={**self.git_env(), **(env or {})})

    # ---- making the worktree ---------------------------------------------------------------------
    @classmethod
    def ensure(cls, sandboxes_dir: Path, repo_path: Path, name: str, sandbox,
               limits: PublishLimits = PublishLimits()) -> "Workspace":
        """The agent's worktree and repository, made (or remade, after a deletion) on branch `name`, which starts
        from the research repository's branch of that name, or from main."""
        ws = cls(Path(sandboxes_dir) / name, repo_path, name, sandbox, limits)
        ws._write_gitconfig()
        if ws._has_repository():
            if sandbox.uid is not None and os.lstat(ws.path).st_uid != sandbox.uid:
                sandbox.hand_over(ws.path)   # made by an older lab, or for another uid
            return ws
        folder = ws.path
        if folder.is_symlink() or (folder.exists() and not folder.is_dir()):
            raise WorktreeMissing(f"{folder} is not a folder: move it away")
        folder.mkdir(parents=True, exist_ok=True)
        sandbox.hand_over(folder)
        ws._set_up()
        return ws

    def _run_git(self, script: str, args: list[str], extra: Sequence[Bind] = (),
                 env: dict[str, str] | None = None) -> RunResult:
        """A git script in the sandbox; where git failed on a lock that a killed git left in the agent's repository,
        the locks are cleared (in the sandbox, while no git process works in the worktree) and the script runs
        once more."""
        result = self._run(script, args, extra, env=env)
        lock = None if result.ok else gitlocks.held_lock(result.stderr)
        if lock is None or not lock.is_relative_to(self.path) or gitlocks.git_running(self.path):
            return result
        cleared = self._run(CLEAR_LOCKS, [])
        if not cleared.ok:
            return result
        return self._run(script, args, extra, env=env)

    def _set_up(self) -> None:
        """Make or repair the agent's repository, in the sandbox; files already in the worktree are kept."""
        made = self._run_git(SETUP, [self.sandbox.inside(Bind(self.repo_path, str(self.repo_path))), self.branch])
        if not made.ok:
            raise WorktreeMissing(f"could not make the worktree {self.path}: {made.failure()}")

    def _has_repository(self) -> bool:
        try:
            return stat.S_ISDIR(os.lstat(self.path / ".git").st_mode)
        except OSError:
            return False

    def check(self) -> None:
        try:
            present = stat.S_ISDIR(os.lstat(self.path).st_mode)
        except OSError:
            present = False
        if not present:
            raise WorktreeMissing(f"the worktree {self.path} was deleted; `lab start {self.branch}` makes it again "
                                  "from its branch")

    def _repair(self) -> None:
        """A .git that is not a folder (deleted, or a link file to elsewhere) is remade before git is used."""
        if self._has_repository():
            return
        self._set_up()
        raise Blocked("your worktree's .git was not a repository folder (deleted, or a file pointing elsewhere); "
                      f"it was remade from branch {self.branch} of the research repository, your files kept: "
                      "commit again")

    # ---- publishing the agent's branch -------------------------------------------------------------
    def _export(self, script: str, args: list[str], env: dict[str, str] | None = None) -> tuple[RunResult, str | None]:
        """Run an exporting script in the sandbox, then take its bundle into the research repository."""
        self._repair()
        scratch = StateLayout.of_research_repo(self.repo_path).run.exports
        scratch.mkdir(parents=True, exist_ok=True)
        export = Path(tempfile.mkdtemp(prefix="export-", dir=scratch))
        try:
            self.sandbox.hand_over(export)
            bind = Bind(export, EXPORT_INSIDE, writable=True)
            tips = sorted(set(self.research.heads().values()))
            result = self._run_git(script, [*args, self.sandbox.inside(bind), *tips], extra=[bind], env=env)
            if not result.ok:
                return result, None
            head = untrusted.read_file(export / "head", 100).decode(errors="replace").strip()
            if len(head) != 40 or any(c not in "0123456789abcdef" for c in head):
                raise Blocked(f"publishing your branch gave {head[:60]!r}, not a commit id")
            bundle = None
            if untrusted.exists_as_file(export, "out.bundle"):
                bundle = Path(tempfile.mkdtemp(prefix="bundle-", dir=scratch)) / "in.bundle"
                untrusted.copy_out(export / "out.bundle", bundle, MAX_BUNDLE_BYTES)
            try:
                brings = bundle.stat().st_size if bundle is not None and not self.research.has_commit(head) else 0
                if brings and self.publish_quota is not None:
                    self.publish_quota.admit(brings, head)
                research.accept_bundle(self.research, bundle, self.branch, head, self.limits)
                if brings and self.publish_quota is not None:
                    self.publish_quota.record(brings, head)
            finally:
                if bundle is not None:
                    shutil.rmtree(bundle.parent, ignore_errors=True)
            return result, head
        finally:
            shutil.rmtree(export, ignore_errors=True)

    def publish(self) -> str:
        """Bring the research repository's copy of this agent's branch up to the agent's HEAD; its id."""
        result, head = self._export(EXPORT, [])
        if head is None:
            raise NotFound(f"could not read your branch: {self._why(result)}")
        return head

    def commit(self, message: str, env: dict[str, str] | None = None) -> str:
        """Commit every change of the worktree on the agent's branch and publish it; the new commit's id."""
        result, head = self._export(COMMIT, [message], env=env)
        if head is None:
            text = result.stdout + result.stderr
            if "nothing to commit" in text or "nothing added to commit" in text:
                raise NotFound("nothing to commit: the worktree has no changes since the last commit")
            own = self._own_disk()
            if own is not None and says_full(text):
                raise DiskQuotaExceeded(f"git commit failed: {own.full_message()}")
            raise NotFound(f"git commit failed: {self._why(result)}")
        return head

    def _own_disk(self) -> AgentDisk | None:
        """The agent's own quota (a loop-mounted disk) where a full worktree is that, not the state disk; else None."""
        return self.disk if self.disk is not None and self.disk.mode == "loop" else None

    def _why(self, result: RunResult) -> str:
        lock = gitlocks.held_lock(result.stderr)
        if lock is not None and lock.is_relative_to(self.path):
            return (f"{lock.relative_to(self.path)} is held by another git process working in your worktree: try "
                    "again once it is done")
        return result.failure()

    # ---- reading the research repository -----------------------------------------------------------
    def head(self) -> str:
        sha = self.research.commit_of(self.branch)
        if sha is None:
            raise NotFound(f"branch {self.branch} is not in the research repository yet (commit first)")
        return sha

    def resolve_commit(self, ref: str) -> str:
        """A full commit id of the research repository, from a short id, a branch (agent-3) or HEAD (this agent's
        branch, published first)."""
        if ref in ("HEAD", "head", ""):
            return self.publish()
        sha = self.research.commit_of(ref)
        if sha is None:
            self.publish()  # a commit made with git in the shell reaches the research repository now
            sha = self.research.commit_of(ref)
        if sha is None:
            raise NotFound(f"commit {ref!r} is not in the research repository (commit it on your branch first)")
        return sha

    # ---- files -------------------------------------------------------------------------------------
    def read_bytes(self, relative: str, max_bytes: int = MAX_READ_BYTES) -> bytes:
        return untrusted.read_bytes(self.path, relative, max_bytes)

    def read_text(self, relative: str, max_bytes: int = MAX_READ_BYTES) -> str:
        return self.read_bytes(relative, max_bytes).decode(errors="replace")

    def write(self, relative: str, content: str | bytes) -> str:
        """Create or replace a file of the worktree; the path as written."""
        data = content.encode() if isinstance(content, str) else content
        try:
            untrusted.write_bytes(self.path, relative, data, owner=self.sandbox.uid)
        except OSError as exc:
            own = self._own_disk()
            if own is None or not is_full(exc):
                raise
            raise DiskQuotaExceeded(own.full_message()) from None
        return "/".join(untrusted.parts_of(relative))
