"""Commands that read the lab create nothing; where there is no lab they say so in one line; bad input is one line.

Every case runs the real `lab` in a subprocess, in a real folder, and compares the folder's files before and after.
"""
from __future__ import annotations

import sqlite3
import subprocess
import sys
import time
from importlib.metadata import version

import pytest

from conftest import LAB, run_lab, write_config
from lab import DISTRIBUTION

READ_ONLY = [["status"], ["status", "--json"], ["score"], ["score", "--json"], ["forum"], ["forum", "--json"],
             ["forum", "search", "probe"], ["forum", "read", "1"], ["log"], ["show", "abc123"], ["report"],
             ["agent", "agent-1"], ["agent", "agent-1", "--transcript", "--json"], ["agent", "agent-1", "--log"]]


# SQLite's own WAL index files, which a read-only connection to a database in WAL mode may add beside it
SQLITE_SIDE_FILES = {"lab.db-wal", "lab.db-shm"}


def files(folder) -> dict[str, tuple[int, int]]:
    """Every file under `folder` with its size and modification time (so a rewrite shows too)."""
    return {str(p.relative_to(folder)): (p.stat().st_size, p.stat().st_mtime_ns) for p in folder.rglob("*")
            if p.is_file() and p.name not in SQLITE_SIDE_FILES}


def paths(folder) -> list[str]:
    """Every path under `folder`, SQLite's side files and folders included: for where nothing may appear at all."""
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*"))


def one_line(text: str) -> str:
    lines = [ln for ln in text.splitlines() if ln.strip()]
    assert len(lines) == 1, text
    return lines[0]


@pytest.mark.parametrize("args", READ_ONLY, ids=" ".join)
def test_where_there_is_no_lab_a_read_only_command_says_so_and_creates_nothing(tmp_path, args):
    write_config(tmp_path)
    before = paths(tmp_path)
    done = run_lab(*args, cwd=tmp_path, timeout=120)
    assert done.returncode == 2, done.stdout + done.stderr
    assert one_line(done.stderr).startswith("lab: error: no lab here yet:")
    assert str(tmp_path / ".lab") in done.stderr
    assert done.stdout == ""
    assert paths(tmp_path) == before


@pytest.mark.parametrize("args", [["status"], ["score"], ["forum"], ["agent", "agent-1"]], ids=" ".join)
def test_a_prepared_lab_never_started_reads_as_empty_without_a_database(tmp_path, args):
    """`lab init` makes .lab/ but no database; the commands show an empty lab rather than making one."""
    write_config(tmp_path)
    (tmp_path / ".lab").mkdir()
    before = paths(tmp_path)
    done = run_lab(*args, cwd=tmp_path, timeout=120)
    assert done.returncode == 0, done.stderr
    assert paths(tmp_path) == before
    expected = {"status": "no agents yet", "score": "no scored submissions yet", "forum": "no posts",
                "agent": "agent-1 has not started yet"}[args[0]]
    assert expected in done.stdout


@pytest.fixture
def lab_with_post(tmp_path):
    write_config(tmp_path)
    run_lab("forum", "post", "the first finding", cwd=tmp_path, check=True)
    assert (tmp_path / ".lab" / "lab.db").exists()
    return tmp_path


def test_read_only_commands_do_not_change_an_existing_lab(lab_with_post):
    db = lab_with_post / ".lab" / "lab.db"
    # a clean close leaves only lab.db; a read-only reader may add its WAL index files, never change the database
    before = db.read_bytes()
    for args in [["status"], ["score"], ["forum"], ["forum", "read", "1"], ["forum", "search", "finding"],
                 ["agent", "agent-1"], ["agent", "agent-1", "--transcript"]]:
        run_lab(*args, cwd=lab_with_post, check=True, timeout=120)
    assert db.read_bytes() == before
    assert run_lab("forum", cwd=lab_with_post, check=True).stdout.count("the first finding") == 1


