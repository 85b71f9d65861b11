"""lab.toml is validated once per start: by `lab start`, which hands its config to the supervisor, which hands it to
the runners' zygote (again to a new zygote after one died), whose runners inherit it. So a runner started again
after lab.toml was edited holds its supervisor's settings, not the file's. Real lab, scripted agents.

Validations are counted in every process of the lab through a sitecustomize module that wraps
lab.config.loading.parse, the one function that validates, and writes a line per call (the call goes through).
"""
from __future__ import annotations

import json
import os
import signal

import psutil

from conftest import lab_status, make_lab, requires_bwrap, run_lab, wait_for
from lab.agents import pidfiles
from lab.state_layout import StateLayout

pytestmark = requires_bwrap

WORK = [{"step": "work", "calls": [{"name": "shell", "arguments": {"command": "sleep 0.3; echo working"}}]}]
EDITED = [{"step": "edited", "calls": [{"name": "shell", "arguments": {"command": "echo edited"}}]}]

COUNTER = """
import os, sys

try:
    from lab.config import loading
except ImportError:      # a Python that is not the lab's
    loading = None
if loading is not None:
    validate = loading.parse

    def parse(*args, **kwargs):
        with open({log!r}, "a") as out:
            out.write(f"{{os.getpid()}} {{' '.join(sys.argv)}}\\n")
        return validate(*args, **kwargs)

    loading.parse = parse
"""


def counting_env(tmp_path) -> tuple[dict[str, str], object]:
    """The environment of a `lab start` whose every process counts its validations, and the file they go to."""
    hook, log = tmp_path / "hook", tmp_path / "validations.txt"
    hook.mkdir()
    (hook / "sitecustomize.py").write_text(COUNTER.format(log=str(log)))
    path = os.pathsep.join(p for p in (str(hook), os.environ.get("PYTHONPATH")) if p)
    return {**os.environ, "PYTHONPATH": path}, log


def running_again(folder, old: set[int]) -> bool:
    """Every agent running on a runner that is not one of `old`."""
    report = lab_status(folder)
    return report["running"] and all(a["state"] == "running" and a["pid"] not in old for a in report["agents"])


def kill_the_zygote(folder) -> set[int]:
    """Kill the runners' zygote (its runners die with it, and the supervisor starts a new one and new runners);
    returns the old runners' pids."""
    old = {a["pid"] for a in lab_status(folder)["agents"]}
    zygote = pidfiles.read(StateLayout(folder / ".lab").run.zygote_pid)
    assert zygote is not None
    os.kill(zygote.pid, signal.SIGKILL)
    return old


def test_a_start_validates_lab_toml_once_however_many_runners_start(lab_dir, tmp_path):
    folder = make_lab(lab_dir, tmp_path / "lab", WORK, repeat=True, count=3)
    env, log = counting_env(tmp_path)
    run_lab("start", "--detach", cwd=folder, check=True, env=env)
    try:
        wait_for(lambda: running_again(folder, set()), what="three running agents")
        old = kill_the_zygote(folder)
        wait_for(lambda: running_again(folder, old), timeout=60, what="three agents on new runners")
    finally:
        run_lab("stop", cwd=folder)
    validations = log.read_text().splitlines()
    assert len(validations) == 1, validations
    assert "start --detach" in validations[0]


def test_runners_started_again_hold_the_supervisors_config_after_lab_toml_is_edited(lab_dir, tmp_path):
    from lab.store import events, open_db

    folder = make_lab(lab_dir, tmp_path, WORK, repeat=True, count=2)
    run_lab("start", "--detach", cwd=folder, check=True)
    try:
        wait_for(lambda: running_again(folder, set()), what="two running agents")
        (folder / "edited.json").write_text(json.dumps({"turns": EDITED, "repeat": True}))
        toml = folder / "lab.toml"
        toml.write_text(toml.read_text().replace('script = "script.json"', 'script = "edited.json"'))
        old = kill_the_zygote(folder)
        wait_for(lambda: running_again(folder, old) and not any(alive(pid) for pid in old), timeout=60,
                 what="both agents on new runners, the old ones gone")
        db = open_db(folder / ".lab" / "lab.db")
        mark = events.latest(db, limit=1)[0]["id"]       # what follows is the new runners' alone

        def new_turns() -> dict[str, list[str]]:
            return {name: [e["summary"] for e in events.transcript(db, name, after_id=mark) if e["kind"] == "turn"]
                    for name in ("agent-1", "agent-2")}

        wait_for(lambda: all(len(turns) >= 2 for turns in new_turns().values()), timeout=60,
                 what="two turns of each new runner")
        assert {name: set(turns) for name, turns in new_turns().items()} == {"agent-1": {"work"}, "agent-2": {"work"}}
        db.conn.close()
    finally:
        run_lab("stop", cwd=folder)


def alive(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False
