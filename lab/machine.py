"""The workstation's load: CPU, memory, and each GPU's utilisation and memory where there are GPUs."""
from __future__ import annotations

import shutil
import subprocess
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


def read_load(with_gpus: bool = True) -> Load:
    """The load now; CPU is the average since the previous call (the first call reads 0)."""
    mem = psutil.virtual_memory()
    return Load(psutil.cpu_percent(interval=None), psutil.cpu_count() or 1, (mem.total - mem.available) / 2**20,
                mem.total / 2**20, gpu_load() if with_gpus else [])
