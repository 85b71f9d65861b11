"""lab.toml validated once: the cache of validated settings that read-only commands use instead of pydantic.

A hit must hold exactly what validation gave; anything else (an edited file, another path, a damaged or foreign
cache) must be a miss, after which the file is validated as before. Real files, real `lab` processes.
"""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from conftest import run_lab, write_config
from lab import config
from lab.config import cache as config_cache
from test_cli_imports import loaded_by

HF_EXAMPLE = Path(__file__).parents[1] / "examples" / "qwen3-4b-chat.toml"


def same(model, record, where: str = "cfg") -> None:
    """Every setting of the validated model equals the record's, section by section."""
    assert record.model_fields_set == model.model_fields_set, where
    for name in type(model).model_fields:
        mine, theirs = getattr(model, name), getattr(record, name)
        if hasattr(type(mine), "model_fields"):
            same(mine, theirs, f"{where}.{name}")
        elif isinstance(mine, dict) and mine and hasattr(type(next(iter(mine.values()))), "model_fields"):
            assert list(mine) == list(theirs), f"{where}.{name}"
            for key in mine:
                same(mine[key], theirs[key], f"{where}.{name}.{key}")
        else:
            assert mine == theirs and type(mine) is type(theirs), f"{where}.{name}: {mine!r} != {theirs!r}"


def remembered(folder: Path, text: str | None = None) -> tuple:
    path = folder / "lab.toml"
    if text is not None:
        path.write_text(text)
    (folder / ".lab").mkdir(exist_ok=True)
    cfg = config.load(path, remember=True)
    return cfg, config_cache.load(path)


@pytest.mark.parametrize("text", [
    None,   # the tests' small lab
    "[scorer]\ntimeout_s = 30\n",                       # the old wall-clock limit alone: no CPU limit
    "[scorer]\ntimeout_s = 30\nrun_cpu_s = 20\n",
    '[lab]\nstate_dir = "state"\n[agents]\ncount = 3\ndirections = ["one", "two"]\n',
], ids=["small", "legacy-timeout", "cpu-and-timeout", "state-dir-and-agents"])
def test_a_hit_holds_what_validation_gave(tmp_path, text):
    if text is None:
        write_config(tmp_path)
    else:
        (tmp_path / "lab.toml").write_text(text)
    state = tmp_path / ("state" if text and "state_dir" in text else ".lab")
    state.mkdir()
    cfg = config.load(tmp_path / "lab.toml", remember=True)
    record = config_cache.load(tmp_path / "lab.toml")
    assert record is not None
    same(cfg, record)
    for derived in ("state_dir", "run_dir", "sandboxes_dir"):
        assert getattr(record, derived) == getattr(cfg, derived)
    assert record.state_dir == state.resolve()
    assert record.agents.names == cfg.agents.names
    assert [record.agents.direction(i) for i in range(5)] == [cfg.agents.direction(i) for i in range(5)]
    assert record.task.datasets == cfg.task.datasets
    assert (record.scorer.cpu_limit_s, record.scorer.wall_limit_s) == (cfg.scorer.cpu_limit_s, cfg.scorer.wall_limit_s)


def test_the_hf_example_round_trips(tmp_path):
    cfg, record = remembered(tmp_path, HF_EXAMPLE.read_text())
    same(cfg, record)
    assert record.task.hf.datasets["chat"].shape == cfg.task.hf.datasets["chat"].shape


def test_settings_are_read_only(tmp_path):
    write_config(tmp_path)
    _, record = remembered(tmp_path)
    with pytest.raises(AttributeError):
        record.agents.count = 99


def test_an_edited_file_misses_until_the_lab_validates_it_again(tmp_path):
    write_config(tmp_path)
    remembered(tmp_path)
    path = tmp_path / "lab.toml"
    path.write_text(path.read_text() + "\n[agents]\ncount = 2\n")
    assert config_cache.load(path) is None
    cfg = config.load(path, remember=True)
    assert config_cache.load(path).agents.names == cfg.agents.names == ["agent-1", "agent-2"]


def test_the_same_file_at_another_path_misses(tmp_path):
    write_config(tmp_path)
    remembered(tmp_path)
    other = tmp_path / "other.toml"
    other.write_bytes((tmp_path / "lab.toml").read_bytes())
    assert config_cache.load(other) is None


@pytest.mark.parametrize("damage", [
    lambda doc: b"",
    lambda doc: doc[: len(doc) // 2],
    lambda doc: b"\xff\xfe not json",
    lambda doc: json.dumps([1, 2]).encode(),
    lambda doc: json.dumps({**json.loads(doc), "key": "0" * 64}).encode(),
    lambda doc: json.dumps({"key": json.loads(doc)["key"], "config": {"model": ["Config", [], []]}}).encode(),
    lambda doc: json.dumps({"key": json.loads(doc)["key"], "config": {"list": [1]}}).encode(),
    lambda doc: json.dumps({"key": json.loads(doc)["key"], "config": {"pickle": "x"}}).encode(),
    # well formed, but its state folder is not the one it was found in
    lambda doc: doc.replace(b'"state_dir": ".lab"', b'"state_dir": "elsewhere"'),
], ids=["empty", "truncated", "binary", "a-list", "another-key", "fields-not-a-dict", "not-a-config",
        "unknown-tag", "another-state-dir"])
def test_a_bad_cache_is_a_miss(tmp_path, damage):
    write_config(tmp_path)
    remembered(tmp_path)
    cache = tmp_path / ".lab" / "cache" / "config.json"
    cache.write_bytes(damage(cache.read_bytes()))
    assert config_cache.load(tmp_path / "lab.toml") is None


def test_nothing_is_remembered_without_a_state_folder_and_nothing_is_left_behind(tmp_path):
    write_config(tmp_path)
    config.load(tmp_path / "lab.toml", remember=True)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["lab.toml"]
    (tmp_path / ".lab").mkdir()
    config.load(tmp_path / "lab.toml", remember=True)
    assert sorted(p.name for p in (tmp_path / ".lab" / "cache").iterdir()) == ["config.json"]


def test_a_read_only_command_uses_the_cache_and_loads_neither_pydantic_nor_sqlite_utils(tmp_path):
    write_config(tmp_path)
    run_lab("forum", "post", "a finding", cwd=tmp_path, check=True)
    config.load(tmp_path / "lab.toml", remember=True)     # as the supervisor does as it starts
    for args in (["status"], ["forum"], ["score"], ["forum", "read", "1"]):
        code, loaded = loaded_by(args, tmp_path, also=["pydantic", "sqlite_utils"])
        assert code in (0, None) and loaded == [], args


def test_a_read_only_command_with_a_bad_cache_still_answers_and_reports_bad_config(tmp_path):
    write_config(tmp_path)
    run_lab("forum", "post", "a finding", cwd=tmp_path, check=True)
    config.load(tmp_path / "lab.toml", remember=True)
    cache = tmp_path / ".lab" / "cache" / "config.json"
    cache.write_text("{")
    done = run_lab("forum", cwd=tmp_path, check=True)
    assert "a finding" in done.stdout
    assert cache.read_text() == "{"          # a read-only command never writes it
    (tmp_path / "lab.toml").write_text((tmp_path / "lab.toml").read_text() + "\n[agents]\ncount = 0\n")
    done = run_lab("status", cwd=tmp_path)
    assert done.returncode == 2 and "agents.count: input should be greater than or equal to 1" in done.stderr
