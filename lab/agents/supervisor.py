"""The supervisor daemon: owns the scorer service and the agents' processes.

It starts one runner per agent on its slice, restarts a crashed one with backoff (recording why
it died) and gives up after agents.max_restarts crashes; it takes the person's start, stop and
restart commands from the database; on SIGTERM it stops every agent at once (a running tool call
gets agents.grace_s, then its process group is killed), then the scorer, then itself.

Before anything else it takes the lab's supervisor lock (lab/agents/locks.py), held until it exits:
a second supervisor on the same state folder leaves at once with EXIT_ALREADY_SUPERVISED. Then it
moves itself, and so the runners it starts, below the person's tools in CPU priority.
"""
from __future__ import annotations

import argparse
import json
import logging
import os
import select
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from lab import config as configs
from lab.agents.backends import resolve
from lab.agents.locks import EXIT_ALREADY_SUPERVISED, AlreadySupervised, take_supervisor_lock
from lab.agents.paths import Paths
from lab.errors import SandboxError
from lab.logfiles import log_to
from lab.sandbox import make_sandbox
from lab.sandbox.base import die_with_parent
from lab.sandbox.cgroups import lower_own_autogroup, lower_own_priority
from lab.sandbox.slices import Slice, plan
from lab.sandbox.workspace import Workspace, WorktreeMissing
from lab.scaffold.repo import research_repo_path
from lab.scorer.scorer import Scorer
from lab.scorer.service import ScorerService
from lab.store import agents, commands, events, open_db
from lab.task.testbed import Testbed

POLL_S = 0.5
EXIT_POLL_S = 0.02
MAX_BACKOFF_S = 60.0
HEALTHY_RUN_S = 120.0   # a runner that ran this long before it died starts its crash count afresh


@dataclass
class Child:
    name: str
    proc: subprocess.Popen | None = None
    restart_at: float | None = None     # when a crashed agent comes back
    crashes: int = 0                     # in a row: a long healthy run resets it
    started_at: float = 0.0
    stop_reason: str | None = None       # set when we asked it to stop: then an exit is not a crash
    stop_deadline: float | None = None


