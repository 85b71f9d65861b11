"""Git state outlives a killed git or a full disk: a lock file left in an agent's repository or in the research
repository is cleared (only while no git process works there) and the command goes through; a full disk under git
is the lab's StateDiskFull, which never counts against an agent."""
from __future__ import annotations

import os
import subprocess
import time

import pytest

from conftest import make_lab, requires_bwrap
from lab import config
from lab.errors import LAB_FAULTS, GitError, StateDiskFull
from lab.sandbox import make_sandbox
from lab.sandbox.workspace import Workspace
from lab.scaffold import gitlocks
from lab.scaffold.repo import accept_bundle, research_repo_path
from lab.scaffold.safegit import SafeGit

pytestmark = requires_bwrap


@pytest.fixture(scope="module")
def lab(lab_dir, tmp_path_factory):
    folder = make_lab(lab_dir, tmp_path_factory.mktemp("locks"), [], count=2)
    cfg = config.load(folder / "lab.toml")
    sandbox = make_sandbox(cfg.lab.sandbox, user="agent-1")
    workspace = Workspace.ensure(cfg.sandboxes_dir, research_repo_path(cfg.state_dir), "agent-1", sandbox)
    return cfg, workspace


IDENTITY = {"GIT_AUTHOR_NAME": "agent-1", "GIT_COMMITTER_NAME": "agent-1", "GIT_AUTHOR_EMAIL": "agent-1@lab",
            "GIT_COMMITTER_EMAIL": "agent-1@lab"}


def _old(path, seconds: float = 60) -> None:
    os.utime(path, (time.time() - seconds, time.time() - seconds))


def a_git_working_in(folder):
    """A real git process whose working folder is `folder` (it waits on its stdin until it is closed)."""
    proc = subprocess.Popen(["git", "-c", "safe.directory=*", "cat-file", "--batch"], cwd=folder, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    time.sleep(0.2)
    return proc


def test_a_lock_a_killed_git_left_in_an_agents_repository_is_cleared_and_the_commit_goes_through(lab):
    _, workspace = lab
    workspace.write("one.txt", "one\n")
    lock = workspace.path / ".git" / "index.lock"
    lock.write_text("")                      # what a git killed mid-commit leaves
    sha = workspace.commit("after a killed git", IDENTITY)
    assert len(sha) == 40 and not lock.exists()
    assert workspace.research.commit_of("agent-1") == sha


def test_a_lock_is_left_alone_while_a_git_process_works_in_the_worktree(lab):
    _, workspace = lab
    workspace.write("two.txt", "two\n")
    lock = workspace.path / ".git" / "index.lock"
    lock.write_text("")
    busy = a_git_working_in(workspace.path)
    try:
        with pytest.raises(Exception, match="index.lock"):
            workspace.commit("while another git works", IDENTITY)
        assert lock.exists()
    finally:
        busy.stdin.close()
        busy.wait()
    assert len(workspace.commit("once it is done", IDENTITY)) == 40 and not lock.exists()


def test_a_stale_lock_in_the_research_repository_is_removed_and_a_live_ones_holder_is_waited_for(lab):
    cfg, workspace = lab
    repo = SafeGit(research_repo_path(cfg.state_dir))
    head = workspace.publish()
    ref_lock = repo.git_dir / "refs" / "heads" / "agent-2.lock"
    ref_lock.parent.mkdir(parents=True, exist_ok=True)
    ref_lock.write_text("")
    _old(ref_lock)
    assert accept_bundle(repo, None, "agent-2", head)        # moves agent-2 onto a commit the repository holds
    assert repo.heads()["agent-2"] == head and not ref_lock.exists()

    # a fresh lock, as a live git holds it, whose holder finishes a moment later: waited for, not removed
    ref_lock.write_text("")
    start = time.monotonic()
    subprocess.Popen(["sh", "-c", f"sleep 1; rm -f '{ref_lock}'"])
    repo.update_ref("refs/heads/agent-2", repo.commit_of("main"))
    assert 0.8 < time.monotonic() - start < gitlocks.WAIT_FOR_S + 1

    # a stale lock while a git process of the lab's works in the repository: left for it
    ref_lock.write_text("")
    _old(ref_lock)
    busy = a_git_working_in(repo.git_dir)
    try:
        with pytest.raises(GitError, match="agent-2.lock"):
            repo.update_ref("refs/heads/agent-2", head)
        assert ref_lock.exists()
    finally:
        busy.stdin.close()
        busy.wait()
    repo.update_ref("refs/heads/agent-2", head)
    assert not ref_lock.exists()


def test_git_on_a_full_state_disk_is_state_disk_full_a_fault_of_the_lab(tmp_path):
    disk = tmp_path / "disk"
    disk.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(disk)], capture_output=True).returncode:
        pytest.skip("cannot mount a small tmpfs here")
    try:
        (disk / "r.git").mkdir()
        repo = SafeGit(disk / "r.git")
        repo.run("init", "-q", "--bare")
        blob = os.urandom(2 * 1024 * 1024)
        with pytest.raises(StateDiskFull):
            repo.run("hash-object", "-w", "--stdin", input=blob)
        assert "StateDiskFull" in LAB_FAULTS
    finally:
        subprocess.run(["umount", "-l", str(disk)], capture_output=True)
