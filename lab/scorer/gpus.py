"""One queue for the GPUs that the scorer's method runs share, so that submissions never oversubscribe them.

Every method run asks for a slot: `with scheduler.slot("agent-3 dev seed 2") as env:` blocks until a GPU has
one free (at most `runs_per_gpu` runs on a GPU at once), first come first served across every waiter, and
gives the environment for that run: the GPU as CUDA_VISIBLE_DEVICES and the share of its memory the run may
take as LAB_GPU_MEMORY_FRACTION (the method's scaffold hands it to torch.cuda.set_per_process_memory_fraction).
Waiting runs form one queue for all GPUs: the head of the queue takes whichever GPU frees a slot first.
Without GPUs a slot is free at once and hides every GPU (CUDA_VISIBLE_DEVICES=""); the scorer's
`parallel` setting alone limits CPU runs.

The live view (`snapshot()`) is also written, atomically and on every change, to `<state>/run/gpu_queue.json`,
where `lab status` and the TUI read it without talking to the scorer (`read_queue`).
"""
from __future__ import annotations

import os
import threading
import time
from collections import deque
from contextlib import contextmanager
from functools import lru_cache
from pathlib import Path
from typing import Iterator

from lab.scorer.cluster_view import read_view, write_view
from lab.state_layout import RunFolder

VISIBLE = "CUDA_VISIBLE_DEVICES"
FRACTION = "LAB_GPU_MEMORY_FRACTION"


def memory_share(runs_per_gpu: int, memory_fraction: float | None) -> float:
    """Each run's share of its GPU's memory: as given, else an even split between the GPU's slots."""
    return 1.0 / runs_per_gpu if memory_fraction is None else float(memory_fraction)


class _Ticket:
    """One run: waiting, then running on a GPU. Labels need not be unique; tickets are."""

    __slots__ = ("label", "gpu")

    def __init__(self, label: str):
        self.label = label
        self.gpu: str | None = None


class GpuScheduler:
    def __init__(self, gpus: list[str], runs_per_gpu: int = 1, memory_fraction: float | None = None,
                 state_file: Path | None = None):
        if runs_per_gpu < 1:
            raise ValueError(f"runs_per_gpu must be at least 1, not {runs_per_gpu}")
        fraction = memory_share(runs_per_gpu, memory_fraction)
        if not 0 < fraction <= 1:
            raise ValueError(f"memory_fraction must be in (0, 1], not {memory_fraction}")
        if len(set(gpus)) != len(gpus):
            raise ValueError(f"a GPU is listed twice: {gpus}")
        self.gpus = [str(g) for g in gpus]
        self.runs_per_gpu, self.memory_fraction = runs_per_gpu, fraction
        self.state_file = Path(state_file) if state_file else None
        self.publish_error: str | None = None     # the last failure to write the file (it is only a view)
        self._cond = threading.Condition()
        self._running: dict[str, list[_Ticket]] = {g: [] for g in self.gpus}
        self._waiting: deque[_Ticket] = deque()
        self._finished = 0
        with self._cond:
            self._publish()

    # ---- the queue -----------------------------------------------------------------------------
    @contextmanager
    def slot(self, label: str) -> Iterator[dict[str, str]]:
        """Wait for a GPU slot (FIFO), hold it for the `with` block, and give the run's environment."""
        if not self.gpus:
            yield {VISIBLE: ""}
            return
        ticket, gpu = self._admit(label)
        try:
            yield {VISIBLE: gpu, FRACTION: f"{self.memory_fraction:g}"}
        finally:
            with self._cond:
                self._running[gpu].remove(ticket)
                self._finished += 1
                self._publish()
                self._cond.notify_all()

    def _admit(self, label: str) -> tuple[_Ticket, str]:
        """The run's ticket, once it holds a slot, and the slot's GPU."""
        ticket = _Ticket(label)
        with self._cond:
            self._waiting.append(ticket)
            self._publish()
            try:
                while True:
                    gpu = self._free_gpu() if self._waiting[0] is ticket else None
                    if gpu is not None:
                        break
                    self._cond.wait()
            except BaseException:      # interrupted while waiting: leave the queue, let the next one through
                self._waiting.remove(ticket)
                self._publish()
                self._cond.notify_all()
                raise
            self._waiting.popleft()
            ticket.gpu = gpu
            self._running[gpu].append(ticket)
            self._publish()
            self._cond.notify_all()    # the new head may fit on another GPU's free slot
        return ticket, gpu

    def _free_gpu(self) -> str | None:
        """The least busy GPU with a free slot (the first listed among equals), or None."""
        free = [g for g in self.gpus if len(self._running[g]) < self.runs_per_gpu]
        return min(free, key=lambda g: len(self._running[g])) if free else None

    # ---- the view ------------------------------------------------------------------------------
    def snapshot(self) -> dict:
        with self._cond:
            return self._snapshot()

    def _snapshot(self) -> dict:
        waiting = [t.label for t in self._waiting]
        running = sum(len(r) for r in self._running.values())
        return {"updated": time.time(), "pid": os.getpid(), "runs_per_gpu": self.runs_per_gpu,
                "memory_fraction": self.memory_fraction,
                # every waiting run can take any GPU, so each GPU's queue is the one shared queue
                "gpus": {g: {"running": [t.label for t in self._running[g]], "slots": self.runs_per_gpu,
                             "queue": len(waiting)} for g in self.gpus},
                "waiting": waiting,
                "totals": {"gpus": len(self.gpus), "slots": len(self.gpus) * self.runs_per_gpu,
                           "running": running, "waiting": len(waiting), "finished": self._finished}}

    def _publish(self) -> None:
        """Write the snapshot atomically (a temporary file renamed over the old one); called under the lock."""
        if self.state_file is None or not self.gpus:
            return
        try:
            write_view(self.state_file, self._snapshot())
            self.publish_error = None
        except OSError as exc:   # the file is a view for people; a full disk must not stop scoring
            self.publish_error = f"could not write {self.state_file}: {exc}"


def read_queue(run_dir: Path, since: float | None) -> dict | None:
    """The GPU queue as the scorer last wrote it (None: none, or one older than `since`)."""
    return read_view(RunFolder(Path(run_dir)).gpu_queue, "gpus", dict, since)


@lru_cache(maxsize=1)
def machine_gpus() -> tuple[str, ...]:
    """detect_gpus() once per process: the scorer is built for every request."""
    from lab.sandbox.slices import detect_gpus   # here, not above: `lab status` reads the queue without the sandbox

    return tuple(detect_gpus())


_shared: dict[Path, GpuScheduler] = {}
_shared_lock = threading.Lock()


def shared_scheduler(run_dir: Path, gpus: list[str], runs_per_gpu: int = 1,
                     memory_fraction: float | None = None) -> GpuScheduler:
    """The process's one scheduler for this lab: the service builds a Scorer per request, and every one of
    them must queue on the same GPUs. A different GPU list or setting for the same lab replaces it."""
    path = RunFolder(Path(run_dir)).gpu_queue.resolve()
    with _shared_lock:
        found = _shared.get(path)
        if (found is None or found.gpus != [str(g) for g in gpus] or found.runs_per_gpu != runs_per_gpu
                or found.memory_fraction != memory_share(runs_per_gpu, memory_fraction)):
            found = _shared[path] = GpuScheduler(gpus, runs_per_gpu, memory_fraction, state_file=path)
        return found
