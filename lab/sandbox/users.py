"""The unprivileged uid (and gid, the same number) each sandbox user runs as: one per agent, one for the scorer.

RLIMIT_NPROC counts processes per real uid, so only separate uids give each agent a process pool of
its own. The uids come from the first subordinate-uid range (/etc/subuid) of the user running the
lab: such a range is set aside for that user's own use and is no account's. Without one, they come
from DEFAULT_BASE. Either way the lab refuses to start sandboxes while an account in /etc/passwd, a
group in /etc/group or another user's subordinate range holds one of them, since whoever holds the
uid could signal, trace or read what the sandbox's processes hold.
"""
from __future__ import annotations

import functools
import os
import pwd
import re
from pathlib import Path

from lab.errors import SandboxError

SCORER = "scorer"
MAX_AGENTS = 64          # agents.count's upper bound in lab/config/schema.py
SLOTS = MAX_AGENTS + 1   # the scorer's uid, then one per agent
DEFAULT_BASE = 200000


def slot(user: str) -> int:
    """scorer -> 0, agent-N -> N."""
    if user == SCORER:
        return 0
    match = re.fullmatch(r"agent-([1-9][0-9]*)", user)
    if not match or int(match.group(1)) > MAX_AGENTS:
        raise SandboxError(f"{user!r} is not a sandbox user: expected {SCORER!r} or agent-1 .. agent-{MAX_AGENTS}")
    return int(match.group(1))


def uid_of(user: str, etc: Path = Path("/etc")) -> int:
    return uid_base(etc) + slot(user)


def _subordinate_ranges(path: Path) -> list[tuple[str, int, int]]:
    """(owner, first id, count) of each line of /etc/subuid or /etc/subgid."""
    found = []
    text = path.read_text() if path.is_file() else ""
    for line in text.splitlines():
        fields = line.strip().split(":")
        if len(fields) == 3 and fields[1].isdigit() and fields[2].isdigit():
            found.append((fields[0], int(fields[1]), int(fields[2])))
    return found


def _ids_in_use(path: Path) -> dict[int, str]:
    """id -> name of each account of /etc/passwd or group of /etc/group."""
    found = {}
    text = path.read_text() if path.is_file() else ""
    for line in text.splitlines():
        fields = line.split(":")
        if len(fields) > 2 and fields[2].isdigit():
            found[int(fields[2])] = fields[0]
    return found


@functools.cache
def uid_base(etc: Path = Path("/etc")) -> int:
    """The scorer's uid; agent-N gets base + N."""
    me = (pwd.getpwuid(os.getuid()).pw_name, str(os.getuid()))
    own = [(start, count) for owner, start, count in _subordinate_ranges(etc / "subuid")
           if owner in me and count >= SLOTS]
    base = own[0][0] if own else DEFAULT_BASE
    ids = range(base, base + SLOTS)
    taken = [f"{what} {name!r} ({i}) in {etc / file}"
             for file, what in (("passwd", "account"), ("group", "group"))
             for i, name in _ids_in_use(etc / file).items() if i in ids]
    taken += [f"{owner}'s subordinate range {start}-{start + count - 1} in {etc / file}"
              for file in ("subuid", "subgid")
              for owner, start, count in _subordinate_ranges(etc / file)
              if owner not in me and start < ids.stop and start + count > ids.start]
    if taken:
        raise SandboxError(f"the sandboxes' uids {ids.start}-{ids.stop - 1} are already used by {'; '.join(taken)}: "
                           f"give {me[0]} a subordinate range of {SLOTS} unused ids in {etc / 'subuid'} "
                           f"(usermod --add-subuids FIRST-LAST {me[0]})")
    return base
