"""Steering from the command line: every action reaches the store and is recorded; bad input is one line."""
from __future__ import annotations

import pytest

from conftest import run_lab, write_config

from lab import config
from lab.machine import parse_gpu_csv
from lab.store import actions, commands, forum, open_db


@pytest.fixture
def folder(tmp_path):
    write_config(tmp_path)
    return tmp_path


def test_cli_actions_are_recorded_with_where_they_came_from(folder):
    run_lab("message", "agent-2", "read the held-out gap", cwd=folder, check=True)
    run_lab("pause", "agent-3", cwd=folder, check=True)
    run_lab("resume", "--all", cwd=folder, check=True)
    run_lab("forum", "post", "a finding from the person", cwd=folder, check=True)
    db = open_db(config.load(folder / "lab.toml").state_dir / "lab.db")
    recorded = list(reversed(actions.history(db)))
    assert [(a["kind"], a["via"]) for a in recorded] == [("message", "cli"), ("pause", "cli"), ("resume", "cli"),
                                                         ("post", "cli")]
    assert recorded[0]["target"] == "agent-2" and recorded[0]["detail"] == {"text": "read the held-out gap"}
    assert recorded[2]["target"].count("agent-") == 9
    assert commands.history(db, "agent-2")[-1]["body"] == "read the held-out gap"
    assert forum.recent(db, 1, author="person")[0]["title"] == "a finding from the person"


@pytest.mark.parametrize("args, says", [
    (("message", "agent-1", "   "), "a message needs some text"),
    (("score", "--disqualify", "1", "--reason", "  "), "a disqualification needs a reason"),
    (("stop", "agent-1"), "the lab is not running, so no agent is either"),
    (("message", "agent-99", "hello"), "no agent named 'agent-99'"),
])
def test_bad_steering_is_one_line_exit_2_and_records_nothing(folder, args, says):
    result = run_lab(*args, cwd=folder)
    assert result.returncode == 2, result.stderr
    assert result.stderr.count("\n") == 1 and result.stderr.startswith("lab: error: ") and says in result.stderr
    db = open_db(config.load(folder / "lab.toml").state_dir / "lab.db")
    assert actions.history(db) == [] and commands.history(db) == []


def test_gpu_load_is_read_from_nvidia_smi_csv():
    text = "0, NVIDIA H200, 87, 61440, 143771\n1, NVIDIA H200 MIG 3g.71gb, [N/A], 1024, 71680\nbad line\n"
    gpus = parse_gpu_csv(text)
    assert [(g.index, g.name, g.utilisation, g.memory_used_mb, g.memory_total_mb) for g in gpus] == \
        [(0, "NVIDIA H200", 87.0, 61440.0, 143771.0), (1, "NVIDIA H200 MIG 3g.71gb", None, 1024.0, 71680.0)]
