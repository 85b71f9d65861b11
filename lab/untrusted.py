"""Files in folders that agents control, read and written from outside their sandbox.

Everything under an agent's worktree (and everything a method writes) may be a trap: a symlink or
hard link to a host file, a FIFO that blocks a reader forever, a device, a sparse file of terabytes,
a name full of control characters, or an entry swapped for a link between a check and its use.
So every operation walks the path one component at a time from a folder descriptor, never follows
a link (O_NOFOLLOW on every component), checks what it opened with fstat on the descriptor itself,
and writes through a fresh file renamed into place. Nothing here resolves a path by name twice.
"""
from __future__ import annotations

import os
import stat
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from lab.errors import Blocked, NotFound

_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_READ_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC
_KINDS = {stat.S_IFIFO: "a FIFO", stat.S_IFCHR: "a character device", stat.S_IFBLK: "a block device",
          stat.S_IFSOCK: "a socket", stat.S_IFLNK: "a symbolic link", stat.S_IFDIR: "a folder"}


def parts_of(relative: str, forbid: tuple[str, ...] = (".git",)) -> list[str]:
    """The components of a relative path an agent gave, or NotFound/Blocked saying what is wrong with it."""
    if not isinstance(relative, str) or not relative.strip():
        raise NotFound("an empty path (expected a path relative to your worktree)")
    if "\0" in relative or any(ord(c) < 32 or ord(c) == 127 for c in relative):
        raise Blocked(f"{relative!r}: a path with control characters")
    if relative.startswith("/"):
        raise Blocked(f"{relative}: an absolute path leads outside your worktree (paths are relative to it)")
    parts = [p for p in relative.split("/") if p not in ("", ".")]
    if not parts:
        raise NotFound(f"{relative!r} names the worktree itself, not a file")
    if ".." in parts:
        raise Blocked(f"{relative}: '..' leads outside your worktree")
    for part in parts:
        if part in forbid:
            raise Blocked(f"{relative}: the {part} entry is not a file to read or write; use git_commit")
    return parts


def describe(mode: int) -> str:
    return _KINDS.get(stat.S_IFMT(mode), "not a regular file")


@contextmanager
def _folder(root: Path, parts: list[str], create: bool = False, owner: int | None = None) -> Iterator[int]:
    """A descriptor of root/parts..., walked without following any link; missing folders made when create."""
    fd = os.open(root, _DIR_FLAGS)
    try:
        for i, part in enumerate(parts):
            try:
                child = os.open(part, _DIR_FLAGS, dir_fd=fd)
            except FileNotFoundError:
                if not create:
                    raise NotFound(f"{'/'.join(parts[:i + 1])}: no such folder") from None
                os.mkdir(part, 0o755, dir_fd=fd)
                child = os.open(part, _DIR_FLAGS, dir_fd=fd)
                if owner is not None:
                    os.fchown(child, owner, owner)
            except OSError:
                kind = _entry_kind(fd, part)
                raise Blocked(f"{'/'.join(parts[:i + 1])} is {kind}, not a folder inside the worktree") from None
            os.close(fd)
            fd = child
        yield fd
    finally:
        os.close(fd)


def _entry_kind(dir_fd: int, name: str) -> str:
    try:
        return describe(os.stat(name, dir_fd=dir_fd, follow_symlinks=False).st_mode)
    except OSError:
        return "missing"


def _open_regular(dir_fd: int, name: str, shown: str) -> tuple[int, os.stat_result]:
    try:
        fd = os.open(name, _READ_FLAGS, dir_fd=dir_fd)
    except FileNotFoundError:
        raise NotFound(f"{shown}: no such file") from None
    except OSError:  # ELOOP: the entry is a symbolic link; ENXIO and friends: a device or socket
        raise Blocked(f"{shown} is {_entry_kind(dir_fd, name)}, not a regular file") from None
    info = os.fstat(fd)
    if not stat.S_ISREG(info.st_mode):
        os.close(fd)
        raise Blocked(f"{shown} is {describe(info.st_mode)}, not a regular file")
    if info.st_nlink > 1:
        os.close(fd)
        raise Blocked(f"{shown} is a hard link ({info.st_nlink} names for one file)")
    return fd, info


