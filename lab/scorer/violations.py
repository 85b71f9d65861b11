"""Which lines of a method's stderr name a real denial of something outside its binds.

A line counts when it names what the method tried to reach: a path under the lab's own folders
(its state, private data, database, other agents' worktrees), the network, a label package, or a
path of the read-only system that it tried to write or was not allowed to open. Libraries print
denials of their own that name nothing of the kind (joblib's "[Errno 13] Permission denied.  joblib
will operate in serial mode" when it cannot open a semaphore, torch's shared-memory fallbacks); those
never count, so that a flag always points at something the method reached for.
"""
from __future__ import annotations

import re
from pathlib import PurePosixPath

from lab.config.embedded import LABEL_PACKAGES

NETWORK = ("Network is unreachable", "Temporary failure in name resolution", "Name or service not known",
           "Connection refused")
REFUSED = ("Permission denied", "Read-only file system", "Operation not permitted")
MISSING = ("No such file or directory",)
# Denied here is the sandbox's own plumbing (shared memory, process and device files), not a reach outside.
HARMLESS_ROOTS = ("/dev", "/proc", "/sys", "/tmp")
MAX_LINES = 5
MAX_CHARS = 300

_BARE = r"""[^\s'":,;()<>]"""
# Quoted paths (Python's messages), or bare ones (the shell's). Not paths: a bare one followed by ":<line>"
# (the source location of a warning) or one in angle brackets (torch's "</torch_1_2_0>" shared-memory name).
_PATH = re.compile(r"""['"]([^'"]+)['"]|(?<![\w.<])((?:~|\.{1,2})?/""" + _BARE + "*)(?!" + _BARE + r")(?!:\d)")
_LABEL_IMPORT = re.compile(r"No module named '(" + "|".join(LABEL_PACKAGES) + r")(\.[\w.]*)?'")


def _paths(line: str) -> list[str]:
    return [quoted or bare for quoted, bare in _PATH.findall(line) if "/" in (quoted or bare)]


def _under(path: str, roots: list[str]) -> bool:
    p = PurePosixPath(path)
    return any(p == PurePosixPath(r) or PurePosixPath(r) in p.parents for r in roots)


class DenialReader:
    """`forbidden`: the lab's folders a method must never reach (host paths); `allowed`: the run's own
    binds, host and inside paths, where a denial is the method's own business (its read-only code)."""

    def __init__(self, forbidden: list[str], allowed: list[str]):
        self.forbidden = [str(p) for p in forbidden]
        self.allowed = [str(p) for p in allowed]
        # A relative path can still reach the state folder ("../../.lab/private"): match its name as well.
        self.forbidden_names = {PurePosixPath(p).name for p in self.forbidden}

    def _reaches_lab(self, path: str) -> bool:
        if _under(path, self.allowed):
            return False
        if path.startswith("/"):
            return _under(path, self.forbidden)
        return bool(self.forbidden_names.intersection(PurePosixPath(path).parts))

    def is_denial(self, line: str) -> bool:
        if _LABEL_IMPORT.search(line) or any(m in line for m in NETWORK):
            return True
        refused, missing = any(m in line for m in REFUSED), any(m in line for m in MISSING)
        if not (refused or missing):
            return False
        for path in _paths(line):
            if self._reaches_lab(path):
                return True
            if refused and path.startswith("/") and not _under(path, [*self.allowed, *HARMLESS_ROOTS]):
                return True
        return False

    def denials(self, stderr: str) -> list[str]:
        found = [line.strip()[:MAX_CHARS] for line in stderr.splitlines() if self.is_denial(line)]
        return found[:MAX_LINES]
