"""What `lab start`, `lab stop` and `lab status` do: start the supervisor daemon, stop it, read the lab's state."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Sequence

import psutil

from lab import heartbeat
from lab.agents import pidfiles
from lab.agents.locks import EXIT_ALREADY_SUPERVISED, StartLock
from lab.errors import LabError, NotFound
from lab.sandbox import disk_quota
from lab.scorer.cluster_view import read_cluster
from lab.scorer.gpus import read_queue
from lab.store import agents, forum, submissions
from lab.suggest import did_you_mean
from lab.threads import DAEMON_ENV

if TYPE_CHECKING:
    import sqlite_utils

    from lab.agents.backends import Choice
    from lab.config import Config
    from lab.sandbox import Sandbox
    from lab.settings import Settings
    from lab.store import Database

START_TIMEOUT_S = 120
POLL_S = 0.05


class LabNotRunning(LabError):
    """A command that needs the running lab found none."""


@dataclass
class Running:
    pid: int
    started: float
    scorer_url: str | None
    beat: heartbeat.Pulse            # the supervisor's main loop
    scorer_beat: heartbeat.Pulse     # the scorer's queue

    @property
    def warnings(self) -> list[str]:
        """A line for each heartbeat gone stale: the lab looks alive and may be doing nothing."""
        return [p.describe() for p in (self.beat, self.scorer_beat) if p.stale]

    @property
    def silent(self) -> list[str]:
        """The same, briefly, for a header."""
        return [p.brief() for p in (self.beat, self.scorer_beat) if p.stale]


def running(cfg: Settings) -> Running | None:
    """The live, ready supervisor of this lab, or None (a stale pid file from a killed supervisor is ignored)."""
    run = cfg.state.run
    proc = pidfiles.read(run.supervisor_pid)
    if proc is None:
        return None
    try:
        started = proc.create_time()
    except psutil.Error:
        return None
    url = run.scorer_url.read_text().strip() if run.scorer_url.exists() else None
    return Running(proc.pid, started, url, heartbeat.pulse(run.supervisor_beat, "supervisor", since=started),
                   heartbeat.pulse(run.scorer_beat, "scorer's queue", since=started))


def frozen_supervisor(cfg: Settings) -> tuple[psutil.Process, heartbeat.Pulse] | None:
    """The supervisor that holds this lab but has not beaten for longer than heartbeat.STALE_AFTER_S (stuck, ready or
    not), with its heartbeat; None where there is none, or it beats."""
    run = cfg.state.run
    proc = pidfiles.read(run.supervisor_lock)
    if proc is None:
        return None
    try:
        beat = heartbeat.pulse(run.supervisor_beat, "supervisor", since=proc.create_time())
    except psutil.Error:
        return None
    return (proc, beat) if beat.stale else None


def end_frozen(proc: psutil.Process) -> None:
    """Kill a frozen supervisor and its process group (its zygote: the runners then save their state and stop, and
    its sandboxed runs die with it); wait until it is gone and its lock free."""
    try:
        os.killpg(proc.pid, signal.SIGKILL) if os.getpgid(proc.pid) == proc.pid else proc.kill()
    except (ProcessLookupError, psutil.Error):
        pass
    psutil.wait_procs([proc], timeout=10)


def check_names(cfg: Settings, names: list[str]) -> list[str]:
    known = cfg.agents.names
    for name in names:
        if name not in known:
            raise NotFound(f"no agent named {name!r} ({did_you_mean(name, known)}expected one of: {known[0]} ... "
                           f"{known[-1]})")
    return names


def start_daemon(cfg: Config, config_path: str, only: list[str] | None = None,
                 backend: str | None = None) -> tuple[Running, bool]:
    """Start the supervisor in its own session and wait until it is ready (its pid file appears). Where another
    supervisor holds the lab (one started by other means, still starting), that one once ready; the bool says
    which: True for another's. `backend` is the one chosen for it (and agreed to, where "auto" asked): the
    supervisor takes it from its command line, and only a supervisor of Claude agents is given the API key. The
    supervisor is handed `cfg` (lab.config.handover): it validates lab.toml no more."""
    from lab.agents.backends import environment
    from lab.config import handover

    run = cfg.state.run
    run.logs.mkdir(parents=True, exist_ok=True)
    handed = handover.write(cfg)
    argv = [sys.executable, "-m", "lab.agents.supervisor", "--config", str(Path(config_path).resolve()),
            "--config-fd", str(handed)]
    if backend:
        argv += ["--backend", backend]
    if only:
        argv += ["--only", *only]
    env = environment(backend) if backend else dict(os.environ)
    log_path = run.supervisor_log
    try:
        with open(log_path, "ab") as log:
            proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                    start_new_session=True, cwd=cfg.root, env={**env, **DAEMON_ENV},
                                    pass_fds=(handed,))
    finally:
        os.close(handed)
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if proc.poll() is not None and proc.returncode == EXIT_ALREADY_SUPERVISED:
            return _wait_for_holder(cfg, deadline, log_path), True
        if proc.poll() is not None:
            raise LabError(f"the supervisor exited with code {proc.returncode}: {_last_line(log_path)} "
                           f"(see {log_path})")
        found = running(cfg)
        if found and found.pid == proc.pid:
            return found, False
        time.sleep(POLL_S)
    raise LabError(f"the supervisor did not become ready within {START_TIMEOUT_S} s (see {log_path})")


def _wait_for_holder(cfg: Settings, deadline: float, log_path: Path) -> Running:
    """The supervisor that holds the lab's lock, once it is ready."""
    while time.monotonic() < deadline:
        found = running(cfg)
        if found:
            return found
        if pidfiles.read(cfg.state.run.supervisor_lock) is None:
            raise LabError(f"another supervisor held the lab, then went away before it was ready (see {log_path}); "
                           "`lab start` again")
        time.sleep(POLL_S)
    raise LabError(f"another supervisor holds the lab but did not become ready within {START_TIMEOUT_S} s "
                   f"(see {log_path})")