def test_read_only_commands_answer_while_an_agent_holds_the_write_lock(lab_with_post):
    """A read-only open takes no write lock (no migrations, no journal-mode change): a long write does not stall it."""
    holder = sqlite3.connect(lab_with_post / ".lab" / "lab.db", isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")
    holder.execute("INSERT INTO events (agent, created, kind, summary, data) VALUES ('agent-1', 0, 'turn', 'x', '{}')")
    try:
        for args in [["status"], ["forum"], ["score"], ["agent", "agent-1", "--transcript"]]:
            begin = time.monotonic()
            done = run_lab(*args, cwd=lab_with_post, timeout=60)
            assert done.returncode == 0, done.stderr
            assert time.monotonic() - begin < 20
    finally:
        holder.execute("ROLLBACK")
        holder.close()


def test_writing_commands_in_a_read_only_group_still_write(lab_with_post):
    done = run_lab("forum", "post", "a second finding", cwd=lab_with_post, check=True)
    assert done.stdout.startswith("posted #2")
    assert "a second finding" in run_lab("forum", cwd=lab_with_post, check=True).stdout


@pytest.mark.parametrize("args, expected", [
    (["forum", "-n", "many"], "'many' is not a valid integer"),
    (["forum", "read", "first"], "'first' is not a valid integer"),
    (["status", "--colour"], "No such option '--colour'"),
    (["statuss"], "No such command 'statuss'"),
    (["--config", "missing.toml", "status"], "config file missing.toml not found"),
    (["forum", "read", "99"], "99"),
    (["show", "deadbeef"], "research repository"),      # this lab was never prepared with `lab init`
    (["message", "agent-99", "hello"], "agent-99"),
    (["agent", "agent-99"], "no agent named 'agent-99'"),
    (["agent", "agent-1", "-n", "-3"], "-3 is not in the range x>=0"),
    (["agent", "agent-1", "--log", "--notebook"], "choose one of --transcript, --notebook and --log"),
], ids=lambda v: " ".join(v) if isinstance(v, list) else None)
def test_bad_input_is_one_line_exit_2_and_writes_nothing(lab_with_post, args, expected):
    before = files(lab_with_post)
    done = run_lab(*args, cwd=lab_with_post, timeout=120)
    assert done.returncode == 2, done.stdout + done.stderr
    assert expected in done.stderr
    assert "Traceback" not in done.stderr
    assert files(lab_with_post) == before


def test_a_damaged_database_is_one_line_not_a_traceback(tmp_path):
    write_config(tmp_path)
    (tmp_path / ".lab").mkdir()
    (tmp_path / ".lab" / "lab.db").write_bytes(b"this is not a database, " * 100)
    for args in [["status"], ["forum"]]:
        done = run_lab(*args, cwd=tmp_path, timeout=120)
        assert done.returncode == 2
        assert one_line(done.stderr) == "lab: error: the lab's database: file is not a database"


def test_version_comes_from_the_package_metadata(tmp_path):
    done = run_lab("--version", cwd=tmp_path, check=True)
    assert done.stdout == f"lab {version(DISTRIBUTION)}\n"


def test_python_dash_m_lab_is_the_lab_command(tmp_path):
    by_module = subprocess.run([sys.executable, "-m", "lab", "--help"], cwd=tmp_path, capture_output=True, text=True)
    by_command = subprocess.run([*LAB, "--help"], cwd=tmp_path, capture_output=True, text=True)
    assert by_module.returncode == by_command.returncode == 0
    assert by_module.stdout == by_command.stdout
    assert by_module.stdout.startswith("Usage: lab [OPTIONS] COMMAND")
    assert "--version" in by_module.stdout
    version_line = subprocess.run([sys.executable, "-m", "lab", "--version"], cwd=tmp_path, capture_output=True,
                                  text=True).stdout
    assert version_line == f"lab {version(DISTRIBUTION)}\n"
