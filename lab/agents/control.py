"""What `lab start`, `lab stop` and `lab status` do: start the supervisor daemon, stop it, read the lab's state."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import psutil

from lab.agents.supervisor import Paths
from lab.errors import LabError, NotFound
from lab.scorer.gpus import read_queue
from lab.store import agents, forum, submissions

START_TIMEOUT_S = 120
WORKTREE_THREADS = 8


class LabNotRunning(LabError):
    """A command that needs the running lab found none."""


@dataclass
class Running:
    pid: int
    started: float
    scorer_url: str | None


def running(cfg) -> Running | None:
    """The live supervisor of this lab, or None (a stale pid file from a killed supervisor is ignored)."""
    paths = Paths(cfg.run_dir)
    try:
        pid = int(paths.pid.read_text().strip())
        proc = psutil.Process(pid)
        if "lab.agents.supervisor" not in " ".join(proc.cmdline()) or proc.status() == psutil.STATUS_ZOMBIE:
            return None
    except (OSError, ValueError, psutil.Error):
        return None
    url = paths.url.read_text().strip() if paths.url.exists() else None
    return Running(pid, proc.create_time(), url)


def check_names(cfg, names: list[str]) -> list[str]:
    known = cfg.agents.names
    for name in names:
        if name not in known:
            raise NotFound(f"no agent named {name!r} (expected one of: {known[0]} ... {known[-1]})")
    return names


def start_daemon(cfg, config_path: str, only: list[str] | None = None) -> Running:
    """Start the supervisor in its own session and wait until it is ready (its pid file appears)."""
    paths = Paths(cfg.run_dir)
    paths.logs.mkdir(parents=True, exist_ok=True)
    paths.pid.unlink(missing_ok=True)
    argv = [sys.executable, "-m", "lab.agents.supervisor", "--config", str(Path(config_path).resolve())]
    if only:
        argv += ["--only", *only]
    log_path = cfg.run_dir / "supervisor.log"
    with open(log_path, "ab") as log:
        proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                start_new_session=True, cwd=cfg.root)
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            tail = [ln for ln in log_path.read_text(errors="replace").splitlines() if ln.strip()][-1:]
            raise LabError(f"the supervisor exited with code {proc.returncode}: {tail[0] if tail else 'no output'} "
                           f"(see {log_path})")
        found = running(cfg)
        if found:
            return found
        time.sleep(0.05)
    raise LabError(f"the supervisor did not become ready within {START_TIMEOUT_S} s (see {log_path})")


@dataclass
class Started:
    running: Running
    already_running: bool
    backend_why: str
    prepared: bool       # the testbed was built now
    count: int


def start_lab(cfg, config_path: str, sandbox, names: list[str] | None = None) -> Started:
    """Prepare what is missing (testbed, worktrees) and start the supervisor, unless it already runs."""
    from lab.agents.backends import resolve
    from lab.prepare import prepare

    _, why = resolve(cfg.agents.backend, cfg.task.kind)
    names = check_names(cfg, list(names or []))
    live = running(cfg)
    if live:
        return Started(live, True, why, False, 0)
    prepared = prepare(cfg, sandbox)
    prepare_worktrees(cfg, names or cfg.agents.names)
    started = start_daemon(cfg, config_path, names or None)
    return Started(started, False, why, prepared.rebuilt, len(names) or cfg.agents.count)


def prepare_worktrees(cfg, names: list[str]) -> None:
    """Make each agent's worktree where it is missing: one sandboxed git run each, which mostly waits on the
    sandbox's mounts being made and torn down (about 0.2 s, 0.01 s of CPU), so they run side by side in threads.
    The first runs alone, since it writes the git config that all of them share."""
    from lab.sandbox import make_sandbox
    from lab.sandbox.workspace import Workspace
    from lab.scaffold.repo import research_repo_path

    def ensure(name: str) -> None:
        Workspace.ensure(cfg.sandboxes_dir, research_repo_path(cfg.state_dir), name,
                         make_sandbox(cfg.lab.sandbox, warn=lambda line: None, user=name))  # warned by the caller

    if names:
        ensure(names[0])
    with ThreadPoolExecutor(max_workers=WORKTREE_THREADS) as pool:
        list(pool.map(ensure, names[1:]))   # list(): the first failure is raised here


def lab_processes(cfg) -> list[psutil.Process]:
    """Every process of this lab still alive: supervisor and runners (found by their command lines)."""
    config_marker = "--config"
    found = []
    for proc in psutil.process_iter(["cmdline"]):
        cmd = proc.info["cmdline"] or []
        if any(part in ("lab.agents.supervisor", "lab.agents.runner") for part in cmd) and config_marker in cmd:
            try:
                config = Path(cmd[cmd.index(config_marker) + 1]).resolve()
            except (IndexError, OSError):
                continue
            if config.parent == Path(cfg.root).resolve() and proc.pid != os.getpid():
                found.append(proc)
    return found


def stop_lab(cfg, db) -> list[int]:
    """SIGTERM the supervisor and wait for it to stop everything; kill what is left. Returns killed pids."""
    live = running(cfg)
    if live:
        os.kill(live.pid, signal.SIGTERM)
        deadline = time.monotonic() + cfg.agents.grace_s + 30
        while time.monotonic() < deadline and psutil.pid_exists(live.pid):
            try:
                if psutil.Process(live.pid).status() == psutil.STATUS_ZOMBIE:
                    break
            except psutil.Error:
                break
            time.sleep(0.2)
    killed = []
    for proc in lab_processes(cfg):
        try:
            os.killpg(proc.pid, signal.SIGKILL) if os.getpgid(proc.pid) == proc.pid else proc.kill()
            killed.append(proc.pid)
        except (ProcessLookupError, psutil.Error):
            pass
    psutil.wait_procs(lab_processes(cfg), timeout=5)
    for row in agents.all_agents(db):
        if row["state"] in agents.LIVE:   # left so by a supervisor that was killed
            agents.set_state(db, row["name"], "stopped", "the lab was stopped", pid=None)
    Paths(cfg.run_dir).pid.unlink(missing_ok=True)
    return killed


def wait_for_states(db, names: list[str], want: tuple[str, ...], timeout: float) -> dict[str, str]:
    """Wait until each agent reaches one of the wanted states (or the timeout); their states then."""
    deadline = time.monotonic() + timeout
    states = {}
    while time.monotonic() < deadline:
        states = {n: agents.get(db, n)["state"] for n in names}
        if all(s in want for s in states.values()):
            break
        time.sleep(0.2)
    return states


def best_by_agent(db) -> dict[str, float]:
    return {agent: points[-1][1] for agent, points in submissions.best_over_time(db, exclude=()).items()
            if agent != "lab"}


def status(cfg, db, now: float | None = None) -> dict:
    live = running(cfg)
    best = best_by_agent(db)
    now = time.time() if now is None else now
    rows = []
    for row in agents.all_agents(db):
        state, reason = row["state"], row["reason"]
        if not live and state in agents.LIVE:
            state, reason = "stopped", "the lab is not running (`lab start` resumes it)"
        uptime = now - row["started"] if state in agents.LIVE and row["started"] else 0.0
        rows.append({"name": row["name"], "state": state, "reason": reason, "backend": row["backend"],
                     "direction": row["direction"], "step": row["step"], "slice": row["slice"], "pid": row["pid"],
                     "uptime_s": round(uptime, 1), "restarts": row["restarts"], "tokens": row["tokens_in"] + row["tokens_out"],
                     "dollars": round(row["dollars"], 4), "experiments": row["experiments"],
                     "scorer_queries": row["scorer_queries"], "best_pgr": best.get(row["name"])})
    agent_best = [v for k, v in best.items() if k not in ("person", "baseline")]
    totals = agents.totals(db)
    return {"running": bool(live), "supervisor_pid": live.pid if live else None,
            "scorer": live.scorer_url if live else None, "agents": rows,
            # the scorer's GPU queue as it last wrote it; None without GPUs or a running lab
            "gpus": read_queue(cfg.run_dir, since=live.started) if live else None,
            "lab": {"best_pgr": max(agent_best) if agent_best else None, "dollars": round(totals["dollars"], 4),
                    "tokens": totals["tokens_in"] + totals["tokens_out"], "experiments": totals["experiments"],
                    "forum_posts": forum.count(db),
                    "submissions": db.execute("SELECT count(*) FROM submissions WHERE agent NOT IN "
                                              "('person', 'baseline')").fetchone()[0]}}