def _last_line(log_path: Path) -> str:
    tail = [ln for ln in log_path.read_text(errors="replace").splitlines() if ln.strip()][-1:]
    return tail[0] if tail else "no output"


@dataclass
class Started:
    running: Running
    already_running: bool
    backend_why: str
    prepared: bool       # the testbed was built now
    count: int
    replaced: str | None = None     # why a frozen supervisor was killed first


def start_lab(cfg: Config, config_path: str, sandbox: Sandbox, names: list[str] | None = None,
              choice: Choice | None = None) -> Started:
    """Prepare what is missing (the testbed; the supervisor makes the worktrees as it starts) and start the
    supervisor, unless it already runs. One start at a time: a start while another is under way waits for it, and
    then finds the lab running. `choice` is the backend `lab start` chose (lab.agents.backends.Choice), the
    person's yes included; without one, "auto" that would spend on Claude is refused (SpendNotConfirmed)."""
    names = check_names(cfg, list(names or []))
    # said before anything is created: a missing API key, spending nobody agreed to, a model with no known price
    backend, why = (choice.backend, choice.why) if choice else (None, "")
    if backend is None and running(cfg) is None:
        backend, why = _backend(cfg)
    with StartLock(cfg.state.run):
        replaced = None
        frozen = frozen_supervisor(cfg)
        if frozen:
            proc, beat = frozen
            replaced = (f"the supervisor (pid {proc.pid}) had not beaten for {beat.age_s:.0f} s: killed it as frozen "
                        "and started a new one")
            end_frozen(proc)
        live = running(cfg)
        if live:
            return Started(live, True, why, False, 0)
        if backend is None:   # it was running a moment ago
            backend, why = _backend(cfg)
        from lab.prepare import prepare

        prepared = prepare(cfg, sandbox)
        started, another = start_daemon(cfg, config_path, names or None, backend)
    if another:
        return Started(started, True, why, prepared.rebuilt, 0, replaced)
    return Started(started, False, why, prepared.rebuilt, len(names) or cfg.agents.count, replaced)


def _backend(cfg: Config) -> tuple[str, str]:
    """The backend of a start that nobody can be asked about, and why; Claude agents' plans checked."""
    from lab.agents.backends import resolve

    backend, why = resolve(cfg.agents.backend, cfg.task.kind)
    if backend == "claude":
        from lab.agents.backends.claude.plan import plans

        plans(cfg)
    return backend, why


def lab_processes(cfg: Settings) -> list[psutil.Process]:
    """Every process of this lab still alive: supervisor, the runners' zygote and the runners (by their pid files)."""
    return pidfiles.lab_processes(cfg.state.run)


def stop_lab(cfg: Settings, db: sqlite_utils.Database) -> list[int]:
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
            time.sleep(POLL_S)
    killed = []
    left = lab_processes(cfg)
    for proc in left:   # all at once, then one wait for all of them
        try:
            os.killpg(proc.pid, signal.SIGKILL) if os.getpgid(proc.pid) == proc.pid else proc.kill()
            killed.append(proc.pid)
        except (ProcessLookupError, psutil.Error):
            pass
    if left:
        psutil.wait_procs(left, timeout=5)
    for row in agents.all_agents(db):
        if row["state"] in agents.LIVE:   # left so by a supervisor that was killed
            agents.set_state(db, row["name"], "stopped", "the lab was stopped", pid=None)
    cfg.state.run.supervisor_pid.unlink(missing_ok=True)
    disk_quota.unmount_lab(cfg)    # where the supervisor could not (it was killed): its processes are gone now
    return killed


def runner_pids(cfg: Settings, names: Sequence[str]) -> list[int]:
    """The agents' live runner processes (read before a stop, to wait for them after it)."""
    return [proc.pid for proc in pidfiles.runners(cfg.state.run, names).values()]