class Supervisor:
    def __init__(self, config_path: str, only: list[str] | None = None):
        self.config_path = str(Path(config_path).resolve())
        self.cfg = configs.load(self.config_path, remember=True)   # for read-only commands: lab.config_cache
        self.paths = Paths(self.cfg.run_dir)
        self.lock = take_supervisor_lock(self.cfg.run_dir)   # kept open, so held, until this process ends
        log_to(self.paths.run / "supervisor.log")   # timestamped and rotating; stdout and stderr follow it
        self.paths.pid.unlink(missing_ok=True)   # a dead supervisor's, since we hold the lab now
        self.db = open_db(self.cfg.state_dir / "lab.db")
        self.paths.logs.mkdir(parents=True, exist_ok=True)
        self.sandbox = make_sandbox(self.cfg.lab.sandbox, warn=self.log)
        try:
            self.log(f"the lab's daemons run below the person's tools: {lower_own_priority(self.sandbox.cgroups)}")
        except SandboxError as exc:
            self.log(f"warning: the lab's daemons keep the person's CPU priority: {exc}")
        self.backend, why = resolve(self.cfg.agents.backend, self.cfg.task.kind)
        self.log(why)
        names = self.cfg.agents.names
        self.slices = dict(zip(names, plan(self.cfg, len(names))))
        self.children = {n: Child(n) for n in names}
        self.initial = only or names
        self.stopping = False
        self.scorer: ScorerService | None = None

    def log(self, line: str) -> None:
        logging.getLogger("lab.supervisor").info(line)

    # ---- lifecycle -----------------------------------------------------------------------------
    def run(self) -> None:
        # a signal also writes to this pipe, so the loop's wait ends at once, not at its next poll
        wake_read, wake_write = os.pipe()
        os.set_blocking(wake_write, False)
        signal.set_wakeup_fd(wake_write)
        signal.signal(signal.SIGTERM, lambda *_: setattr(self, "stopping", True))
        signal.signal(signal.SIGINT, lambda *_: setattr(self, "stopping", True))
        testbed = Testbed.load(self.cfg)
        self.scorer = ScorerService(self.cfg, lambda db: Scorer(self.cfg, db, self.sandbox, testbed, progress=False))
        self.scorer.start_in_thread()
        self.paths.url.write_text(self.scorer.url + "\n")
        self.log(f"scorer listening on {self.scorer.url}")
        for i, name in enumerate(self.cfg.agents.names):
            agents.ensure(self.db, name, self.backend, self.cfg.agents.direction(i), self.slices[name].label)
        for name in self.initial:
            self.start(name)
        self.paths.pid.write_text(f"{os.getpid()}\n")   # written last: its presence means "ready"
        self.log(f"supervisor {os.getpid()} ready with {len(self.initial)} agents")
        try:
            while not self.stopping:
                self.reap()
                self.take_commands()
                self.restart_due()
                if not self.stopping and select.select([wake_read], [], [], POLL_S)[0]:
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
                agents.set_state(self.db, child.name, "stopped", "the lab was stopped while it waited to restart")
        if self.scorer:
            self.scorer.stop()
        self.paths.url.unlink(missing_ok=True)
        self.paths.pid.unlink(missing_ok=True)
        self.log("supervisor stopped")

    # ---- agents --------------------------------------------------------------------------------
    def start(self, name: str) -> None:
        child = self.children[name]
        if child.proc and child.proc.poll() is None:
            return
        try:
            Workspace.ensure(self.cfg.sandboxes_dir, research_repo_path(self.cfg.state_dir), name,
                             make_sandbox(self.cfg.lab.sandbox, warn=lambda line: None, user=name))
        except WorktreeMissing as exc:
            agents.set_state(self.db, name, "failed", str(exc))
            return
        slice_: Slice = self.slices[name]
        argv = [sys.executable, "-m", "lab.agents.runner", "--config", self.config_path, "--agent", name,
                "--backend", self.backend, "--scorer", self.scorer.url, "--slice", json.dumps(slice_.to_dict())]
        log = open(self.paths.logs / f"{name}.log", "ab")
        env = {**os.environ, "OMP_NUM_THREADS": str(slice_.threads), "MKL_NUM_THREADS": str(slice_.threads)}
        if slice_.gpu is not None:
            env["CUDA_VISIBLE_DEVICES"] = slice_.gpu
        # The runner gets SIGTERM if we die (even by kill -9), so it saves its state and stops. Its new session is
        # a new autogroup, lowered like ours (it inherits our cgroup and nice).
        child.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, env=env,
                                      start_new_session=True, preexec_fn=_runner_setup)
        log.close()
        child.restart_at, child.stop_reason, child.stop_deadline = None, None, None
        child.started_at = time.monotonic()
        agents.set_state(self.db, name, "starting", None, pid=child.proc.pid, started=time.time())
        events.record(self.db, name, "state", f"started (pid {child.proc.pid}, {slice_.label})")
        self.log(f"{name} started, pid {child.proc.pid}, {slice_.label}")

    def ask_to_stop(self, child: Child, reason: str) -> None:
        if child.proc and child.proc.poll() is None:
            child.stop_reason = reason
            child.stop_deadline = time.monotonic() + self.cfg.agents.grace_s + 5
            agents.set_state(self.db, child.name, "stopping", reason)
            os.kill(child.proc.pid, signal.SIGTERM)
        child.restart_at = None

    def wait_for(self, children: list[Child]) -> None:
        """Wait for children asked to stop (each until its own deadline, so all in the time of the slowest)."""
        for child in children:
            if not _exited(child.proc, child.stop_deadline or time.monotonic()):
                self.kill(child)
            self.reap_one(child)

    def kill(self, child: Child) -> None:
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
        if child.stop_reason:
            agents.set_state(self.db, child.name, "stopped", child.stop_reason, pid=None)
            # reaped only now: whoever asked for the stop waits for the process to be gone, then reads this record
            proc.wait()
            self.log(f"{child.name} stopped: {child.stop_reason}")
            return
        code = proc.wait()
        row = agents.get(self.db, child.name)
        if code == 0 or code == 3:
            self.log(f"{child.name} ended: {row['state']}: {row['reason']}")
            return
        if time.monotonic() - child.started_at >= HEALTHY_RUN_S:
            child.crashes = 0   # crashes far apart (a killed runner now and then) are not a crash loop
        child.crashes += 1
        why = _exit_reason(code, self.paths.logs / f"{child.name}.log")
        agents.update(self.db, child.name, restarts=(row["restarts"] or 0) + 1)
        if child.crashes > self.cfg.agents.max_restarts:
            agents.set_state(self.db, child.name, "failed", f"gave up after {child.crashes} crashes; last: {why}",
                             pid=None)
            events.record(self.db, child.name, "error", f"gave up after {child.crashes} crashes: {why}")
            self.log(f"{child.name} failed: {why}")
            return
        delay = min(MAX_BACKOFF_S, self.cfg.agents.restart_backoff_s * 2 ** (child.crashes - 1))
        child.restart_at = time.monotonic() + delay
        agents.set_state(self.db, child.name, "crashed", f"{why}; restarting in {delay:g} s", pid=None)
        events.record(self.db, child.name, "error", f"crashed: {why}; restart {child.crashes} in {delay:g} s")
        self.log(f"{child.name} crashed ({why}); restart {child.crashes} in {delay:g} s")

    def restart_due(self) -> None:
        now = time.monotonic()
        for child in self.children.values():
            if child.restart_at is not None and now >= child.restart_at and not self.stopping:
                self.start(child.name)

    def take_commands(self) -> None:
        for command in commands.take(self.db, commands.SUPERVISOR):
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


def _exited(proc: subprocess.Popen, deadline: float) -> bool:
    """Whether proc ended by the deadline; it is left unreaped (a zombie) for reap_one."""
    while True:
        try:
            if proc.returncode is not None or os.waitid(os.P_PID, proc.pid, os.WEXITED | os.WNOHANG | os.WNOWAIT):
                return True
        except ChildProcessError:
            return True    # reaped already
        if time.monotonic() >= deadline:
            return False
        time.sleep(EXIT_POLL_S)


def _runner_setup() -> None:
    """In the runner's process, before exec."""
    die_with_parent(signal.SIGTERM)
    lower_own_autogroup()


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
    args = parser.parse_args(argv)
    try:
        supervisor = Supervisor(args.config, args.only)
    except AlreadySupervised as exc:   # said on stdout, which `lab start` points at the supervisor's log
        print(f"{time.strftime('%Y-%m-%d %H:%M:%S')} {exc}", flush=True)
        return EXIT_ALREADY_SUPERVISED
    supervisor.run()
    # Leave at once: a submission still being scored would hold the exit until it ends; its sandboxed
    # runs die with this process (they were started with PR_SET_PDEATHSIG).
    sys.stdout.flush()
    os._exit(0)


if __name__ == "__main__":
    sys.exit(main())
