"""The configurations in examples/ are valid lab.toml files of the current schema: no key that is gone or renamed,
and the GPU settings a person needs set where the example runs on GPUs."""
from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

from lab import config

EXAMPLES = sorted((Path(__file__).resolve().parents[1] / "examples").rglob("*.toml"))
# Keys the schema still reads for old files, which an example must not teach: (section, key) -> the key to use
LEGACY = {("scorer", "timeout_s"): "scorer.run_wall_s", ("scorer", "shuffle_seeds"): "scorer.check_seeds"}


def test_there_are_examples():
    assert {p.name for p in EXAMPLES} >= {"qwen3-4b-chat.toml"}


@pytest.mark.parametrize("example", EXAMPLES, ids=[p.parent.name + "/" + p.name for p in EXAMPLES])
def test_each_example_loads_with_no_legacy_key(example):
    cfg = config.load(example)
    data = tomllib.loads(example.read_text())
    for (section, key), instead in LEGACY.items():
        assert key not in data.get(section, {}), f"{example.name}: {section}.{key} is legacy; use {instead}"
    if cfg.task.kind == "hf":       # fine-tunes that share GPUs: the person decides how many fit in one
        assert "runs_per_gpu" in data.get("scorer", {}), f"{example.name}: set scorer.runs_per_gpu"
