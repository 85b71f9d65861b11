"""The lab as a person runs it: real supervisor, real runner processes, real sandbox, git and SQLite.

The agents use the scripted backend, so every step is known; everything else is the real lab.
"""
from __future__ import annotations

import json
import os
import signal
import time

import psutil
import pytest

from conftest import lab_status, make_lab, requires_bwrap, run_lab, wait_for

pytestmark = requires_bwrap

WORK = [
    {"step": "note", "calls": [{"name": "notebook", "arguments": {"action": "append", "text": "a step"}}]},
    {"step": "work", "calls": [{"name": "shell", "arguments": {"command": "sleep 0.3; echo working"}}]},
]


def agent(folder, name: str) -> dict:
    return next(a for a in lab_status(folder)["agents"] if a["name"] == name)


def lab_pids(folder) -> list[int]:
    marker = str(folder / "lab.toml")
    return [p.pid for p in psutil.process_iter(["cmdline"])
            if marker in (p.info["cmdline"] or []) and any("lab.agents" in c for c in p.info["cmdline"])]


def transcript(folder, name: str) -> list[dict]:
    from lab.store import events, open_db

    db = open_db(folder / ".lab" / "lab.db")
    try:
        return events.transcript(db, name, limit=5000)
    finally:
        db.conn.close()


@pytest.fixture(scope="module")
def running_lab(lab_dir, tmp_path_factory):
    folder = make_lab(lab_dir, tmp_path_factory.mktemp("running"), WORK, repeat=True)
    run_lab("start", cwd=folder, check=True)
    wait_for(lambda: all(a["state"] == "running" for a in lab_status(folder)["agents"]), what="three running agents")
    yield folder
    run_lab("stop", cwd=folder)
    assert not lab_pids(folder)


def test_start_runs_agents_in_worktrees_on_slices(running_lab):
    report = lab_status(running_lab)
    assert report["running"] and len(report["agents"]) == 3
    for a in report["agents"]:
        assert a["backend"] == "scripted" and a["slice"].startswith("cpu ")
        assert (running_lab / "sandboxes" / a["name"] / ".git").is_dir()
    assert len({a["direction"] for a in report["agents"]}) == 3


def test_second_start_changes_nothing(running_lab):
    before = lab_status(running_lab)
    result = run_lab("start", cwd=running_lab, check=True)
    assert "already running" in result.stdout
    after = lab_status(running_lab)
    assert after["supervisor_pid"] == before["supervisor_pid"]
    assert [a["pid"] for a in after["agents"]] == [a["pid"] for a in before["agents"]]


def test_message_and_pause_reach_the_agent(running_lab):
    run_lab("message", "agent-1", "try the logconf loss", cwd=running_lab, check=True)
    wait_for(lambda: any(e["kind"] == "message" and "logconf" in e["summary"] for e in transcript(running_lab, "agent-1")),
             what="the message in agent-1's transcript")
    message = next(e for e in transcript(running_lab, "agent-1") if e["kind"] == "message")
    assert message["data"]["author"] == "person"
    run_lab("pause", "agent-2", cwd=running_lab, check=True)
    wait_for(lambda: agent(running_lab, "agent-2")["state"] == "paused", what="agent-2 paused")
    count = len(transcript(running_lab, "agent-2"))
    time.sleep(1.5)
    assert len(transcript(running_lab, "agent-2")) == count, "a paused agent took steps"
    run_lab("resume", "agent-2", cwd=running_lab, check=True)
    wait_for(lambda: agent(running_lab, "agent-2")["state"] == "running", what="agent-2 resumed")


def test_lab_agent_reads_a_running_agents_record(running_lab):
    """`lab agent` beside a running lab: the state the supervisor keeps, the runner's transcript, the notebook its
    tool writes, and the log file the supervisor started it on."""
    def read(*args: str) -> dict:
        return json.loads(run_lab("agent", "agent-1", *args, "--json", cwd=running_lab, check=True).stdout)

    wait_for(lambda: read("--notebook")["lines"], what="agent-1's notebook through `lab agent`")
    summary = read()
    assert summary["status"]["state"] == "running" and summary["events"] > 0
    calls = [e for e in read("--transcript", "--all")["events"] if e["kind"] == "tool_call"]
    assert {e["data"]["name"] for e in calls} >= {"notebook", "shell"}
    assert read("--notebook")["lines"][0] == "a step"
    log = read("--log")
    assert log["exists"] and log["path"] == str(running_lab / ".lab" / "run" / "logs" / "agent-1.log")


