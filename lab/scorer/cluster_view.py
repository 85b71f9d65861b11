"""The cluster as people see it, written by the running lab's engine to <state>/run/cluster.json and read by
`lab status`, the TUI and `lab report` without talking to the engine (stdlib only: it is on the CLI's path)."""
from __future__ import annotations

import json
import os
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from lab.state_layout import RunFolder


@dataclass
class Tracker:
    """Runs in flight per node and runs queued, kept by an engine and published for `lab status` and the TUI."""
    engine: str
    state_file: Path | None = None
    address: str | None = None
    running: dict[str, list[str]] = field(default_factory=dict)   # node -> labels of its runs
    queued: int = 0
    finished: int = 0
    retried: int = 0
    _published: float = 0.0

    def publish(self, nodes: list[dict], force: bool = False) -> None:
        """Write the view atomically, at most a few times a second (a view, not a record: errors are kept quiet)."""
        now = time.time()
        if self.state_file is None or (not force and now - self._published < 0.25):
            return
        self._published = now
        view = {"engine": self.engine, "address": self.address, "updated": now, "pid": os.getpid(), "queued": self.queued,
                "finished": self.finished, "retried": self.retried,
                "nodes": [{**n, "running": list(self.running.get(n["id"], []))} for n in nodes]}
        try:
            write_view(self.state_file, view)
        except OSError:
            pass    # a full disk must not stop scoring; the view is only for people


def write_view(path: Path, view: dict) -> None:
    """A view for people, written atomically: a temporary file renamed over the old one (OSError on failure)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.stem}-", suffix=".json", dir=path.parent)
    try:
        with os.fdopen(fd, "w") as handle:
            json.dump(view, handle)
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise


def read_view(path: Path, key: str, kind: type, since: float | None) -> dict | None:
    """A view as it was last written, or None: no file, an unreadable one, one without `key` of `kind`, or one
    written before `since` (the supervisor's start: a file left by an earlier lab shows nothing live)."""
    try:
        data = json.loads(Path(path).read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(data, dict) or not isinstance(data.get(key), kind):
        return None
    if since is not None and float(data.get("updated") or 0) < since:
        return None
    return data


def read_cluster(run_dir: Path, since: float | None) -> dict | None:
    """The cluster as the running lab's engine last wrote it."""
    return read_view(RunFolder(Path(run_dir)).cluster, "nodes", list, since)


def describe_cluster(view: dict) -> list[str]:
    """The cluster in lines for people: the engine, then each node with its runs in flight."""
    nodes = view.get("nodes") or []
    alive = [n for n in nodes if n.get("alive")]
    running = sum(len(n.get("running") or []) for n in nodes)
    where = f" at {view['address']}" if view.get("address") else ""
    head = (f"cluster: {view.get('engine', '?')}{where}, {len(alive)} node{'s' if len(alive) != 1 else ''} "
            f"({_count(sum(n.get('cpus') or 0 for n in alive))} CPUs, {_count(sum(n.get('gpus') or 0 for n in alive))} "
            f"GPUs); {running} run{'s' if running != 1 else ''} in flight, {view.get('queued', 0)} queued, "
            f"{view.get('finished', 0)} finished, {view.get('retried', 0)} retried on another node")
    lines = [head]
    for node in nodes:
        runs = node.get("running") or []
        state = "" if node.get("alive") else " (dead)"
        role = " (head)" if node.get("head") else ""
        lines.append(f"  node {str(node['id'])[:12]}{role}{state} {node.get('address') or ''}: "
                     f"{_count(node.get('cpus') or 0)} CPUs, {_count(node.get('gpus') or 0)} GPUs, "
                     f"{len(runs)} running" + (f": {', '.join(runs[:4])}" + (" ..." if len(runs) > 4 else "")
                                                 if runs else ""))
    return lines


def _count(value: float) -> str:
    return f"{value:g}"
