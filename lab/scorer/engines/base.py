"""The engine seam: one batch of method runs in, one MethodRun per job out, wherever they ran."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Protocol

from lab.sandbox import Bind, Limits
from lab.scorer.cluster_view import Tracker, read_cluster  # noqa: F401 - re-exported
from lab.scorer.runner import MethodRun


@dataclass(frozen=True)
class MethodJob:
    label: str          # what the run is for: a set, or a set with the second teacher (teacher_check.SECOND)
    view: Path          # the data folder the method reads, on this machine
    seed: int
    args: tuple[str, ...] = ()


@dataclass(frozen=True)
class RunSpec:
    """What every run of one batch shares: the method, whose sandbox runs it, and under which limits."""
    root: Path                          # a clean copy of the method's code
    entry: str                          # the method file, relative to root
    user: str                           # whose sandbox and uid: "scorer" or an agent's name
    owner: str                          # how queues name the batch (agent and commit)
    limits: Limits
    tenant: str = "lab"                 # whose share of the scorer it uses: the agent, or the lab's own
    binds: tuple[Bind, ...] = ()        # read-only folders every run sees at their own paths (hf models)
    forbidden: tuple[str, ...] = ()     # the lab's folders whose denials are violations
    keep_predictions: bool = False      # the predictions file comes back too (an agent's `run`)
    private: bool = False               # its views carry labels (the ceilings): they never leave this machine
    gpu: bool = False                   # each run asks Ray for a GPU share, 1/runs_per_gpu (the hf kind's methods);
                                        # the local engine queues every run on the machine's GPUs, if it has any


Done = Callable[[MethodRun], None]
Tick = Callable[[], None]
StopOn = Callable[[MethodRun], bool]     # true for a run that makes the rest of its batch pointless
TICK_S = 1.0     # while runs go on, `tick` is called at least this often: the scorer queue's heartbeat


class Engine(Protocol):
    name: str            # "local" or "ray"

    def run(self, spec: RunSpec, jobs: list[MethodJob], done: Done | None = None,
            tick: Tick | None = None, stop_on: StopOn | None = None) -> list[MethodRun]:
        """Every job's run, in the order of jobs; `done` is called as each finishes (progress bars), `tick` every
        TICK_S while they run (the waiting thread's heartbeat). Once a run ends for which `stop_on` is true, the
        batch stops: runs in flight are cancelled and jobs not started never run, and only the runs that ended
        come back (still in the order of their jobs)."""

    def call_here(self, fn: Callable[..., Any], *args: Any, gpu: bool = False) -> Any:
        """fn(*args) on this machine, holding a GPU share where `gpu` and the machine has GPUs: work whose
        inputs carry labels (an hf teacher's seed). Arguments are paths and numbers, never the labels."""

    def snapshot(self) -> dict:
        """The cluster as people see it: nodes, their CPUs and GPUs, runs in flight per node, runs queued."""

    def publish(self) -> None:
        """Write the snapshot to <state>/run/cluster.json now (it is also written as runs start and end)."""