def test_killed_agent_comes_back_with_its_notebook(running_lab):
    from lab.store import agents, open_db

    db = open_db(running_lab / ".lab" / "lab.db")
    wait_for(lambda: agents.notebook(db, "agent-3"), what="a notebook entry")
    before = agent(running_lab, "agent-3")
    notes = agents.notebook(db, "agent-3")
    os.kill(before["pid"], signal.SIGKILL)
    start = time.monotonic()
    back = wait_for(lambda: (a := agent(running_lab, "agent-3"))["state"] == "running" and a["pid"] != before["pid"]
                    and a, timeout=30, what="agent-3 restarted")
    assert time.monotonic() - start < 10
    assert back["restarts"] == before["restarts"] + 1
    assert agents.notebook(db, "agent-3").startswith(notes)
    assert any(e["kind"] == "error" and "SIGKILL" in e["summary"] for e in transcript(running_lab, "agent-3"))
    db.conn.close()


def test_stop_one_agent_then_start_it_again(running_lab):
    result = run_lab("stop", "agent-2", cwd=running_lab, check=True)
    assert "agent-2: stopped" in result.stdout
    a = agent(running_lab, "agent-2")
    assert a["state"] == "stopped" and "person" in a["reason"]
    assert agent(running_lab, "agent-1")["state"] == "running"
    result = run_lab("start", "agent-2", cwd=running_lab, check=True)
    assert "agent-2: running" in result.stdout


def test_killed_supervisor_loses_nothing(running_lab):
    from lab.store import agents, open_db

    db = open_db(running_lab / ".lab" / "lab.db")
    positions = {n: agents.backend_state(db, n)["position"] for n in ("agent-1", "agent-2", "agent-3")}
    supervisor = lab_status(running_lab)["supervisor_pid"]
    os.kill(supervisor, signal.SIGKILL)
    wait_for(lambda: not lab_pids(running_lab), timeout=30, what="the runners to stop after the supervisor died")
    report = lab_status(running_lab)
    assert not report["running"] and all(a["state"] == "stopped" for a in report["agents"])
    run_lab("start", cwd=running_lab, check=True)
    wait_for(lambda: all(a["state"] == "running" for a in lab_status(running_lab)["agents"]), what="agents resumed")
    for name in positions:  # each resumed from its saved place in the script, not from the start
        saved = agents.backend_state(db, name)
        assert saved["position"] in (0, 1, 2) and len(saved["seen"]) >= (1 if name == "agent-1" else 0)
    assert "logconf" in json.dumps(agents.backend_state(db, "agent-1")["seen"])
    db.conn.close()


def test_stop_leaves_no_process_even_mid_command(lab_dir, tmp_path):
    folder = make_lab(lab_dir, tmp_path, [{"step": "long", "calls": [
        {"name": "shell", "arguments": {"command": "sleep 5917"}}]}], repeat=True, count=2, grace_s=1)
    run_lab("start", cwd=folder, check=True)
    wait_for(lambda: all(a["step"] == "long" for a in lab_status(folder)["agents"]), what="both agents in sleep")
    sleepers = lambda: [p for p in psutil.process_iter(["cmdline"]) if p.info["cmdline"] == ["sleep", "5917"]]
    wait_for(lambda: len(sleepers()) >= 2, what="the sandboxed sleeps")
    start = time.monotonic()
    result = run_lab("stop", cwd=folder, check=True)
    assert time.monotonic() - start < 10, result.stdout     # the grace period (1 s) and a few seconds to wind down
    assert not lab_pids(folder) and not sleepers()
    report = lab_status(folder)
    assert all(a["state"] == "stopped" for a in report["agents"])
    tail = [e for e in transcript(folder, "agent-1") if e["kind"] == "tool_result"][-1]
    assert "grace period" in tail["data"]["output"]


def test_agent_that_crashes_on_start_is_given_up_with_a_reason(lab_dir, tmp_path):
    folder = make_lab(lab_dir, tmp_path, WORK, count=1, max_restarts=2)
    (folder / "script.json").write_text("{not json")
    run_lab("start", cwd=folder, check=True)
    failed = wait_for(lambda: (a := agent(folder, "agent-1"))["state"] == "failed" and a, timeout=60,
                      what="agent-1 given up")
    assert "gave up after 3 crashes" in failed["reason"] and "not a JSON file" in failed["reason"]
    assert failed["restarts"] == 3
    run_lab("stop", cwd=folder, check=True)


