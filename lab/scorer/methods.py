"""Getting a method's code into a clean folder: from a commit of the research repository or a path.

Both ways read untrusted trees without running anything of theirs on the host: a commit's blobs are
written out one by one from git's object store (no attributes, filters or export rules apply), and
a path's git listing is taken inside the sandbox, its files then copied without following a link.
"""
from __future__ import annotations

import hashlib
import os
import stat
import tempfile
from dataclasses import dataclass
from pathlib import Path

from lab import untrusted
from lab.errors import Blocked, MethodRejected, NotFound
from lab.sandbox.base import Bind, Limits
from lab.scaffold.safegit import SafeGit

MAX_TREE_BYTES = 64 * 1024 * 1024
MAX_TREE_FILES = 5000
SKIP_DIRS = {".git", "__pycache__", ".venv", ".lab", "node_modules", ".pytest_cache"}
REGULAR_MODES = {"100644": 0o644, "100755": 0o755}
LISTING = "files.z"


@dataclass(frozen=True)
class MethodTree:
    root: Path          # a clean copy of the code
    entry: str          # the method file, relative to root
    tree_hash: str      # sha256 over paths and contents: what exactly was run
    commit_sha: str | None


def tree_hash(root: Path) -> str:
    digest = hashlib.sha256()
    found = []
    for folder, dirs, names in os.walk(root):
        for name in names:
            path = Path(folder) / name
            if stat.S_ISREG(path.lstat().st_mode):
                found.append(path)
    for path in sorted(found):
        digest.update(str(path.relative_to(root)).encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()


def _check_entry(root: Path, entry: str, where: str) -> None:
    path = root / entry
    if not path.is_file() or path.is_symlink():
        raise MethodRejected(f"{where} has no method file {entry!r} (expected a Python file following the method contract)")


def _check_name(name: str, where: str) -> list[str]:
    parts = name.split("/")
    if any(p in ("", ".", "..", ".git") for p in parts) or any(ord(c) < 32 or ord(c) == 127 for c in name):
        raise MethodRejected(f"{where} holds a file named {name!r}, which the scorer refuses "
                             "(no '..', '.git' or control characters in names)")
    return parts


def from_commit(repo: SafeGit, commit: str, entry: str, dest: Path) -> MethodTree:
    sha = repo.commit_of(commit)
    if sha is None:
        raise NotFound(f"commit {commit!r} is not in the research repository")
    where = f"commit {sha[:10]}"
    listing = repo.run("ls-tree", "-r", "-z", "-l", "--full-tree", sha).stdout.split(b"\0")
    wanted: list[tuple[str, str, int]] = []   # (blob id, path, permissions)
    total = 0
    for item in filter(None, listing):
        meta, _, raw_name = item.partition(b"\t")
        mode, kind, oid, size = meta.decode().split()
        if kind != "blob" or mode not in REGULAR_MODES:
            continue  # symbolic links and submodules are not part of a method
        name = raw_name.decode(errors="replace")
        _check_name(name, where)
        total += int(size)
        if total > MAX_TREE_BYTES or len(wanted) >= MAX_TREE_FILES:
            raise MethodRejected(f"{where} holds over {MAX_TREE_BYTES >> 20} MB or {MAX_TREE_FILES} files")
        wanted.append((oid, name, REGULAR_MODES[mode]))
    blobs = repo.run("cat-file", "--batch", input="".join(f"{oid}\n" for oid, _, _ in wanted).encode()).stdout
    dest.mkdir(parents=True, exist_ok=True)
    at = 0
    for oid, name, mode in wanted:
        header_end = blobs.index(b"\n", at)
        got, kind, size = blobs[at:header_end].decode().split()
        if got != oid or kind != "blob":
            raise MethodRejected(f"{where}: object {oid} could not be read")
        start = header_end + 1
        target = dest / name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(blobs[start:start + int(size)])
        target.chmod(mode)
        at = start + int(size) + 1
    _check_entry(dest, entry, where)
    return MethodTree(dest, entry, tree_hash(dest), sha)


def _work_tree_top(folder: Path) -> Path | None:
    """The nearest folder at or above `folder` with a .git entry, found by looking, not by running git."""
    for candidate in [folder, *folder.parents]:
        if os.path.lexists(candidate / ".git"):
            return candidate
    return None


def _listed_in_sandbox(top: Path, sandbox) -> list[str] | None:
    """The files git would commit in the work tree at top (tracked, and untracked but not ignored), listed by a
    git that runs in the sandbox: whatever the repository's config asks git to run, runs there."""
    with tempfile.TemporaryDirectory(prefix="listing-") as out:
        sandbox.hand_over(Path(out))
        tree, export = Bind(top, str(top)), Bind(Path(out), "/export", writable=True)
        script = f'git ls-files -co --exclude-standard -z > "{sandbox.inside(export)}/{LISTING}"'
        result = sandbox.run(["bash", "-c", script], [tree, export], cwd=tree,
                             limits=Limits(timeout_s=60, memory_mb=1024, max_processes=32, max_file_mb=16),
                             env={"GIT_CONFIG_COUNT": "1", "GIT_CONFIG_KEY_0": "safe.directory",
                                  "GIT_CONFIG_VALUE_0": str(top), "GIT_CEILING_DIRECTORIES": str(top.parent)})
        if not result.ok:
            return None
        try:
            raw = untrusted.read_file(Path(out) / LISTING, 16 * 1024 * 1024)
        except (Blocked, NotFound):
            return None
    return [n for n in raw.decode(errors="replace").split("\0") if n]


def _method_folder(method: Path, top: Path | None) -> Path:
    """Where git gives no listing (no work tree, or a linked worktree whose git folder lies outside it): the nearest
    folder at or up to two above the method's that holds method.py, since a scaffold's methods/*.py import the
    library beside that; else the method's own folder. Never above the work tree's top."""
    for candidate in [method.parent, *method.parent.parents][:3]:
        if (candidate / "method.py").is_file():
            return candidate
        if candidate == top:
            break
    return method.parent


def _walked(root: Path) -> list[str]:
    names = []
    for folder, dirs, files in os.walk(root):
        dirs[:] = [d for d in dirs if d not in SKIP_DIRS]
        names += [str((Path(folder) / f).relative_to(root)) for f in files]
    return names


def from_path(path: Path, dest: Path, sandbox) -> MethodTree:
    """A method file, or a folder holding method.py; its git work tree (or folder) comes with it."""
    path = Path(path).absolute()
    if path.is_dir():
        path = path / "method.py"
    if not path.is_file():
        raise MethodRejected(f"{path} not found (expected a method file or a folder holding method.py)")
    top = _work_tree_top(path.parent)
    names = _listed_in_sandbox(top, sandbox) if top is not None else None
    root = top if top is not None and names is not None else _method_folder(path, top)
    if names is None:
        names = _walked(root)
    dest.mkdir(parents=True, exist_ok=True)
    total, copied = 0, 0
    for name in names:
        if SKIP_DIRS.intersection(Path(name).parts):
            continue
        try:
            data = untrusted.read_bytes(root, name, MAX_TREE_BYTES - total)
        except NotFound:
            continue      # listed but deleted since
        except Blocked as exc:
            if "over the limit" in str(exc):
                raise MethodRejected(f"the method's folder {root} holds over {MAX_TREE_BYTES >> 20} MB of files") from None
            continue      # links, FIFOs and devices are not part of a method
        copied += 1
        if copied > MAX_TREE_FILES:
            raise MethodRejected(f"the method's folder {root} holds over {MAX_TREE_FILES} files")
        total += len(data)
        untrusted.write_bytes(dest, name, data)
    entry = str(path.relative_to(root))
    _check_entry(dest, entry, str(root))
    return MethodTree(dest, entry, tree_hash(dest), None)
