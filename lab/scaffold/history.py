"""Reading the agents' work as git history: their commits since the scaffold, and each commit's diff.

Read through SafeGit: no diff driver, textconv, filter or external program of anyone's choosing. Every read is
bounded (SafeGit.read): whatever an agent committed, a reader prints a bounded amount, in bounded time and memory.
Subjects and author names are cut by git itself (a format that truncates), files past a size are diffed as binary
from their object's header alone (core.bigFileThreshold: git never inflates them), a patch is cut at a byte cap
and says so, and a commit object too large to parse within the memory limit is described by its size, unread.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from lab.errors import GitError, NotFound
from lab.scaffold.repo import open_repo, research_repo_path

# Plain patches: no external diff, no textconv, no colour, no rename heuristics an agent could game.
PATCH = ("--no-ext-diff", "--no-textconv", "--no-color", "--no-renames", "--full-index")
SUBJECT_CHARS = 200
AUTHOR_CHARS = 40
SHOW_BYTES = 1 << 20             # what `lab show` and a report's diff print at most
LARGE_FILE_BYTES = 1 << 20       # a file past this is shown as "binary, N bytes", never read
COMMIT_READ_BYTES = 16 << 20     # a commit object past this is not given to git to parse (see SafeGit.read's memory)
LOG_LINE_BYTES = 4 * (SUBJECT_CHARS + AUTHOR_CHARS) + 256
LISTED_FILES = 20_000           # changed files whose sizes are checked; past them, no patch is shown
LARGE_LISTED = 1000             # large files left out of a patch one by one; past them, no patch is shown


@dataclass(frozen=True)
class Commit:
    sha: str
    author: str
    time: float
    subject: str
    branch: str = ""


def _cut(text: str, chars: int) -> str:
    """git pads a truncated field to its width and marks a cut with '..'; here a cut ends in '…'."""
    text = text.rstrip(" ")
    return text if len(text) <= chars else text[:chars] + "…"


def _size(n: int) -> str:
    return f"{n / (1 << 20):,.1f} MB" if n >= 1 << 20 else f"{n:,} bytes"


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
        """Commits on the branches that are not on main, newest first, each with the branch it was found on. A
        branch whose history git cannot walk within the read limits is shown by its tip, described by size."""
        existing = self.branches(branches)
        if not existing:
            return []
        found, stopped = self._log(existing, limit)
        if found is not None:
            return found
        found = []
        for branch in existing:       # one bad branch must not hide the others (a slow walk is not walked again)
            one = self._log([branch], limit)[0] if stopped != "time" else None
            found += one if one is not None else [self._unreadable_tip(branch)]
        return sorted(found, key=lambda c: c.time, reverse=True)[:limit]

    def _log(self, branches: list[str], limit: int) -> tuple[list[Commit] | None, str | None]:
        """The commits git lists, or None and why git did not finish ("time", or None for a failure)."""
        got = self.repo.read("log", f"-n{int(limit)}", "--date-order", "--no-show-signature",
                             f"--format=%H%x00%<({AUTHOR_CHARS + 3},trunc)%an%x00%at%x00"
                             f"%<({SUBJECT_CHARS + 3},trunc)%s%x00%S",
                             "--source", *[f"refs/heads/{b}" for b in branches], "--not", "refs/heads/main", "--",
                             max_bytes=int(limit) * LOG_LINE_BYTES + 4096)
        if not got.ok and not got.cut:
            return None, got.stopped
        lines = got.out.decode(errors="replace").splitlines()
        found = []
        for line in lines[:-1] if got.cut else lines:     # a cut output's last line may be cut inside a field
            fields = line.split("\0")
            if len(fields) != 5 or not fields[2].isdigit():
                continue
            sha, author, at, subject, source = fields
            branch = source.removeprefix("refs/heads/")
            found.append(Commit(sha, _cut(author, AUTHOR_CHARS), float(at), _cut(subject, SUBJECT_CHARS),
                                branch if branch in branches else ""))
        return found, None

    def _unreadable_tip(self, branch: str) -> Commit:
        sha = self.repo.heads()[branch]
        size = self.repo.object_info([sha]).get(sha, ("", 0))[1]
        return Commit(sha, "?", 0.0, f"(this branch's history could not be read within the lab's limits; its tip is "
                                     f"a commit of {_size(size)})", branch)

    def resolve(self, ref: str) -> str:
        sha = self.repo.commit_of(ref)
        if sha is None:
            raise NotFound(f"commit {ref!r} is not in the research repository (see `lab log`)")
        return sha

    def show(self, ref: str, stat: bool = True, max_bytes: int = SHOW_BYTES) -> str:
        """A commit's subject, file summary and patch (against its first parent), as `git show` prints them, cut at
        max_bytes."""
        sha = self.resolve(ref)
        too_large = self._too_large(sha)
        if too_large:
            return too_large
        header = self.repo.read("show", "-s", "--no-show-signature",
                                f"--format=commit %H%nAuthor: %<({AUTHOR_CHARS + 3},trunc)%an%nDate:   %ad%n%n    "
                                f"%<({SUBJECT_CHARS + 3},trunc)%s%n", sha, "--", max_bytes=4 * LOG_LINE_BYTES)
        if not header.ok and not header.cut:
            raise GitError(f"git show failed: {header.why()}")
        lines = header.out.decode(errors="replace").split("\n")
        if len(lines) > 4:
            lines[1] = "Author: " + _cut(lines[1].removeprefix("Author: "), AUTHOR_CHARS)
            lines[4] = "    " + _cut(lines[4].removeprefix("    "), SUBJECT_CHARS)
        parent = self.repo.read("rev-parse", "--verify", "--quiet", f"{sha}^", max_bytes=4096)
        base = parent.out.decode().strip() if parent.ok else self._empty_tree()
        return "\n".join(lines) + self._diff(base, sha, stat, max_bytes)

    def diff_from_main(self, ref: str, max_bytes: int = SHOW_BYTES) -> str:
        """What a commit changes relative to the scaffold it grew from (the whole method, not one step)."""
        sha = self.resolve(ref)
        too_large = self._too_large(sha)
        if too_large:
            return too_large
        base = self.repo.read("merge-base", "refs/heads/main", sha, max_bytes=4096)
        if not base.ok:
            raise GitError(f"git merge-base failed: {base.why()}")
        return self._diff(base.out.decode().strip(), sha, True, max_bytes)

    def _empty_tree(self) -> str:
        got = self.repo.read("hash-object", "-t", "tree", "--stdin", input=b"", max_bytes=4096)
        return got.out.decode().strip()

    def _too_large(self, sha: str) -> str:
        size = self.repo.object_info([sha]).get(sha, ("", 0))[1]
        if size <= COMMIT_READ_BYTES:
            return ""
        return (f"commit {sha}\n\n    (a commit object of {_size(size)}: larger than the lab reads, so neither its "
                f"message nor its changes are shown; a publish may bring far less)\n")

    def _diff(self, base: str, sha: str, stat: bool, max_bytes: int) -> str:
        """The file summary and patch from base to sha. A file past LARGE_FILE_BYTES is named with its size and left
        out of the patch: git would read an added or deleted one whole, whatever core.bigFileThreshold says."""
        large = self._large_files(base, sha)
        out = ""
        if stat:
            out += self._read_cut(max_bytes // 4, "diff", *PATCH, "--stat=120", base, sha, "--") + "\n"
        if large is None:
            return out + "… no patch: the commit changes more files than the lab checks one by one\n"
        out += "".join(f"diff --git a/{path} b/{path}\nbinary, {size:,} bytes\n" for path, size in large.items())
        left = max(max_bytes - len(out.encode()), 4096)
        return out + self._read_cut(left, "diff", *PATCH, "--patch", base, sha, "--",
                                    *[f":(exclude,literal){path}" for path in large])

    def _large_files(self, base: str, sha: str) -> dict[str, int] | None:
        """Paths whose blob, on either side, is past LARGE_FILE_BYTES, with the larger size, from the objects'
        headers; None where the changed files are too many to list (past LISTED_FILES) or the large ones to
        leave out one by one (past LARGE_LISTED)."""
        got = self.repo.read("diff", "--raw", "-z", "--no-renames", "--no-abbrev", base, sha, "--",
                             max_bytes=LISTED_FILES * 256)
        if got.cut:
            return None
        if not got.ok:
            raise GitError(f"git diff failed: {got.why()}")
        fields = got.out.split(b"\0")
        changed: list[tuple[str, list[str]]] = []
        for meta, path in zip(fields[0::2], fields[1::2]):
            parts = meta.decode(errors="replace").split()
            if len(parts) == 5:
                changed.append((path.decode(errors="replace"), [oid for oid in parts[2:4] if oid.strip("0")]))
        sizes = self.repo.object_info(sorted({oid for _, oids in changed for oid in oids}))
        large = {}
        for name, oids in changed:
            size = max((sizes[oid][1] for oid in oids if oid in sizes), default=0)
            if size > LARGE_FILE_BYTES:
                large[name] = size
        return large if len(large) <= LARGE_LISTED else None

    def _read_cut(self, max_bytes: int, *args: str) -> str:
        got = self.repo.read(*args, max_bytes=max_bytes, config={"core.bigFileThreshold": str(LARGE_FILE_BYTES)})
        if not got.ok and not got.cut:
            raise GitError(f"git {args[0]} failed: {got.why()}")
        text = got.out.decode(errors="replace")
        if got.cut:
            text = text[:text.rfind("\n") + 1] + f"… diff cut at {max_bytes:,} bytes"
        return text
