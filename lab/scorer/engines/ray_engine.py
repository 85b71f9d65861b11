"""The Ray engine: every method run a Ray task, placed by Ray's scheduler on any node with the CPUs (and the GPU
share, 1/runs_per_gpu) it asks for, and run there in the same sandbox under the same limits as on the head.

The method's code travels as one object per batch and the views' files content-addressed (shipping.py); a
node that dies under a run has it retried elsewhere by Ray (`max_retries`), and each run says on which node
and at which attempt it finished. Batches whose inputs carry labels (the ceilings of `lab init`) are tasks
pinned to the head's own node, reading their files in place, so labels never enter the object store; where
the lab is a Ray Client (`ray://`) and has no node of its own, they run on this machine through the local
engine instead.
"""
from __future__ import annotations

import itertools
import os
import re
import sys
import threading
import time
import uuid
from pathlib import Path
from typing import Any, Callable

from lab.errors import ConfigError, LabError
from lab.sandbox import RunResult
from lab.scorer.engines.base import TICK_S, Done, MethodJob, RunSpec, StopOn, Tick, Tracker
from lab.scorer.engines.local import LocalEngine
from lab.scorer.engines.node import run_on_node
from lab.scorer.engines.shipping import Shipper, pack_code
from lab.scorer.runner import MethodRun
from lab.state_layout import StateLayout

LOOPBACK = ("127.0.0.1", "localhost", "::1")
PUBLISH_EVERY_S = 2.0


class ClusterUnavailable(LabError):
    """The Ray cluster that lab.toml names cannot be reached."""


def import_ray():
    try:
        import ray
    except ImportError:
        raise ConfigError('[cluster] engine = "ray" needs Ray, which is not installed: run '
                          "pip install -e '.[ray]' (or set engine = \"local\")") from None
    return ray


def keep_loopback(address: str) -> None:
    """Ray swaps a loopback address for the machine's own before it connects; a lab told 127.0.0.1 stays on it.
    (Ray reads the switch when it is imported: set before the first import.)"""
    host = address.removeprefix("ray://").rsplit(":", 1)[0].strip("[]")
    if host in LOOPBACK:
        os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")


def token_auth_in_use() -> bool:
    """Whether this process's connection to Ray carries Ray's token (RAY_AUTH_MODE=token, or a token Ray found and
    turned on by itself). A cluster that asks for a token refuses a driver without one, so a connection that stands
    without one means the cluster takes anyone who reaches its ports."""
    try:
        # in Ray since 2.52, but not in the type stub of its compiled module
        from ray._raylet import AuthenticationMode, get_authentication_mode  # type: ignore[attr-defined]
    except ImportError:     # a Ray from before token authentication (2.52)
        return os.environ.get("RAY_AUTH_MODE", "").strip().lower() == "token"
    return get_authentication_mode() == AuthenticationMode.TOKEN


def unauthenticated_warning(address: str, token_in_use: bool) -> str | None:
    """The one line the lab says when it uses a cluster without token authentication; None when it has it."""
    if token_in_use:
        return None
    return (f"warning: the Ray cluster at {address} runs without token authentication: anyone who reaches its ports "
            "can run code on every node; set RAY_AUTH_MODE=token on every node and for the lab (docs/cluster.md)")


def _where(traceback_text: str | None) -> str:
    """' at FILE:LINE in FUNCTION' of a remote traceback's innermost frame, so that a failure on a node can be told
    from another without the node's logs; '' where the traceback names no frame."""
    frames = re.findall(r'File "([^"]+)", line (\d+), in (\S+)', traceback_text or "")
    if not frames:
        return ""
    path, line, function = frames[-1]
    return f" at {Path(path).name}:{line} in {function}"