def wait_for_states(db: Database, names: Sequence[str], want: tuple[str, ...], timeout: float,
                    gone: Sequence[int] = ()) -> dict[str, str]:
    """Wait until each agent reaches one of the wanted states and every process of `gone` has ended (or the
    timeout); their states then. The supervisor reaps a runner it stopped only once it has recorded why, so
    after `gone` the record is the supervisor's, not the runner's own last word."""
    deadline = time.monotonic() + timeout
    states = {}
    while time.monotonic() < deadline:
        states = {n: agents.get(db, n)["state"] for n in names}
        if all(s in want for s in states.values()) and not any(psutil.pid_exists(pid) for pid in gone):
            break
        time.sleep(0.1)
    return {n: agents.get(db, n)["state"] for n in names}


def _rounded(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds, 1)


def best_by_agent(db: Database) -> dict[str, float]:
    return {agent: points[-1][1] for agent, points in submissions.best_over_time(db, exclude=()).items()
            if agent != "lab"}


MEASURED_TTL_S = 30.0     # a measured disk's walk is kept this long: the TUI reads the status every second
_measured: dict[Path, tuple[float, int, bool]] = {}


def disk_use(cfg: Settings, names: list[str], budget_s: float = 0.2) -> dict[str, dict | None]:
    """Each agent's disk: bytes used (a lower bound where a measuring walk ran out of time), its quota and what holds
    it; None where quotas are off. A loop-mounted disk's use is one statvfs; a measured one's is a walk of at most
    budget_s, reused for MEASURED_TTL_S."""
    if cfg.agents.disk_quota == "off":
        return {name: None for name in names}
    found: dict[str, dict | None] = {}
    for name in names:
        disk = disk_quota.disk_of(cfg, name)
        if disk.mode == "measured" and cfg.agents.disk_quota == "auto" and disk.image.exists():
            disk = disk_quota.disk_of(cfg, name, "loop")     # a stopped lab: its disk's image says what it holds
        kept = _measured.get(disk.worktree) if disk.mode == "measured" else None
        if kept is not None and time.monotonic() - kept[0] < MEASURED_TTL_S:
            used, complete = kept[1], kept[2]
        else:
            used, complete = disk.used_bytes(budget_s)
            if disk.mode == "measured":
                _measured[disk.worktree] = (time.monotonic(), used, complete)
        found[name] = {"used_mb": round(used / 2**20, 1), "quota_mb": disk.quota_mb, "mode": disk.mode,
                       "complete": complete}
    return found


def status(cfg: Settings, db: Database, now: float | None = None) -> dict:
    from lab.agents import spend

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
                     "model": row.get("model"), "effort": row.get("effort"), "started": row["started"],
                     "direction": row["direction"], "step": row["step"], "slice": row["slice"], "pid": row["pid"],
                     "uptime_s": round(uptime, 1), "restarts": row["restarts"], "tokens": row["tokens_in"] + row["tokens_out"],
                     "dollars": round(row["dollars"], 4), "experiments": row["experiments"],
                     "scorer_queries": row["scorer_queries"], "best_pgr": best.get(row["name"])})
    disks = disk_use(cfg, [row["name"] for row in rows])
    for row in rows:
        row["disk"] = disks[row["name"]]
    rates = spend.hourly(db, rows, now)
    for row in rows:
        row["dollars_per_hour"] = round(rates.get(row["name"], 0.0), 4)
        row["dollars_left"] = spend.left(cfg.budget.agent.dollars, row["dollars"])
    agent_best = [v for k, v in best.items() if k not in ("person", "baseline")]
    totals = agents.totals(db)
    return {"running": bool(live), "supervisor_pid": live.pid if live else None,
            "scorer": live.scorer_url if live else None, "agents": rows,
            # seconds since the supervisor's loop and the scorer's queue last went round, and what is stale
            "heartbeats": {"supervisor_s": _rounded(live.beat.age_s), "scorer_queue_s": _rounded(live.scorer_beat.age_s),
                           "stale_after_s": heartbeat.STALE_AFTER_S} if live else None,
            "warnings": live.warnings if live else [], "silent": live.silent if live else [],
            # the scorer's GPU queue as it last wrote it; None without GPUs or a running lab
            "gpus": read_queue(cfg.run_dir, since=live.started) if live else None,
            # where method runs execute: the engine's nodes, runs in flight per node, runs queued
            "cluster": read_cluster(cfg.run_dir, since=live.started) if live else None,
            "lab": {"best_pgr": max(agent_best) if agent_best else None, "dollars": round(totals["dollars"], 4),
                    "dollars_per_hour": round(sum(rates.values()), 4), "dollars_budget": cfg.budget.lab.dollars,
                    "dollars_left": spend.left(cfg.budget.lab.dollars, totals["dollars"]),
                    "agent_dollars_budget": cfg.budget.agent.dollars,
                    "tokens": totals["tokens_in"] + totals["tokens_out"], "experiments": totals["experiments"],
                    "forum_posts": forum.count(db),
                    "submissions": db.execute("SELECT count(*) FROM submissions WHERE agent NOT IN "
                                              "('person', 'baseline')").fetchone()[0]}}
