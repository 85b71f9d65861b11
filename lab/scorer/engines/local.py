"""The local engine: method runs on this machine. The scorer's runs go `parallel` at a time, shared round-robin by
tenant (lab/scorer/fair_slots.py), each tenant's under one CPU weight. Each run holds a slot of the GPU queue
(lab/scorer/gpus.py) where the machine has GPUs, so that the scorer's runs and the agents' `run`s share one
first-come-first-served queue and never oversubscribe a GPU."""
from __future__ import annotations

import os
import socket
import threading
from concurrent.futures import ThreadPoolExecutor
from contextlib import nullcontext
from pathlib import Path
from typing import Any, Callable

from lab.sandbox import Sandbox, make_sandbox
from lab.sandbox.users import SCORER
from lab.scorer import gpus
from lab.scorer.fair_slots import FairSlots
from lab.scorer.engines.base import TICK_S, Done, MethodJob, RunSpec, StopOn, Tick, Tracker
from lab.scorer.runner import MethodRun, MethodRunner
from lab.state_layout import RunFolder

NODE = "local"


class LocalEngine:
    name = "local"

    def __init__(self, scheduler: gpus.GpuScheduler, scratch: Path, parallel: int, sandbox_kind: str,
                 run_dir: Path | None = None):
        self.gpus, self.scratch, self.parallel, self.sandbox_kind = scheduler, Path(scratch), parallel, sandbox_kind
        self.tracker = Tracker("local", RunFolder(Path(run_dir)).cluster if run_dir else None)
        self.slots = FairSlots(parallel)
        self._sandboxes: dict[str, Sandbox] = {}
        self._lock = threading.Lock()

    def sandbox(self, user: str) -> Sandbox:
        with self._lock:
            if user not in self._sandboxes:
                self._sandboxes[user] = make_sandbox(self.sandbox_kind, warn=lambda line: None, user=user)
            return self._sandboxes[user]

    def use_sandbox(self, sandbox: Sandbox) -> None:
        """Run `sandbox.user`'s runs in this one (the scorer's, made by whoever built the Scorer)."""
        with self._lock:
            self._sandboxes[sandbox.user] = sandbox

    def run(self, spec: RunSpec, jobs: list[MethodJob], done: Done | None = None,
            tick: Tick | None = None, stop_on: StopOn | None = None) -> list[MethodRun]:
        runner = MethodRunner(self.sandbox(spec.user), spec.limits, self.scratch, binds=list(spec.binds),
                              forbidden=[Path(p) for p in spec.forbidden])
        self._change(queued=len(jobs))
        stop = threading.Event()

        def one(job: MethodJob) -> MethodRun | None:
            label = f"{spec.owner} {job.label} seed {job.seed}"
            if stop.is_set():
                self._change(queued=-1)
                return None
            with self._share(spec), self.gpus.slot(label) as env:
                self._change(queued=-1, start=label)
                try:
                    if stop.is_set():
                        return None
                    run = runner.run(spec.root, spec.entry, job.view, job.seed, job.label, env=env, args=job.args,
                                     keep_predictions=spec.keep_predictions, cancel=stop, cpu_group=spec.tenant)
                finally:
                    self._change(end=label)
            if stop_on is not None and not stop.is_set() and stop_on(run):
                stop.set()        # the runs in flight end at once, and no other job starts
            return run

        runs = []
        try:
            with ThreadPoolExecutor(min(self.parallel, max(1, len(jobs)))) as pool:
                for future in [pool.submit(one, job) for job in jobs]:
                    while True:
                        try:
                            run = future.result(timeout=TICK_S)
                            break
                        except TimeoutError:
                            if tick:
                                tick()
                    if run is None:
                        continue
                    runs.append(run)
                    if done:
                        done(run)
        finally:
            self._change(force=True)
        return runs

    def _share(self, spec: RunSpec):
        """The scorer's runs take a fair run slot (lab/scorer/fair_slots.py); an agent's own `run`s, in its
        sandbox under its own low CPU weight, take none."""
        return self.slots.slot(spec.tenant) if spec.user == SCORER else nullcontext()

    def call_here(self, fn: Callable[..., Any], *args: Any, gpu: bool = False) -> Any:
        return fn(*args)     # this machine is here; `lab init` runs before anything else holds its GPUs

    def snapshot(self) -> dict:
        with self._lock:
            return {"engine": "local", "queued": self.tracker.queued, "finished": self.tracker.finished,
                    "retried": 0, "nodes": self._nodes()}

    def publish(self) -> None:
        self._change(force=True)

    # ---- the published view ---------------------------------------------------------------------
    def _nodes(self) -> list[dict]:
        return [{"id": NODE, "address": socket.gethostname(), "alive": True, "cpus": os.cpu_count() or 1,
                 "gpus": len(self.gpus.gpus), "running": list(self.tracker.running.get(NODE, []))}]

    def _change(self, queued: int = 0, start: str | None = None, end: str | None = None, force: bool = False) -> None:
        with self._lock:
            t = self.tracker
            t.queued = max(0, t.queued + queued)
            if start is not None:
                t.running.setdefault(NODE, []).append(start)
            if end is not None:
                t.running[NODE].remove(end)
                t.finished += 1
            t.publish(self._nodes(), force=force)
