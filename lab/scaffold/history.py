"""Reading the agents' work as git history: their commits since the scaffold, and each commit's diff.

Read through SafeGit: no diff driver, textconv, filter or external program of anyone's choosing.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from lab.errors import NotFound
from lab.scaffold.repo import open_repo, research_repo_path

# Plain patches: no external diff, no textconv, no colour, no rename heuristics an agent could game.
PATCH = ("--no-ext-diff", "--no-textconv", "--no-color", "--no-renames")


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
        path = research_repo_path(state_dir)
        if not (path / "objects").is_dir():
            raise NotFound(f"the research repository {path} is missing (run `lab init`)")
        self.repo = open_repo(path)

    def branches(self, wanted: list[str]) -> list[str]:
        have = self.repo.heads()
        return [b for b in wanted if b in have]

    def commits(self, branches: list[str], limit: int = 30) -> list[Commit]:
        """Commits on the branches that are not on main, newest first, each with the branch it was found on."""
        existing = self.branches(branches)
        if not existing:
            return []
        out = self.repo.text("log", f"-n{int(limit)}", "--date-order", "--no-show-signature",
                             "--format=%H%x00%an%x00%at%x00%s%x00%S", "--source",
                             *[f"refs/heads/{b}" for b in existing], "--not", "refs/heads/main", "--")
        found = []
        for line in out.splitlines():
            fields = line.split("\0")
            if len(fields) != 5:
                continue
            sha, author, at, subject, source = fields
            branch = source.removeprefix("refs/heads/")
            found.append(Commit(sha, author, float(at), subject, branch if branch in existing else ""))
        return found

    def resolve(self, ref: str) -> str:
        sha = self.repo.commit_of(ref)
        if sha is None:
            raise NotFound(f"commit {ref!r} is not in the research repository (see `lab log`)")
        return sha

    def show(self, ref: str, stat: bool = True) -> str:
        """A commit's message, file summary and patch, as `git show` prints it."""
        sha = self.resolve(ref)
        return self.repo.text("show", *PATCH, "--no-show-signature", *(["--stat"] if stat else []), "--patch",
                              "--format=commit %H%nAuthor: %an%nDate:   %ad%n%n    %s%n", sha, "--")

    def diff_from_main(self, ref: str) -> str:
        """What a commit changes relative to the scaffold it grew from (the whole method, not one step)."""
        sha = self.resolve(ref)
        base = self.repo.text("merge-base", "refs/heads/main", sha).strip()
        return self.repo.text("diff", *PATCH, "--stat", "--patch", base, sha, "--")
