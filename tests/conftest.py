"""Shared fixtures: a small real testbed prepared once per session by the real `lab init`."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

LAB = [sys.executable, "-m", "lab.cli"]
METHODS = Path(__file__).parent / "methods"

SMALL_TOML = """\
[lab]
sandbox = "{sandbox}"

[task]
seeds = 2
max_tokens = 64

[task.sizes.rotten_tomatoes]
teacher = 60
train = 400
test = 200

[task.sizes.imdb]
teacher = 60
train = 200
test = 100

[task.sizes.tweets]
teacher = 60
train = 200
test = 100

[scorer]
seeds = 2
check_seeds = 1
timeout_s = 60
max_processes = 64
memory_mb = 4096
max_output_mb = 4
evaluate_budget = 3
submit_budget = 50
"""


def have_bwrap() -> bool:
    return shutil.which("bwrap") is not None


requires_bwrap = pytest.mark.skipif(
    not have_bwrap() and not os.environ.get("CI"),
    reason="bubblewrap is not installed (CI installs it and runs these)")


def run_lab(*args: str, cwd: Path, check: bool = False, timeout: float = 900,
            env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    result = subprocess.run([*LAB, *args], cwd=cwd, capture_output=True, text=True, timeout=timeout, env=env)
    if check and result.returncode != 0:
        raise AssertionError(f"lab {' '.join(args)} exited {result.returncode}:\n{result.stdout}\n{result.stderr}")
    return result


def write_config(folder: Path, **scorer_overrides) -> Path:
    text = SMALL_TOML.format(sandbox="bwrap" if have_bwrap() else "none")
    for key, value in scorer_overrides.items():
        text = text.replace(f"\n{key} = ", f"\n# {key} = ") + f"{key} = {value}\n"
    path = folder / "lab.toml"
    path.write_text(text)
    return path


@pytest.fixture(scope="session", autouse=True)
def no_mounts_left(tmp_path_factory):
    """Whatever a test's lab left mounted (its agents' disks, where a test failed before `lab stop`) is unmounted when
    the session ends, so that no mount or loop device outlives it."""
    yield
    from lab.sandbox.disk_quota import mounts_under, unmount

    for point in mounts_under(tmp_path_factory.getbasetemp()):
        unmount(point)


@pytest.fixture(scope="session")
def lab_dir(tmp_path_factory) -> Path:
    """A lab folder with a small testbed prepared by the real `lab init` (about a minute)."""
    folder = tmp_path_factory.mktemp("lab")
    write_config(folder)
    run_lab("init", cwd=folder, check=True)
    return folder


@pytest.fixture(scope="session")
def cfg(lab_dir):
    from lab import config

    return config.load(lab_dir / "lab.toml")


@pytest.fixture
def scorer(cfg):
    from lab.sandbox import make_sandbox
    from lab.scorer.scorer import Scorer
    from lab.store import open_db

    db = open_db(cfg.state_dir / "lab.db")
    yield Scorer(cfg, db, make_sandbox(cfg.lab.sandbox, warn=lambda line: None), progress=False)
    db.conn.close()


AGENTS_TOML = """
[agents]
count = {count}
backend = "scripted"
script = "script.json"
grace_s = {grace_s}
restart_backoff_s = 0.5
max_restarts = {max_restarts}
repeat_limit = {repeat_limit}
tmp_mb = {tmp_mb}
shell_timeout_s = 120
disk_quota = "{disk_quota}"
"""


def make_lab(lab_dir: Path, folder: Path, turns: list[dict], repeat: bool = False, count: int = 3,
             grace_s: float = 2, max_restarts: int = 3, repeat_limit: int = 4, tmp_mb: int = 64,
             extra: str = "", disk_quota: str = "off") -> Path:
    """A lab folder of its own, sharing the session's prepared testbed (copied, without any lab state). Its agents
    have no disk quotas unless `disk_quota` says so (tests/test_disk_quota.py): a mounted worktree cannot be deleted
    as a whole, which other tests do."""
    import json

    def skip(src, names):
        return [n for n in names if n in ("lab.db", "lab.db-wal", "lab.db-shm", "run", "worktrees")]

    shutil.copytree(lab_dir / ".lab", folder / ".lab", ignore=skip, dirs_exist_ok=True)   # .lab may be a mount
    text = (lab_dir / "lab.toml").read_text() + AGENTS_TOML.format(
        count=count, grace_s=grace_s, max_restarts=max_restarts, repeat_limit=repeat_limit, tmp_mb=tmp_mb,
        disk_quota=disk_quota) + extra
    (folder / "lab.toml").write_text(text)
    (folder / "script.json").write_text(json.dumps({"turns": turns, "repeat": repeat}))
    return folder


def wait_for(predicate, timeout: float = 60, interval: float = 0.3, what: str = "condition"):
    import time

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


def lab_status(folder: Path) -> dict:
    import json

    return json.loads(run_lab("status", "--json", cwd=folder, check=True).stdout)