def test_deleted_worktree_is_a_visible_state_and_start_remakes_it(lab_dir, tmp_path):
    import shutil

    folder = make_lab(lab_dir, tmp_path, WORK, repeat=True, count=1)
    run_lab("start", cwd=folder, check=True)
    wait_for(lambda: agent(folder, "agent-1")["state"] == "running", what="agent-1 running")
    shutil.rmtree(folder / "sandboxes" / "agent-1")
    failed = wait_for(lambda: (a := agent(folder, "agent-1"))["state"] == "failed" and a, what="agent-1 failed")
    assert "was deleted" in failed["reason"] and "lab start agent-1" in failed["reason"]
    run_lab("start", "agent-1", cwd=folder, check=True)
    wait_for(lambda: agent(folder, "agent-1")["state"] == "running", what="agent-1 running again")
    assert (folder / "sandboxes" / "agent-1" / "method.py").is_file()
    run_lab("stop", cwd=folder, check=True)


def test_agent_repeating_a_failing_command_stops_as_stuck(lab_dir, tmp_path):
    folder = make_lab(lab_dir, tmp_path, [{"step": "fail", "calls": [
        {"name": "shell", "arguments": {"command": "python no_such_file.py"}}]}], repeat=True, count=1, repeat_limit=3)
    run_lab("start", cwd=folder, check=True)
    stuck = wait_for(lambda: (a := agent(folder, "agent-1"))["state"] == "stuck" and a, what="agent-1 stuck")
    assert "3 times in a row" in stuck["reason"] and "no_such_file.py" in stuck["reason"]
    run_lab("stop", cwd=folder, check=True)


def test_agent_at_its_budget_stops_with_the_reason(lab_dir, tmp_path):
    turns = [{"step": "run", "calls": [{"name": "shell", "arguments": {
        "command": "mkdir -p runs && python method.py --data /data --out runs/p.jsonl --seed 0"}}]},
             {"step": "evaluate", "calls": [{"name": "evaluate", "arguments": {"predictions": "runs/p.jsonl"}}]}]
    folder = make_lab(lab_dir, tmp_path, turns, repeat=True, count=1,
                      extra="\n[budget.agent]\nscorer_queries = 1\n")
    run_lab("start", cwd=folder, check=True)
    done = wait_for(lambda: (a := agent(folder, "agent-1"))["state"] == "budget" and a, what="agent-1 at budget")
    assert "budget of 1 scorer queries" in done["reason"] and done["experiments"] == 1
    run_lab("stop", cwd=folder, check=True)


@pytest.mark.parametrize("args, env, expected", [
    (["start", "agent-99"], {}, "no agent named 'agent-99'"),
    (["stop", "agent-0"], {}, "no agent named 'agent-0'"),
    (["message", "agent-42", "hi"], {}, "no agent named 'agent-42'"),
])
def test_bad_agent_names_get_one_line(lab_dir, tmp_path, args, env, expected):
    folder = make_lab(lab_dir, tmp_path, WORK)
    result = run_lab(*args, cwd=folder)
    assert result.returncode == 2
    assert expected in result.stderr and len(result.stderr.strip().splitlines()) == 1
    assert not (folder / ".lab" / "run" / "supervisor.pid").exists() and not (folder / "sandboxes").exists()


def test_unknown_backend_and_missing_api_key_refused_before_anything_starts(lab_dir, tmp_path):
    folder = make_lab(lab_dir, tmp_path, WORK)
    text = (folder / "lab.toml").read_text()
    (folder / "lab.toml").write_text(text.replace('backend = "scripted"', 'backend = "gpt"'))
    result = run_lab("start", cwd=folder)
    assert result.returncode == 2 and "agents.backend" in result.stderr and "'claude'" in result.stderr
    (folder / "lab.toml").write_text(text.replace('backend = "scripted"', 'backend = "claude"'))
    env = {k: v for k, v in os.environ.items() if k != "ANTHROPIC_API_KEY"}
    import subprocess
    import sys

    result = subprocess.run([sys.executable, "-m", "lab.cli", "start"], cwd=folder, env=env, capture_output=True,
                            text=True)
    assert result.returncode == 2 and "ANTHROPIC_API_KEY" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert not (folder / "sandboxes").exists() and not lab_pids(folder)