def _read_fd(fd: int, info: os.stat_result, max_bytes: int, shown: str) -> bytes:
    if info.st_size > max_bytes:
        raise Blocked(f"{shown} is {info.st_size:,} bytes, over the limit of {max_bytes:,} bytes")
    os.set_blocking(fd, True)
    chunks: list[bytes] = []
    total = 0
    while True:
        chunk = os.read(fd, min(1 << 20, max_bytes + 1 - total))
        if not chunk:
            return b"".join(chunks)
        chunks.append(chunk)
        total += len(chunk)
        if total > max_bytes:  # grew while we read
            raise Blocked(f"{shown} is over the limit of {max_bytes:,} bytes")


def read_bytes(root: Path, relative: str, max_bytes: int) -> bytes:
    """The bytes of a regular file under root, which must not be (or pass through) a link."""
    parts = parts_of(relative)
    with _folder(root, parts[:-1]) as folder:
        fd, info = _open_regular(folder, parts[-1], relative)
        try:
            return _read_fd(fd, info, max_bytes, relative)
        finally:
            os.close(fd)


def read_file(path: Path, max_bytes: int) -> bytes:
    """A regular file whose folder we own but whose last component a sandboxed process may have made."""
    path = Path(path)
    with _folder(path.parent, []) as folder:
        fd, info = _open_regular(folder, path.name, path.name)
        try:
            return _read_fd(fd, info, max_bytes, path.name)
        finally:
            os.close(fd)


def exists_as_file(root: Path, relative: str) -> bool:
    try:
        parts = parts_of(relative)
        with _folder(root, parts[:-1]) as folder:
            return stat.S_ISREG(os.stat(parts[-1], dir_fd=folder, follow_symlinks=False).st_mode)
    except (NotFound, Blocked, OSError):
        return False


def write_bytes(root: Path, relative: str, data: bytes, owner: int | None = None) -> None:
    """Create or replace a file under root: a new file renamed over the old entry, so a link planted at the
    name is replaced, never followed; folders on the way are made (owned by owner) and never followed."""
    parts = parts_of(relative)
    with _folder(root, parts[:-1], create=True, owner=owner) as folder:
        name = parts[-1]
        try:
            if stat.S_ISDIR(os.stat(name, dir_fd=folder, follow_symlinks=False).st_mode):
                raise Blocked(f"{relative} is a folder, not a file")
        except FileNotFoundError:
            pass
        temp = f".{name}.lab-{os.getpid()}-{os.urandom(4).hex()}"
        fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o644, dir_fd=folder)
        try:
            with os.fdopen(fd, "wb", closefd=False) as handle:
                handle.write(data)
            if owner is not None:
                os.fchown(fd, owner, owner)
            os.fchmod(fd, 0o644)
            os.rename(temp, name, src_dir_fd=folder, dst_dir_fd=folder)
        except BaseException:
            try:
                os.unlink(temp, dir_fd=folder)
            except FileNotFoundError:
                pass
            raise
        finally:
            os.close(fd)


def copy_out(path: Path, dest: Path, max_bytes: int) -> int:
    """Copy a regular file that a sandboxed process made (its folder is ours) to dest, streaming; the size."""
    path = Path(path)
    with _folder(path.parent, []) as folder:
        fd, info = _open_regular(folder, path.name, path.name)
    try:
        if info.st_size > max_bytes:
            raise Blocked(f"{path.name} is {info.st_size:,} bytes, over the limit of {max_bytes:,} bytes")
        os.set_blocking(fd, True)
        total = 0
        with open(dest, "xb") as out:
            while chunk := os.read(fd, 1 << 20):
                total += len(chunk)
                if total > max_bytes:
                    raise Blocked(f"{path.name} is over the limit of {max_bytes:,} bytes")
                out.write(chunk)
        return total
    finally:
        os.close(fd)
