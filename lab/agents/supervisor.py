"""The supervisor daemon: owns the scorer service and the agents' processes.

It starts one runner per agent on its slice, restarts a crashed one with backoff (recording why
it died) and gives up after agents.max_restarts crashes; it takes the person's start, stop and
restart commands from the database; on SIGTERM it stops every agent at once (a running tool call
gets agents.grace_s, then its process group is killed), then the scorer, then itself.

It holds the config `lab start` validated and handed it (lab.config.handover), or, started by hand, validates
lab.toml itself; it hands the same config to the runners' zygote, whose runners inherit it: lab.toml is validated
once per start, and every process of a lab holds the same settings, however lab.toml changes while it runs.

Before anything else it takes the lab's supervisor lock (lab/agents/locks.py), held until it exits:
a second supervisor on the same state folder leaves at once with EXIT_ALREADY_SUPERVISED. Then it
moves itself, and so the runners it starts, below the person's tools in CPU priority, and starts
the runners' zygote (lab/agents/zygote.py), which forks each runner with its imports done, while it
makes the agents' worktrees in the background and sees the runners of a previous supervisor gone.
"""
from __future__ import annotations

import argparse
import json
import logging
import os
import select
import signal
import sqlite3
import subprocess
import sys
import time
from concurrent.futures import Future
from dataclasses import dataclass
from pathlib import Path

import psutil

from lab import config as configs
from lab.agents import pidfiles, worktrees
from lab.agents.backends import choose, resolve
from lab.agents.backends.claude.plan import plans as claude_plans
from lab.agents.locks import EXIT_ALREADY_SUPERVISED, AlreadySupervised, take_supervisor_lock
from lab.agents.runner import EXIT_DISK_FULL, EXIT_NEEDS_PERSON
from lab.agents.zygote import Forked, Zygote, ZygoteFailed
from lab.config import cache as config_cache
from lab.config import handover
from lab.config.schema import Config
from lab.disk_full import is_transient
from lab.errors import LabError, SandboxError
from lab.heartbeat import Heartbeat
from lab.logfiles import log_to
from lab.sandbox import disk_quota, make_sandbox
from lab.sandbox.cgroups import lower_own_priority
from lab.scaffold.prune import Pruner
from lab.scorer import auth, engines
from lab.sandbox.slices import Slice, plan
from lab.scorer.scorer import Scorer
from lab.scorer.service import ScorerService
from lab.store import agents, commands, events, open_db
from lab.task.testbed import Testbed
from lab.threads import DAEMON_ENV

POLL_S = 0.5
MAX_BACKOFF_S = 60.0
HEALTHY_RUN_S = 120.0   # a runner that ran this long before it died starts its crash count afresh
PREVIOUS_RUNNER_SLACK_S = 2.0   # past agents.grace_s, a previous supervisor's runner still alive is killed


@dataclass
class Child:
    name: str
    proc: Forked | None = None
    restart_at: float | None = None     # when a crashed agent comes back
    crashes: int = 0                     # in a row: a long healthy run resets it
    started_at: float = 0.0
    stop_reason: str | None = None       # set when we asked it to stop: then an exit is not a crash
    stop_deadline: float | None = None


