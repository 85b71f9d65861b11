"""A process's command line as /proc (and so `ps`, psutil and `lab stop`) shows it, rewritten in place.

A runner forked by the zygote (lab.agents.zygote) starts with the zygote's command line; it rewrites it to the one
`python -m lab.agents.runner` would have had, so that every tool finding the lab's processes by their command
line keeps finding it. Linux shows a process's command line from its original argv area, which a process may
overwrite but not grow: the new one must fit, and what is left of the area reads as empty arguments.
"""
from __future__ import annotations

import ctypes

ARG_START_FIELD = 48    # of /proc/self/stat (man 5 proc), counted from 1: where argv begins, and ends (49)


def _argv_area() -> tuple[int, int]:
    with open("/proc/self/stat") as f:
        stat = f.read()
    fields = stat[stat.rindex(")") + 2:].split()   # from field 3 on: the name in field 2 may hold spaces
    return int(fields[ARG_START_FIELD - 3]), int(fields[ARG_START_FIELD - 2])


def set_cmdline(args: list[str]) -> bool:
    """Make /proc/self/cmdline read `args`; False (nothing changed) where they do not fit or /proc does not say
    where argv is."""
    encoded = b"".join(arg.encode() + b"\0" for arg in args)
    try:
        start, end = _argv_area()
    except (OSError, ValueError, IndexError):
        return False
    if not start or len(encoded) > end - start:
        return False
    ctypes.memmove(start, encoded + b"\0" * (end - start - len(encoded)), end - start)
    return True
