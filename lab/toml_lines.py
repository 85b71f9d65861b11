"""Where a key sits in a TOML file, so that an error about it can name the line.

tomllib gives values, not positions; this reads the lines themselves. It knows table headers ([a.b], [[a]]) and
`key = value` lines, dotted and quoted keys included. A key it cannot see (inside an inline table, or one that is
missing) is placed at the nearest table or key above it in the path that it can.
"""
from __future__ import annotations

import re

_HEADER = re.compile(r"^\s*\[\[?\s*([^\]]+?)\s*\]\]?\s*(#.*)?$")
_KEY = re.compile(r"""^\s*((?:[A-Za-z0-9_-]+|"[^"]*"|'[^']*')(?:\s*\.\s*(?:[A-Za-z0-9_-]+|"[^"]*"|'[^']*'))*)\s*=""")
_PART = re.compile(r"""[A-Za-z0-9_-]+|"[^"]*"|'[^']*'""")


def _parts(dotted: str) -> list[str]:
    return [p.strip("\"'") for p in _PART.findall(dotted)]


def key_line(text: str, path: tuple[str | int, ...]) -> int | None:
    """The 1-based line where the key at `path` (("scorer", "timeout_s")) is set, or where the first table at or
    under it begins ([scorer] for ("scorer",)); else the line of its nearest ancestor found; None where none is."""
    path = tuple(str(p) for p in path)
    nearest: tuple[int, int | None] = (0, None)     # (how much of the path, line)
    table: list[str] = []
    for number, line in enumerate(text.splitlines(), start=1):
        header = _HEADER.match(line)
        if header:
            table = _parts(header.group(1))
            found = tuple(table)
        else:
            key = _KEY.match(line)
            if not key:
                continue
            found = (*table, *_parts(key.group(1)))
        if path and found[:len(path)] == path:
            return number
        if nearest[0] < len(found) < len(path) and path[:len(found)] == found:
            nearest = (len(found), number)
    return nearest[1]
