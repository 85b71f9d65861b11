"""An agent's workspace: its git worktree under sandboxes/, on its own branch of the research repository.

Every worktree belongs to the one research repository, so an agent can read or cherry-pick any
other agent's commit by id. Where the sandbox runs commands as another user, the worktree and the
repository are handed over to that user, and the lab's own git commands accept the ownership.
"""
from __future__ import annotations

from pathlib import Path

import git

from lab.errors import LabError, NotFound
from lab.scaffold.repo import open_repo


class WorktreeMissing(LabError):
    """An agent's worktree was deleted or broken while the agent ran."""


class Workspace:
    def __init__(self, path: Path, repo_path: Path, branch: str, sandbox):
        self.path, self.repo_path, self.branch, self.sandbox = Path(path), Path(repo_path), branch, sandbox

    @classmethod
    def ensure(cls, sandboxes_dir: Path, repo_path: Path, name: str, sandbox) -> "Workspace":
        """The agent's worktree, made (or remade, after a deletion) on branch `name`, which starts from main."""
        path = Path(sandboxes_dir) / name
        repo = open_repo(repo_path)
        if not (path / ".git").is_file():
            repo.git.worktree("prune")
            if path.exists() and any(path.iterdir()):
                raise WorktreeMissing(f"{path} exists but is not a worktree of {repo_path}: move it away")
            path.parent.mkdir(parents=True, exist_ok=True)
            if name in [h.name for h in repo.heads]:
                repo.git.worktree("add", str(path), name)
            else:
                repo.git.worktree("add", "-b", name, str(path), "main")
            sandbox.hand_over(repo_path)
            sandbox.hand_over(path)
        return cls(path, repo_path, name, sandbox)

    def check(self) -> None:
        if not (self.path / ".git").is_file():
            raise WorktreeMissing(f"the worktree {self.path} was deleted; `lab start {self.branch}` makes it again "
                                  "from its branch")

    def resolve(self, relative: str) -> Path:
        """A path inside the worktree; anything that leads outside it is refused."""
        target = (self.path / relative).resolve()
        if not target.is_relative_to(self.path.resolve()):
            raise NotFound(f"{relative} is outside your worktree (paths are relative to it)")
        if ".git" in target.relative_to(self.path.resolve()).parts:
            raise NotFound(f"{relative}: the .git entry is not a file to read or write; use git_commit")
        return target

    def write(self, relative: str, content: str) -> Path:
        target = self.resolve(relative)
        made = [p for p in reversed(target.parents) if p.is_relative_to(self.path) and not p.exists()]
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(content)
        for p in made + [target]:
            self.sandbox.hand_over(p)
        return target

    def repo(self) -> git.Repo:
        return open_repo(self.repo_path)

    def head(self) -> str:
        return self.repo().commit(self.branch).hexsha

    def resolve_commit(self, ref: str) -> str:
        """A full commit id from a short id, a branch (agent-3) or HEAD (this agent's branch)."""
        ref = self.branch if ref in ("HEAD", "head", "") else ref
        try:
            return self.repo().commit(ref).hexsha
        except (git.BadName, ValueError, git.GitCommandError):
            raise NotFound(f"commit {ref!r} is not in the research repository") from None
