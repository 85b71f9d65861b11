"""Where method runs execute: this machine (`local`, with the GPU queue of lab/scorer/gpus.py) or a Ray
cluster (`ray`), as `[cluster] engine` says.

Every method run of the lab goes through the process's one engine: a submission's seeds, held-out sets and
second-teacher runs, `lab score --baselines`, the ceilings of `lab init`, and an agent's `run` tool.
Wherever it places a run, the engine runs the method in the same sandbox under the same limits, and gives
back only what the method produced: predictions, logs and resource figures.
"""
from __future__ import annotations

import threading
from pathlib import Path
from typing import TYPE_CHECKING

from lab.sandbox import Sandbox
from lab.scorer import gpus
from lab.scorer.engines.base import Engine, MethodJob, RunSpec, read_cluster
from lab.scorer.engines.local import LocalEngine

if TYPE_CHECKING:
    from lab.settings import Settings

__all__ = ["Engine", "MethodJob", "RunSpec", "read_cluster", "shared"]

_shared: dict[tuple, tuple[Engine, LocalEngine]] = {}     # the engine, and the local one (a Ray engine's fallback)
_lock = threading.Lock()


def _local(cfg: Settings) -> LocalEngine:
    # Agents' slices keep one share of each GPU's memory for the lab's runs; those split that share.
    found = list(cfg.slices.gpus) or list(gpus.machine_gpus())
    per_gpu = -(-cfg.agents.count // len(found)) if found else 0
    run = cfg.state.run
    scheduler = gpus.shared_scheduler(run.root, found, cfg.scorer.runs_per_gpu,
                                      round(1 / ((per_gpu + 1) * cfg.scorer.runs_per_gpu), 4) if found else None)
    return LocalEngine(scheduler, run.method_runs, cfg.scorer.parallel, cfg.lab.sandbox, run.root)


def shared(cfg: Settings, sandbox: Sandbox | None = None) -> Engine:
    """The process's engine for this lab (the scorer service builds a Scorer per request; they share it).
    `sandbox`: the scorer's own, for the runs of its user."""
    key = (Path(cfg.state_dir), cfg.cluster.engine, cfg.cluster.address, cfg.scorer.parallel,
           cfg.scorer.runs_per_gpu, cfg.lab.sandbox, tuple(cfg.slices.gpus), cfg.agents.count)
    with _lock:
        found = _shared.get(key)
        if found is None:
            local = _local(cfg)
            engine: Engine = local
            if cfg.cluster.engine == "ray":
                from lab.scorer.engines.ray_engine import RayEngine

                engine = RayEngine(cfg.cluster, cfg.lab.sandbox, cfg.scorer.runs_per_gpu, cfg.state_dir, local)
            found = _shared[key] = (engine, local)
    engine, local = found
    if sandbox is not None:
        local.use_sandbox(sandbox)
    return engine