class Supervisor:
    def __init__(self, config_path: str, only: list[str] | None = None, backend: str | None = None,
                 cfg: Config | None = None):
        """`cfg`: lab.toml at `config_path` as `lab start` validated it; without it, it is validated here."""
        self.config_path = str(Path(config_path).resolve())
        self.cfg = cfg if cfg is not None else configs.load(self.config_path)
        config_cache.remember(Path(self.config_path), self.cfg)   # for read-only commands
        self.files = self.cfg.state.run
        self.lock = take_supervisor_lock(self.files)   # kept open, so held, until this process ends
        self.heart = Heartbeat(self.files.supervisor_beat)   # beaten by every round of the main loop and in its waits
        self.heart.beat()
        log_to(self.files.supervisor_log)   # timestamped and rotating; stdout and stderr follow it
        self.files.supervisor_pid.unlink(missing_ok=True)   # a dead supervisor's, since we hold the lab now
        self.db = open_db(self.cfg.state.db)
        self.files.logs.mkdir(parents=True, exist_ok=True)
        self.sandbox = make_sandbox(self.cfg.lab.sandbox, warn=self.log)
        try:
            self.log(f"the lab's daemons run below the person's tools: {lower_own_priority(self.sandbox.cgroups)}")
        except SandboxError as exc:
            self.log(f"warning: the lab's daemons keep the person's CPU priority: {exc}")
        if backend:   # chosen by `lab start`, which asked where "auto" would spend on Claude
            self.backend, why = choose(backend, self.cfg.task.kind).backend, f"backend {backend}, as `lab start` chose"
        else:         # started by hand: "auto" that would spend on Claude is refused
            self.backend, why = resolve(self.cfg.agents.backend, self.cfg.task.kind)
        self.log(why)
        self.claude = {p.agent: p for p in claude_plans(self.cfg)} if self.backend == "claude" else {}
        for agent_plan in self.claude.values():
            self.log(f"{agent_plan.agent}: {agent_plan.describe()}")
        # It dies with us (and so, by their own death signal, do the runners it forked); it imports while we go on.
        self.zygote = Zygote(self.cfg, self.config_path, self.backend, tick=self.heart.beat)
        self.zygote.start()
        names = self.cfg.agents.names
        self.slices = dict(zip(names, plan(self.cfg, len(names))))
        self.children = {n: Child(n) for n in names}
        self.initial = only or names
        try:
            self.disk_mode, disk_warning = disk_quota.resolve_mode(self.cfg.agents.disk_quota)
        except LabError as exc:   # "loop" asked for where it cannot be: each agent fails with this reason
            self.disk_mode, disk_warning = "loop", str(exc)
        if disk_warning:
            self.log(f"warning: {disk_warning}")
        self.log(f"agents' disk quotas: {self.cfg.agents.disk_mb} MB each, {self.disk_mode}")
        self.worktrees: dict[str, Future] = worktrees.start_making(self.cfg, self.initial, self.disk_mode,
                                                                            warn=self.log)
        self.pruner = Pruner(self.cfg, log=self.log)
        self.stopping = False
        self.scorer: ScorerService | None = None
        self.previous_deadline = 0.0

    def log(self, line: str) -> None:
        logging.getLogger("lab.supervisor").info(line)

    def record(self, write, *args, **kwargs) -> None:
        """One of the supervisor's records of the agents. Where the state disk is full (or a write lock is held past
        SQLite's timeout) it is left out, and the log says so: the agents' processes go on all the same."""
        try:
            write(*args, **kwargs)
        except (sqlite3.DatabaseError, OSError) as exc:
            if not is_transient(exc):
                raise
            self.log(f"not recorded ({write.__module__.rsplit('.', 1)[-1]}.{write.__name__}): {exc}")

    # ---- lifecycle -----------------------------------------------------------------------------
    def run(self) -> None:
        # a signal also writes to this pipe, so the loop's wait ends at once, not at its next poll
        wake_read, wake_write = os.pipe()
        os.set_blocking(wake_write, False)
        signal.set_wakeup_fd(wake_write)
        signal.signal(signal.SIGTERM, lambda *_: setattr(self, "stopping", True))
        signal.signal(signal.SIGINT, lambda *_: setattr(self, "stopping", True))
        previous = self.previous_runners()
        testbed = Testbed.load(self.cfg)
        self.heart.beat()
        engine = engines.shared(self.cfg, self.sandbox)    # here, in the main thread: Ray connects once, now
        engine.publish()
        self.heart.beat()
        self.log(f"method runs on the {engine.name} engine")
        self.scorer = ScorerService(self.cfg, lambda db: Scorer(self.cfg, db, self.sandbox, testbed, progress=False))
        self.scorer.start_in_thread()
        self.files.scorer_url.write_text(self.scorer.url + "\n")
        self.log(f"scorer listening on {self.scorer.url}")
        for i, name in enumerate(self.cfg.agents.names):
            claude = self.claude.get(name)
            agents.ensure(self.db, name, self.backend, self.cfg.agents.direction(i), self.slices[name].label,
                          model=claude.model if claude else None, effort=claude.effort if claude else None)
        for name in self.initial:
            self.await_previous(previous.get(name))
            self.start(name)
            self.heart.beat()
        pidfiles.write_own(self.files.supervisor_pid)   # written last: its presence means "ready"
        self.log(f"supervisor {os.getpid()} ready with {len(self.initial)} agents")
        try:
            while not self.stopping:
                self.heart.beat()
                try:
                    self.zygote.pump()    # news of runners that ended, or of the zygote's own end
                    self.reap()
                    self.take_commands()
                    self.restart_due()
                    self.pruner.start_if_due()
                except (sqlite3.DatabaseError, OSError) as exc:   # a full state disk is no reason to stop the lab
                    if not is_transient(exc):
                        raise
                    self.log(f"a storage error, retried at the next look: {exc}")
                # a runner's end wakes us, through the zygote
                watched: list[int | Zygote] = [wake_read] if self.zygote.gone else [wake_read, self.zygote]
                if not self.stopping and wake_read in select.select(watched, [], [], POLL_S)[0]:
                    os.read(wake_read, 512)
        finally:
            self.shutdown()

    def shutdown(self) -> None:
        self.log("stopping every agent")
        live = [c for c in self.children.values() if c.proc and c.proc.poll() is None]
        for child in live:
            self.ask_to_stop(child, "the lab was stopped (`lab stop`)")
        self.wait_for(live)
        for child in self.children.values():
            if child.restart_at is not None:
                self.record(agents.set_state, self.db, child.name, "stopped", "the lab was stopped while it waited to restart")
        if self.scorer:
            self.scorer.stop()
        self.zygote.close()
        self.pruner.wait()
        try:
            unmounted = disk_quota.unmount_lab(self.cfg)
            if unmounted:
                self.log(f"unmounted the disks of {', '.join(unmounted)}")
        except LabError as exc:
            self.log(f"warning: {exc}")
        self.files.scorer_url.unlink(missing_ok=True)
        self.files.supervisor_pid.unlink(missing_ok=True)
        self.heart.stop()
        self.log("supervisor stopped")

    # ---- agents --------------------------------------------------------------------------------
    def start(self, name: str) -> None:
        child = self.children[name]
        if child.proc and child.proc.poll() is None:
            return
        making = self.worktrees.pop(name, None)
        try:
            self.beating_until(making) if making else worktrees.ensure(self.cfg, name, self.disk_mode, self.log)
        except LabError as exc:    # WorktreeMissing, or a sandbox that cannot run
            self.record(agents.set_state, self.db, name, "failed", str(exc))
            return
        slice_: Slice = self.slices[name]
        scorer = self.running_scorer()
        args = ["--config", self.config_path, "--agent", name, "--backend", self.backend, "--scorer", scorer.url,
                "--slice", json.dumps(slice_.to_dict())]
        env = {**os.environ, **DAEMON_ENV}    # the runner's own work; its sandboxed commands get the slice's threads
        if slice_.gpu is not None:
            env["CUDA_VISIBLE_DEVICES"] = slice_.gpu
        env[auth.TOKEN_ENV] = auth.token_for(scorer.key, name)   # its own; the runner takes it out at once
        # The runner's session is its own, so its own autogroup, lowered like ours (it inherits our cgroup and
        # nice); it gets SIGTERM when the zygote dies, which dies with us (even by kill -9): it saves its state.
        try:
            child.proc = self.zygote.spawn(args, env, str(self.files.agent_log(name)),
                                           title=[sys.executable, "-m", "lab.agents.runner", *args[:4]])
        except ZygoteFailed as exc:
            self.log(f"{name} could not start: {exc}")
            child.started_at = time.monotonic()
            self.crashed(child, str(exc))
            return
        child.restart_at, child.stop_reason, child.stop_deadline = None, None, None
        child.started_at = time.monotonic()
        self.record(agents.set_state, self.db, name, "starting", None, pid=child.proc.pid, started=time.time())
        self.record(events.record, self.db, name, "state", f"started (pid {child.proc.pid}, {slice_.label})")
        self.log(f"{name} started, pid {child.proc.pid}, {slice_.label}")

    def beating_until(self, future: Future) -> None:
        """The future's result, beating while it is not there yet."""
        while True:
            try:
                return future.result(timeout=POLL_S)
            except TimeoutError:
                self.heart.beat()

    def previous_runners(self) -> dict[str, psutil.Process]:
        """The runners a previous supervisor of this lab left behind (it was killed): the death of its zygote sent
        each SIGTERM, so they are saving their state and stopping; each is asked again here, in case one was not.
        Found by their pid files, not the agents' records: a stopping runner clears its pid there before it exits."""
        found = {}
        for name, proc in pidfiles.runners(self.files, list(self.children)).items():
            try:
                proc.send_signal(signal.SIGTERM)
            except psutil.Error:
                continue
            found[name] = proc
        self.previous_deadline = time.monotonic() + self.cfg.agents.grace_s + PREVIOUS_RUNNER_SLACK_S
        return found

    def await_previous(self, proc: psutil.Process | None) -> None:
        """Wait, as long as a stop's grace lasts, for a previous runner of the agent to end, then kill its group: two
        runners of one agent would share its worktree and its record."""
        if proc is None:
            return
        if not _ended_by(proc, self.previous_deadline, self.heart.beat):
            self.log(f"a runner of the previous supervisor (pid {proc.pid}) did not stop in time: killing it")
            try:
                os.killpg(proc.pid, signal.SIGKILL) if os.getpgid(proc.pid) == proc.pid else proc.kill()
            except (OSError, psutil.Error):
                pass
            _ended_by(proc, time.monotonic() + PREVIOUS_RUNNER_SLACK_S, self.heart.beat)

    def running_scorer(self) -> ScorerService:
        if self.scorer is None:
            raise LabError("the scorer service has not started: no runner can start before it")
        return self.scorer

    def ask_to_stop(self, child: Child, reason: str) -> None:
        if child.proc and child.proc.poll() is None:
            child.stop_reason = reason
            child.stop_deadline = time.monotonic() + self.cfg.agents.grace_s + 5
            self.record(agents.set_state, self.db, child.name, "stopping", reason)
            os.kill(child.proc.pid, signal.SIGTERM)
        child.restart_at = None

    def wait_for(self, children: list[Child]) -> None:
        """Wait for children asked to stop (each until its own deadline, so all in the time of the slowest)."""
        for child in children:
            if child.proc is not None and \
                    not _exited(child.proc, child.stop_deadline or time.monotonic(), self.heart.beat):
                self.kill(child)
            self.reap_one(child)

    def kill(self, child: Child) -> None:
        if child.proc is None:
            return
        self.log(f"{child.name} did not stop within the grace period: killing its process group")
        try:
            os.killpg(child.proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass

    def reap(self) -> None:
        for child in self.children.values():
            if child.proc is None:
                continue
            if child.proc.poll() is None:
                if child.stop_deadline and time.monotonic() > child.stop_deadline:
                    self.kill(child)
                else:
                    continue
            self.reap_one(child)

    def reap_one(self, child: Child) -> None:
        proc, child.proc = child.proc, None
        if proc is None:
            return
        if child.stop_reason:
            self.record(agents.set_state, self.db, child.name, "stopped", child.stop_reason, pid=None)
            # reaped only now: whoever asked for the stop waits for the process to be gone, then reads this record
            proc.wait()
            self.log(f"{child.name} stopped: {child.stop_reason}")
            return
        code = proc.wait()
        row = agents.get(self.db, child.name)
        if code == 0 or code == EXIT_NEEDS_PERSON:
            self.log(f"{child.name} ended: {row['state']}: {row['reason']}")
            return
        # a full state disk is not the agent's crash: it starts again at the first backoff, however often
        self.crashed(child, _exit_reason(code, self.files.agent_log(child.name)), counts=code != EXIT_DISK_FULL)

    def crashed(self, child: Child, why: str, counts: bool = True) -> None:
        """Restart the agent after a backoff that doubles with each crash in a row, or give up after max_restarts;
        a crash that does not count toward those starts the count afresh."""
        row = agents.get(self.db, child.name)
        if not counts or time.monotonic() - child.started_at >= HEALTHY_RUN_S:
            child.crashes = 0   # crashes far apart (a killed runner now and then) are not a crash loop
        child.crashes += 1
        self.record(agents.update, self.db, child.name, restarts=(row["restarts"] or 0) + 1)
        if child.crashes > self.cfg.agents.max_restarts:
            self.record(agents.set_state, self.db, child.name, "failed",
                        f"gave up after {child.crashes} crashes; last: {why}", pid=None)
            self.record(events.record, self.db, child.name, "error", f"gave up after {child.crashes} crashes: {why}")
            self.log(f"{child.name} failed: {why}")
            return
        delay = min(MAX_BACKOFF_S, self.cfg.agents.restart_backoff_s * 2 ** (child.crashes - 1))
        child.restart_at = time.monotonic() + delay
        self.record(agents.set_state, self.db, child.name, "crashed", f"{why}; restarting in {delay:g} s", pid=None)
        self.record(events.record, self.db, child.name, "error",
                    f"crashed: {why}; restart {child.crashes} in {delay:g} s")
        self.log(f"{child.name} crashed ({why}); restart {child.crashes} in {delay:g} s")

    def restart_due(self) -> None:
        now = time.monotonic()
        for child in self.children.values():
            if child.restart_at is not None and now >= child.restart_at and not self.stopping:
                self.start(child.name)

    def take_commands(self) -> None:
        try:
            taken = commands.take(self.db, commands.SUPERVISOR)
        except (sqlite3.DatabaseError, OSError) as exc:
            if not is_transient(exc):
                raise
            return     # they wait in the database for a later look
        for command in taken:
            child = self.children.get(command["body"])
            if child is None:
                continue
            if command["kind"] in ("stop_agent", "restart_agent"):
                self.ask_to_stop(child, f"stopped by {command['author']}")
                if child.proc:
                    self.wait_for([child])
            if command["kind"] in ("start_agent", "restart_agent"):
                child.crashes = 0
                self.start(child.name)


def _ended_by(proc: psutil.Process, deadline: float, tick) -> bool:
    """Whether a process that is not our child ended by the deadline (a zombie has ended: its parent reaps it)."""
    while True:
        tick()
        try:
            if proc.status() == psutil.STATUS_ZOMBIE:
                return True
        except psutil.Error:
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.05)


