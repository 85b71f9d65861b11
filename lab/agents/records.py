"""What an agent leaves for a person to read: its state, transcript, notebook and log, as plain data.

`lab agent NAME` prints these; the TUI's agent screen shows the same store rows and the same log. Everything here
only reads, from the store (a read-only connection will do) and from the runner's log file, so it answers while
the lab runs and after it stopped. Each reader takes `last`, how many of the newest entries to return (None: all),
so that a long transcript or log never floods a terminal by default.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

from lab.errors import NotFound
from lab.store import agents, events, submissions
from lab.store.scores import Submission
from lab.suggest import did_you_mean

if TYPE_CHECKING:
    from lab.settings import Settings
    from lab.store import Database

LATEST_IN_SUMMARY = 5
_BLOCK = 64 * 1024


def check_agent(cfg: Settings, db: Database, name: str) -> str:
    """The name, where lab.toml or the lab's history knows such an agent; else NotFound naming the closest one."""
    known = [*cfg.agents.names, *(n for n in agents.names(db) if n not in cfg.agents.names)]
    if name not in known:
        raise NotFound(f"no agent named {name!r} ({did_you_mean(name, known)}expected one of: {known[0]} ... "
                       f"{known[-1]})")
    return name


def log_path(cfg: Settings, name: str) -> Path:
    """The runner's log: its logging records, stdout and stderr (lab.logfiles), rotated beside as NAME.log.1, ..."""
    return cfg.state.run.agent_log(name)


def summary(cfg: Settings, db: Database, name: str, status_row: dict | None) -> dict:
    """The agent's row as `lab status` reports it (None before its first start), where its files are, how much of
    each record there is, and its latest few events and submissions."""
    log = log_path(cfg, name)
    notes = agents.notebook(db, name)
    subs = submissions.of_agent(db, name, limit=LATEST_IN_SUMMARY)
    return {"agent": name, "status": status_row, "worktree": str(cfg.sandboxes_dir / name),
            "log": {"path": str(log), "bytes": log.stat().st_size if log.is_file() else None},
            "notebook_lines": len(notes.splitlines()), "events": events.count(db, name),
            "latest_events": events.transcript(db, name, limit=LATEST_IN_SUMMARY),
            "latest_submissions": [_submission(s) for s in subs]}


def _submission(sub: Submission) -> dict:
    return {"id": sub.id, "created": sub.created, "status": sub.status, "commit": sub.commit_sha,
            "disqualified": sub.disqualified, "error": sub.error,
            "scores": {s.dataset: {"role": s.role, "status": s.status, "pgr": s.pgr, "pgr_se": s.pgr_se}
                       for s in sub.scores},
            "open_flags": sub.open_flag_kinds}


def transcript(db: Database, name: str, last: int | None) -> dict:
    """The newest `last` events (model turns, tool calls and results, messages, state changes), oldest first."""
    return {"agent": name, "total": events.count(db, name), "events": events.transcript(db, name, limit=last)}


def notebook(db: Database, name: str, last: int | None) -> dict:
    """The notebook the agent keeps across restarts (the store's copy, which the `notebook` tool writes)."""
    lines = agents.notebook(db, name).splitlines()
    return {"agent": name, "total_lines": len(lines), "lines": lines if last is None else lines[-last:] if last else []}


def log(cfg: Settings, name: str, last: int | None) -> dict:
    """The last `last` lines of the runner's current log file; `exists` is False before the agent's first start."""
    path = log_path(cfg, name)
    exists = path.is_file()
    return {"agent": name, "path": str(path), "exists": exists, "lines": tail_lines(path, last) if exists else []}


def tail_lines(path: Path, last: int | None) -> list[str]:
    """The file's last `last` lines (None: every line), read from its end: a 10 MB log costs a few blocks."""
    with open(path, "rb") as f:
        if last is None:
            return f.read().decode(errors="replace").splitlines()
        if last <= 0:
            return []
        end = f.seek(0, os.SEEK_END)
        position, chunk = end, b""
        while position > 0 and chunk.count(b"\n") <= last:
            step = min(_BLOCK, position)
            position -= step
            f.seek(position)
            chunk = f.read(step) + chunk
    return chunk.decode(errors="replace").splitlines()[-last:]
