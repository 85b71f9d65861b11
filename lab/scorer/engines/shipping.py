"""What travels to a node, content-addressed: the method's code and the files of the data views it reads.

On the head, every file of a view is put into Ray's object store once, under its SHA-256, and reused by every
run and submission that reads the same bytes (a second teacher's view differs from its set's view only in its
train.jsonl). A run receives, for each file of its view, the hash and a reference; a node keeps a cache of
files by hash and fetches only what it lacks, checking each fetched file against its hash before use.

Only the views a method may read travel, and the method's own code. Labels, baselines and the
ground-truth views stay on the head: `Shipper.view` refuses any file below a `private/` folder that is not a
set's view or its second teacher's (these carry no labels: the sandboxed method reads them wherever it runs).
"""
from __future__ import annotations

import hashlib
import os
import stat
import threading
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lab.errors import LabError
from lab.state_layout import StateLayout

Manifest = dict[str, tuple[str, list[Any]]]   # a view's relative file name -> (sha256, [object ref])


class PrivateData(LabError):
    """Something that carries labels was about to leave the head."""


@dataclass(frozen=True)
class CodeArchive:
    """A method's code: its files by relative name, with their permission bits."""
    files: dict[str, tuple[int, bytes]]


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def pack_code(root: Path) -> CodeArchive:
    """The regular files below root (a clean copy the scorer made: no links, no special files)."""
    files = {}
    for folder, _, names in os.walk(root):
        for name in names:
            path = Path(folder) / name
            info = path.lstat()
            if stat.S_ISREG(info.st_mode):
                files[str(path.relative_to(root))] = (stat.S_IMODE(info.st_mode), path.read_bytes())
    return CodeArchive(files)


def check_shippable(view: Path, state_dir: Path | None) -> None:
    """A view may travel unless it lies in the lab's private folder outside a set's `view/` or `teacher_b_view/`."""
    if state_dir is None:
        return
    private = StateLayout(Path(state_dir).resolve()).private
    where = Path(view).resolve()
    if where.is_relative_to(private):
        inside = where.relative_to(private).parts
        if len(inside) < 2 or inside[1] not in ("view", "teacher_b_view"):
            raise PrivateData(f"{view} carries labels or baselines and never leaves this machine "
                              "(only the views a method may read travel to the cluster's nodes)")


class Shipper:
    """The head's side: files put into the object store once each, remembered by hash within a byte budget
    (the least recently used are let go; a run in flight keeps its own reference to what it reads)."""

    def __init__(self, put, budget_bytes: int, state_dir: Path | None = None):
        self.put, self.budget, self.state_dir = put, budget_bytes, state_dir
        self._hashes: dict[tuple[int, int, int, int], str] = {}        # (dev, inode, size, mtime) -> sha256
        self._refs: OrderedDict[str, tuple[Any, int]] = OrderedDict()  # sha256 -> (ref, size)
        self._held = 0
        self._lock = threading.Lock()
        self.put_count = 0       # objects put so far: what a cached view saves shows here

    def view(self, view: Path) -> Manifest:
        check_shippable(view, self.state_dir)
        manifest = {}
        for folder, _, names in os.walk(view):
            for name in sorted(names):
                path = Path(folder) / name
                if path.is_file() and not path.is_symlink():
                    manifest[str(path.relative_to(view))] = self._file(path)
        return manifest

    def _file(self, path: Path) -> tuple[str, list[Any]]:
        info = path.stat()
        key = (info.st_dev, info.st_ino, info.st_size, info.st_mtime_ns)
        with self._lock:
            digest = self._hashes.get(key)
            if digest is None or digest not in self._refs:
                data = path.read_bytes()
                digest = self._hashes[key] = sha256_bytes(data)
                if digest not in self._refs:
                    self._refs[digest] = (self.put(data), len(data))
                    self._held += len(data)
                    self.put_count += 1
            self._refs.move_to_end(digest)
            ref = self._refs[digest][0]
            while self._held > self.budget and len(self._refs) > 1:
                _, (_, size) = self._refs.popitem(last=False)
                self._held -= size
        return digest, [ref]     # in a list: Ray passes it on unfetched, and the node fetches only on a miss
