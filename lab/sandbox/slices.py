"""Resource slices: which GPU (or MIG instance) and which CPU cores each agent gets.

On a GPU machine, agents are dealt GPUs round-robin (several may share one); the GPU list comes
from lab.toml or from `nvidia-smi -L`. Cores are always shared out, so that nine agents on a
small machine do not all pile onto the same core.
"""
from __future__ import annotations

import os
import re
import shutil
import subprocess
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from lab.settings import Settings


@dataclass(frozen=True)
class Slice:
    cpus: tuple[int, ...]
    gpu: str | None = None
    # the share of the GPU's memory each of this agent's processes may take (torch's per-process
    # memory fraction): 1 / (agents on that GPU + 1), one share being kept for the scorer's runs
    gpu_memory_fraction: float | None = None

    @property
    def threads(self) -> int:
        return len(self.cpus)

    @property
    def label(self) -> str:
        cpus = _ranges(self.cpus)
        return f"gpu {self.gpu}, cpu {cpus}" if self.gpu is not None else f"cpu {cpus}"

    def to_dict(self) -> dict:
        return {"cpus": list(self.cpus), "gpu": self.gpu, "gpu_memory_fraction": self.gpu_memory_fraction}

    @classmethod
    def from_dict(cls, data: dict) -> "Slice":
        return cls(tuple(data["cpus"]), data.get("gpu"), data.get("gpu_memory_fraction"))


def _ranges(cpus: tuple[int, ...]) -> str:
    parts, start = [], None
    for i, c in enumerate(cpus):
        if start is None:
            start = c
        if i + 1 == len(cpus) or cpus[i + 1] != c + 1:
            parts.append(str(start) if start == c else f"{start}-{c}")
            start = None
    return ",".join(parts)


def detect_gpus() -> list[str]:
    """GPU indices, or MIG UUIDs where a GPU is split into MIG instances; [] without nvidia-smi."""
    if not shutil.which("nvidia-smi"):
        return []
    try:
        listing = subprocess.run(["nvidia-smi", "-L"], capture_output=True, text=True, timeout=20).stdout
    except (OSError, subprocess.TimeoutExpired):
        return []
    found: list[str] = []
    for line in listing.splitlines():
        gpu = re.match(r"GPU (\d+):", line.strip())
        mig = re.search(r"\(UUID: (MIG-[^)]+)\)", line)
        if gpu:
            found.append(gpu.group(1))
        elif mig:
            if found and not found[-1].startswith("MIG-"):
                found.pop()  # a GPU split into MIG instances is used through its instances
            found.append(mig.group(1))
    return found


def plan(cfg: Settings, count: int) -> list[Slice]:
    cores = sorted(os.sched_getaffinity(0))
    per = cfg.slices.cpus_per_agent or max(1, len(cores) // count)
    groups = [tuple(cores[i:i + per]) for i in range(0, len(cores) - per + 1, per)] or [tuple(cores)]
    gpus = list(cfg.slices.gpus) or detect_gpus()
    chosen = [gpus[i % len(gpus)] if gpus else None for i in range(count)]
    return [Slice(groups[i % len(groups)], gpu, round(1 / (chosen.count(gpu) + 1), 4) if gpu is not None else None)
            for i, gpu in enumerate(chosen)]
