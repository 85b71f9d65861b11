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
    utilisation: float     # percent
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


def parse_gpu_csv(text: str) -> list[GpuLoad]:
    gpus = []
    for line in text.splitlines():
        parts = [p.strip() for p in line.split(",")]
        if len(parts) != 5:
            continue
        try:
            gpus.append(GpuLoad(int(parts[0]), parts[1], float(parts[2]), float(parts[3]), float(parts[4])))
        except ValueError:   # "[N/A]" on some MIG or passive cards
            continue
    return gpus


def read_load(with_gpus: bool = True) -> Load:
    """The load now; CPU is the average since the previous call (the first call reads 0)."""
    mem = psutil.virtual_memory()
    return Load(psutil.cpu_percent(interval=None), psutil.cpu_count() or 1, (mem.total - mem.available) / 2**20,
                mem.total / 2**20, gpu_load() if with_gpus else [])
