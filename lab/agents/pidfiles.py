"""How the lab finds its own processes: each of them (the supervisor, the runners' zygote, every runner) writes its
pid file into the run folder as it starts (lab.state_layout.RunFolder), and `lab stop`, `lab status` and the next
supervisor read those files, never the processes' command lines.

A pid file holds "PID START", START being when the process started (in clock ticks since boot, which no change of
the system clock moves): a pid left by a process that has died, which the system may have given to another program
since, is never taken for the lab's.
"""
from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import psutil

from lab.state_layout import RunFolder


def _stat(pid: int) -> tuple[bytes, int]:
    """The process's state (b"Z" for a zombie) and its start."""
    stat = Path(f"/proc/{pid}/stat").read_bytes()
    fields = stat[stat.rindex(b")") + 2:].split()    # after the command's name, which may hold anything
    return fields[0], int(fields[19])


def own_line() -> str:
    """What this process writes into its pid file (or its lock file: lab.agents.locks)."""
    return f"{os.getpid()} {_stat(os.getpid())[1]}\n"


def write_own(path: Path) -> None:
    """Name this process in `path`, whole or not at all."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temp = path.with_name(f".{path.name}.{os.getpid()}")
    temp.write_text(own_line())
    os.replace(temp, path)


def read(path: Path) -> psutil.Process | None:
    """The live process that wrote `path`; None where there is none, or it has ended (a zombie has)."""
    try:
        pid, started = (int(part) for part in path.read_text().split())
        state, start = _stat(pid)
        if start != started or state == b"Z":
            return None
        return psutil.Process(pid)
    except (OSError, ValueError, psutil.Error):
        return None


def runners(run: RunFolder, names: Sequence[str]) -> dict[str, psutil.Process]:
    """The live runners of these agents, by agent."""
    return {name: proc for name in names if (proc := read(run.runner_pid(name))) is not None}


def lab_processes(run: RunFolder) -> list[psutil.Process]:
    """Every process of the lab still alive: its supervisor (ready or not), the runners' zygote and the runners."""
    found = [read(path) for path in (run.supervisor_lock, run.zygote_pid, *run.runner_pid_files())]
    return [proc for proc in found if proc is not None and proc.pid != os.getpid()]