def _to_stderr(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


class RunBoard:
    """A small actor on the head that hears on which node each run started (runs in flight per node)."""

    def __init__(self):
        self.where: dict[int, str] = {}

    def started(self, key: int, node: str) -> None:
        self.where[key] = node

    def nodes_of(self, keys: list[int]) -> dict[int, str | None]:
        for gone in set(self.where) - set(keys):
            del self.where[gone]
        return {k: self.where.get(k) for k in keys}


class RayEngine:
    name = "ray"

    def __init__(self, cluster, sandbox_kind: str, runs_per_gpu: int, state_dir: Path, fallback: LocalEngine,
                 warn: Callable[[str], None] = _to_stderr):
        keep_loopback(cluster.address)
        self.ray = ray = import_ray()
        self.address, self.sandbox_kind, self.runs_per_gpu = cluster.address, sandbox_kind, runs_per_gpu
        self.cache_base, self.max_retries = cluster.node_cache, cluster.max_retries
        self.fallback = fallback
        if not ray.is_initialized():
            try:
                ray.init(address=cluster.address, namespace="lab", log_to_driver=False, logging_level="WARNING",
                         configure_logging=True)
            except (ConnectionError, RuntimeError, ValueError) as exc:
                raise ClusterUnavailable(f"cannot reach the Ray cluster at {cluster.address!r}: {exc} (start one "
                                         "with `ray start --head`, or set [cluster] address)") from None
        warning = unauthenticated_warning(cluster.address, token_auth_in_use())
        if warning:
            warn(warning)
        self.client = cluster.address.startswith("ray://")
        self.head = None if self.client else ray.get_runtime_context().get_node_id()
        self.task = ray.remote(run_on_node)
        self.shipper = Shipper(ray.put, cluster.object_cache_mb * 1024 * 1024, state_dir)
        self.board_name = f"lab-run-board-{uuid.uuid4().hex[:12]}"
        options = {"name": self.board_name, "num_cpus": 0}
        if self.head is not None:
            options["scheduling_strategy"] = self._on_head()
        self.board = ray.remote(RunBoard).options(**options).remote()
        self.tracker = Tracker("ray", StateLayout(Path(state_dir)).run.cluster, address=cluster.address)
        self.in_flight: dict[int, str] = {}       # run key -> label
        self._keys = itertools.count()
        self._lock = threading.Lock()
        self._closed = threading.Event()
        threading.Thread(target=self._publish_loop, daemon=True, name="cluster-view").start()

    def _on_head(self) -> Any:
        from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

        assert self.head is not None    # asked only where the driver's node is known (not through ray://)
        return NodeAffinitySchedulingStrategy(self.head, soft=False)

    # ---- runs ------------------------------------------------------------------------------------
    def run(self, spec: RunSpec, jobs: list[MethodJob], done: Done | None = None,
            tick: Tick | None = None, stop_on: StopOn | None = None) -> list[MethodRun]:
        ray = self.ray
        if spec.private and self.head is None:
            return self.fallback.run(spec, jobs, done, tick, stop_on)
        gpus = spec.gpu and ray.cluster_resources().get("GPU", 0) > 0
        options: dict[str, Any] = {"num_cpus": spec.limits.threads, "max_retries": self.max_retries,
                                   "num_gpus": 1 / self.runs_per_gpu if gpus else 0}
        fraction = 1 / self.runs_per_gpu if gpus else None
        if spec.private:
            options["scheduling_strategy"] = self._on_head()
        code = None if spec.private else ray.put(pack_code(spec.root))
        manifests: dict[Path, Any] = {}
        refs = {}
        for index, job in enumerate(jobs):
            manifest = None
            if not spec.private:
                manifest = manifests.get(job.view) or manifests.setdefault(job.view, self.shipper.view(job.view))
            key, label = next(self._keys), f"{spec.owner} {job.label} seed {job.seed}"
            ref = self.task.options(**options).remote(spec, code, manifest, job, self.sandbox_kind, self.cache_base,
                                                      fraction, (self.board_name, key))
            refs[ref] = (index, key, job)
            with self._lock:
                self.in_flight[key] = label
        results: list[MethodRun | None] = [None] * len(jobs)
        pending = list(refs)
        self._publish(force=True)
        try:
            while pending:
                ready, pending = ray.wait(pending, num_returns=1, timeout=TICK_S)
                if tick:
                    tick()
                for ref in ready:
                    index, key, job = refs[ref]
                    run = results[index] = self._outcome(ref, job)
                    with self._lock:
                        self.in_flight.pop(key, None)
                        self.tracker.finished += 1
                        self.tracker.retried += max(0, run.attempts - 1)
                    if done:
                        done(run)
                    if stop_on is not None and stop_on(run):
                        pending = []     # the rest is cancelled below
                        break
                self._publish()
        finally:
            with self._lock:
                for _, key, _ in refs.values():
                    self.in_flight.pop(key, None)
            for ref in refs:
                if results[refs[ref][0]] is None:
                    ray.cancel(ref, force=True)
            self._publish(force=True)
        return [run for run in results if run is not None]

    def _outcome(self, ref, job: MethodJob) -> MethodRun:
        exceptions = self.ray.exceptions
        try:
            return self.ray.get(ref)
        except exceptions.RayTaskError as exc:      # the lab's own code failed on the node (e.g. no bwrap there)
            cause = exc.cause if exc.cause is not None else exc
            why = (f"the run failed on its node{_where(exc.traceback_str)}: {type(cause).__name__}: "
                   f"{str(cause).strip().splitlines()[-1][:300]}")
        except exceptions.RayError as exc:          # the node or worker died past every retry, or Ray failed
            why = f"the cluster lost this run after {self.max_retries + 1} attempts: {type(exc).__name__}"
        result = RunResult(returncode=None, timed_out=False, duration_s=0.0, stderr=why)
        return MethodRun(job.label, job.seed, result, error=why, node="?", attempts=self.max_retries + 1)

    def call_here(self, fn: Callable[..., Any], *args: Any, gpu: bool = False) -> Any:
        if self.head is None:
            return fn(*args)
        share = 1 / self.runs_per_gpu if gpu and self.ray.cluster_resources().get("GPU", 0) else 0
        task = self.ray.remote(fn).options(num_cpus=1, num_gpus=share, scheduling_strategy=self._on_head(),
                                           max_retries=self.max_retries)
        return self.ray.get(task.remote(*args))

    # ---- the view --------------------------------------------------------------------------------
    def snapshot(self) -> dict:
        ray = self.ray
        with self._lock:
            keys, labels = list(self.in_flight), dict(self.in_flight)
        where = ray.get(self.board.nodes_of.remote(keys), timeout=10) if keys else {}
        running: dict[str, list[str]] = {}
        for key in keys:
            if where.get(key):
                running.setdefault(where[key], []).append(labels[key])
        nodes = []
        for node in ray.nodes():
            resources = node.get("Resources") or {}
            nodes.append({"id": node["NodeID"], "address": node.get("NodeManagerAddress"), "alive": bool(node["Alive"]),
                          "head": node["NodeID"] == self.head, "cpus": resources.get("CPU", 0),
                          "gpus": resources.get("GPU", 0), "running": running.get(node["NodeID"], [])})
        started = sum(len(r) for r in running.values())
        return {"engine": "ray", "address": self.address, "queued": len(keys) - started,
                "finished": self.tracker.finished, "retried": self.tracker.retried, "nodes": nodes}

    def _publish(self, force: bool = False) -> None:
        if not force and time.time() - self.tracker._published < 0.5:
            return
        try:
            view = self.snapshot()
        except self.ray.exceptions.RayError:
            return      # the view waits for the cluster; runs do not
        with self._lock:
            self.tracker.queued = view["queued"]
            self.tracker.running = {n["id"]: n["running"] for n in view["nodes"]}
            self.tracker.publish([{k: v for k, v in n.items() if k != "running"} for n in view["nodes"]], force=True)

    def publish(self) -> None:
        self._publish(force=True)

    def _publish_loop(self) -> None:
        while not self._closed.wait(PUBLISH_EVERY_S):
            self._publish(force=True)

    def close(self) -> None:
        self._closed.set()
