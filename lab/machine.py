"""The workstation's load: CPU, memory, and each GPU's utilisation and memory where there are GPUs."""
from __future__ import annotations

import shutil
import subprocess
import threading
import time
from dataclasses import dataclass, field

import psutil


@dataclass(frozen=True)
class GpuLoad:
    index: int
    name: str
    utilisation: float | None     # percent; None where the driver does not say (MIG instances)
    memory_used_mb: float
    memory_total_mb: float


@dataclass(frozen=True)
class Load:
    cpu_percent: float
    cpus: int
    memory_used_mb: float
    memory_total_mb: float
    gpus: list[GpuLoad] = field(default_factory=list)


def gpu_load(timeout: float = 5.0) -> list[GpuLoad]:
    """Each GPU as nvidia-smi reports it; empty where there is no nvidia-smi or it fails."""
    smi = shutil.which("nvidia-smi")
    if not smi:
        return []
    try:
        out = subprocess.run([smi, "--query-gpu=index,name,utilization.gpu,memory.used,memory.total",
                              "--format=csv,noheader,nounits"], capture_output=True, text=True, timeout=timeout,
                             check=True).stdout
    except (OSError, subprocess.SubprocessError):
        return []
    return parse_gpu_csv(out)


def _number(text: str) -> float | None:
    try:
        return float(text)
    except ValueError:   # "[N/A]" on MIG instances and some passive cards
        return None


def parse_gpu_csv(text: str) -> list[GpuLoad]:
    gpus = []
    for line in text.splitlines():
        parts = [p.strip() for p in line.split(",")]
        if len(parts) != 5 or not parts[0].isdigit():
            continue
        used, total = _number(parts[3]), _number(parts[4])
        if used is not None and total is not None:
            gpus.append(GpuLoad(int(parts[0]), parts[1], _number(parts[2]), used, total))
    return gpus


class CpuMeter:
    """The machine's busy CPU, as a percent of all its cores, averaged between two readings.

    psutil.cpu_percent keeps its previous sample per thread (psutil 6 on), so a reader in a fresh worker thread,
    like each of the TUI's reads, gets 0. Here the previous sample is shared, whichever thread reads."""

    def __init__(self, min_span_s: float = 0.1):
        self.min_span_s = min_span_s          # the shortest span a reading averages over (a first one waits)
        self._lock = threading.Lock()
        self._last: tuple[float, tuple[float, float]] | None = None

    @staticmethod
    def _busy_total() -> tuple[float, float]:
        t = psutil.cpu_times()
        total = sum(t) - getattr(t, "guest", 0.0) - getattr(t, "guest_nice", 0.0)  # guest time is counted in user
        return total - t.idle - getattr(t, "iowait", 0.0), total

    def sample(self) -> None:
        """Start the span that the next reading averages over."""
        with self._lock:
            self._last = (time.monotonic(), self._busy_total())

    def percent(self) -> float:
        with self._lock:
            if self._last is None:
                self._last = (time.monotonic(), self._busy_total())
            wait = self._last[0] + self.min_span_s - time.monotonic()
        if wait > 0:
            time.sleep(wait)
        with self._lock:
            (busy0, total0), now = self._last[1], self._busy_total()
            self._last = (time.monotonic(), now)
        span = now[1] - total0
        return 0.0 if span <= 0 else round(min(100.0, max(0.0, (now[0] - busy0) / span * 100)), 1)


CPU = CpuMeter()


def prime_cpu() -> None:
    """Take the first CPU sample now (say, while a screen starts), so that the first reading shows the real load."""
    CPU.sample()


def read_load(with_gpus: bool = True) -> Load:
    """The load now; CPU is the average since the previous reading (from any thread), over at least 0.1 s."""
    mem = psutil.virtual_memory()
    return Load(CPU.percent(), psutil.cpu_count() or 1, (mem.total - mem.available) / 2**20,
                mem.total / 2**20, gpu_load() if with_gpus else [])