def _exited(proc: Forked, deadline: float, tick) -> bool:
    """Whether proc ended by the deadline (reap_one then records it)."""
    while True:
        tick()
        try:
            proc.wait(timeout=min(POLL_S, max(0.0, deadline - time.monotonic())))
            return True
        except subprocess.TimeoutExpired:
            if time.monotonic() >= deadline:
                return False


def _exit_reason(code: int, log: Path) -> str:
    what = f"killed by {signal.Signals(-code).name}" if code < 0 else f"exit code {code}"
    try:
        with log.open("rb") as f:
            f.seek(max(0, log.stat().st_size - 4000))
            lines = [ln for ln in f.read().decode(errors="replace").splitlines() if ln.strip()]
    except OSError:
        lines = []
    return f"{what}: {lines[-1][:200]}" if lines and code > 0 else what


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--config", required=True)
    parser.add_argument("--only", nargs="*", help="start only these agents (others can be started later)")
    parser.add_argument("--backend", help="the backend `lab start` chose (and the person agreed to)")
    parser.add_argument("--config-fd", type=int, help="lab.toml as `lab start` validated it (lab.config.handover)")
    args = parser.parse_args(argv)
    try:
        cfg = handover.read(args.config_fd) if args.config_fd is not None else None
        supervisor = Supervisor(args.config, args.only, args.backend, cfg)
    except AlreadySupervised as exc:   # said on stdout, which `lab start` points at the supervisor's log
        print(f"{time.strftime('%Y-%m-%d %H:%M:%S')} {exc}", flush=True)
        return EXIT_ALREADY_SUPERVISED
    except LabError as exc:   # one line, the last of its log, which `lab start` shows
        print(f"{time.strftime('%Y-%m-%d %H:%M:%S')} error: {exc}", flush=True)
        return 2
    supervisor.run()
    # Leave at once: a submission still being scored would hold the exit until it ends; its sandboxed
    # runs die with this process (they were started with PR_SET_PDEATHSIG).
    sys.stdout.flush()
    os._exit(0)


if __name__ == "__main__":
    sys.exit(main())
