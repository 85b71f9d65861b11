"""Resource slices: GPUs dealt round-robin, CPU cores shared out."""
from __future__ import annotations

import os

from lab import config
from lab.sandbox.slices import Slice, plan


def test_gpus_from_the_config_are_dealt_round_robin(tmp_path):
    cfg = config.parse({"slices": {"gpus": ["0", "1", "MIG-abc"]}}, root=tmp_path)
    slices = plan(cfg, 9)
    assert [s.gpu for s in slices] == ["0", "1", "MIG-abc"] * 3
    assert slices[0].label.startswith("gpu 0, cpu ")


def test_cpu_slices_share_out_the_cores(tmp_path):
    cores = sorted(os.sched_getaffinity(0))
    cfg = config.parse({}, root=tmp_path)
    slices = plan(cfg, 9)
    assert all(s.gpu is None for s in slices) or os.path.exists("/dev/nvidia0")
    used = sorted({c for s in slices for c in s.cpus})
    assert used == cores[: len(used)] and len(used) >= min(len(cores), 9) - (len(cores) % 9 if len(cores) > 9 else 0)
    assert all(s.threads == len(s.cpus) >= 1 for s in slices)
    assert Slice.from_dict(slices[0].to_dict()) == slices[0]


def test_cores_per_agent_from_the_config(tmp_path):
    cfg = config.parse({"slices": {"cpus_per_agent": 1, "gpus": ["0"]}}, root=tmp_path)
    slices = plan(cfg, 3)
    assert all(len(s.cpus) == 1 for s in slices) and Slice((0, 1, 2, 5), "0").label == "gpu 0, cpu 0-2,5"


def test_agents_sharing_a_gpu_split_its_memory_keeping_a_share_for_the_scorer(tmp_path):
    from lab import config
    from lab.sandbox.slices import Slice, plan

    cfg = config.parse({"slices": {"gpus": ["0", "1"]}}, root=tmp_path)
    slices = plan(cfg, 9)
    assert [s.gpu for s in slices] == ["0", "1"] * 4 + ["0"]
    assert {s.gpu: s.gpu_memory_fraction for s in slices} == {"0": round(1 / 6, 4), "1": round(1 / 5, 4)}
    assert Slice.from_dict(slices[0].to_dict()) == slices[0]
