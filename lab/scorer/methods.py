"""Getting a method's code into a clean folder: from a commit of the research repository or a path."""
from __future__ import annotations

import hashlib
import io
import shutil
import subprocess
import tarfile
from dataclasses import dataclass
from pathlib import Path

import git

from lab.errors import MethodRejected, NotFound

MAX_TREE_BYTES = 64 * 1024 * 1024
SKIP_DIRS = {".git", "__pycache__", ".venv", ".lab", "node_modules", ".pytest_cache"}


@dataclass(frozen=True)
class MethodTree:
    root: Path          # a clean copy of the code
    entry: str          # the method file, relative to root
    tree_hash: str      # sha256 over paths and contents: what exactly was run
    commit_sha: str | None


def tree_hash(root: Path) -> str:
    digest = hashlib.sha256()
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        digest.update(str(path.relative_to(root)).encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()


def _check_entry(root: Path, entry: str, where: str) -> None:
    if not (root / entry).is_file():
        raise MethodRejected(f"{where} has no method file {entry!r} (expected a Python file following the method contract)")


def from_commit(repo: git.Repo, commit: str, entry: str, dest: Path) -> MethodTree:
    try:
        sha = repo.commit(commit).hexsha
    except (git.BadName, ValueError, git.GitCommandError):
        raise NotFound(f"commit {commit!r} is not in the research repository") from None
    buffer = io.BytesIO()
    repo.archive(buffer, treeish=sha, format="tar")
    buffer.seek(0)
    dest.mkdir(parents=True, exist_ok=True)
    with tarfile.open(fileobj=buffer) as tar:
        tar.extractall(dest, filter="data")
    _check_entry(dest, entry, f"commit {sha[:10]}")
    return MethodTree(dest, entry, tree_hash(dest), sha)


def _git_files(folder: Path) -> tuple[Path, list[str]] | None:
    try:
        top = subprocess.run(["git", "-C", str(folder), "rev-parse", "--show-toplevel"], capture_output=True,
                             text=True, check=True).stdout.strip()
        listed = subprocess.run(["git", "-C", top, "ls-files", "-co", "--exclude-standard", "-z"],
                                capture_output=True, check=True).stdout.decode().split("\0")
    except (subprocess.CalledProcessError, FileNotFoundError):
        return None
    return Path(top), [f for f in listed if f and (Path(top) / f).is_file()]


def from_path(path: Path, dest: Path) -> MethodTree:
    """A method file, or a folder holding method.py; its git work tree (or folder) comes with it."""
    path = Path(path).resolve()
    if path.is_dir():
        path = path / "method.py"
    if not path.is_file():
        raise MethodRejected(f"{path} not found (expected a method file or a folder holding method.py)")
    tracked = _git_files(path.parent)
    if tracked and path.is_relative_to(tracked[0]):
        root, names = tracked
    else:
        root = path.parent
        names = [str(p.relative_to(root)) for p in root.rglob("*")
                 if p.is_file() and not SKIP_DIRS.intersection(p.relative_to(root).parts)]
    total = 0
    for name in names:
        total += (root / name).stat().st_size
        if total > MAX_TREE_BYTES:
            raise MethodRejected(f"the method's folder {root} holds over {MAX_TREE_BYTES >> 20} MB of files")
        (dest / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(root / name, dest / name)
    entry = str(path.relative_to(root))
    return MethodTree(dest, entry, tree_hash(dest), None)
