"""Reading the agents' work as git history: their commits since the scaffold, and each commit's diff."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import git

from lab.errors import NotFound
from lab.scaffold.repo import open_repo, research_repo_path


@dataclass(frozen=True)
class Commit:
    sha: str
    author: str
    time: float
    subject: str
    branch: str = ""


class History:
    """The research repository, read-only: agents' branches, their commits and diffs."""

    def __init__(self, state_dir: Path):
        self.repo = open_repo(research_repo_path(state_dir))

    def branches(self, wanted: list[str]) -> list[str]:
        have = {h.name for h in self.repo.heads}
        return [b for b in wanted if b in have]

    def commits(self, branches: list[str], limit: int = 30) -> list[Commit]:
        """Commits on the branches that are not on main, newest first."""
        existing = self.branches(branches)
        if not existing:
            return []
        out = self.repo.git.log(*existing, "--not", "main", f"-n{limit}", "--date-order",
                                "--format=%H%x00%an%x00%at%x00%s")
        return [Commit(sha, author, float(at), subject, author if author in existing else "")
                for sha, author, at, subject in (line.split("\0") for line in out.splitlines() if line)]

    def resolve(self, ref: str) -> str:
        try:
            return self.repo.commit(ref).hexsha
        except (git.BadName, ValueError, git.GitCommandError):
            raise NotFound(f"commit {ref!r} is not in the research repository (see `lab log`)") from None

    def show(self, ref: str, stat: bool = True) -> str:
        """A commit's message, file summary and patch, as `git show` prints it."""
        sha = self.resolve(ref)
        return self.repo.git.show(sha, *(["--stat"] if stat else []), "--patch",
                                  "--format=commit %H%nAuthor: %an%nDate:   %ad%n%n    %s%n")

    def diff_from_main(self, ref: str) -> str:
        """What a commit changes relative to the scaffold it grew from (the whole method, not one step)."""
        sha = self.resolve(ref)
        base = self.repo.git.merge_base("main", sha)
        return self.repo.git.diff(base, sha, "--stat", "--patch")
