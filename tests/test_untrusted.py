"""Host-side reads and writes of agent-made trees, and host-side git, against planted traps (real files, real git)."""
from __future__ import annotations

import os
import stat
import subprocess
import threading
import time

import pytest

from lab import untrusted
from lab.errors import Blocked, NotFound
from lab.scaffold import repo as research
from lab.scaffold.history import History
from lab.scorer import methods
from lab.task.predictions import read_predictions


@pytest.fixture
def tree(tmp_path):
    root = tmp_path / "worktree"
    outside = tmp_path / "outside"
    root.mkdir()
    outside.mkdir()
    (outside / "secret.txt").write_text("the hidden labels\n")
    (root / "ok.txt").write_text("fine\n")
    return root, outside


def test_links_out_of_the_tree_are_never_followed(tree):
    root, outside = tree
    (root / "link.txt").symlink_to(outside / "secret.txt")
    (root / "dir").symlink_to(outside)
    with pytest.raises(Blocked, match="link.txt is a symbolic link"):
        untrusted.read_bytes(root, "link.txt", 1000)
    with pytest.raises(Blocked, match="dir is a symbolic link, not a folder"):
        untrusted.read_bytes(root, "dir/secret.txt", 1000)
    with pytest.raises(Blocked, match="dir is a symbolic link"):
        untrusted.write_bytes(root, "dir/new.txt", b"x")
    assert not (outside / "new.txt").exists()
    # writing to a name that is a link replaces the link; the file it pointed at is untouched
    untrusted.write_bytes(root, "link.txt", b"mine\n")
    assert (outside / "secret.txt").read_text() == "the hidden labels\n"
    assert not (root / "link.txt").is_symlink() and (root / "link.txt").read_text() == "mine\n"


def test_hard_links_fifos_devices_and_huge_files_are_refused_without_blocking(tree):
    root, outside = tree
    os.link(root / "ok.txt", root / "hard.txt")
    os.mkfifo(root / "fifo")
    with pytest.raises(Blocked, match="hard link"):
        untrusted.read_bytes(root, "hard.txt", 1000)
    started = time.monotonic()
    with pytest.raises(Blocked, match="fifo is a FIFO"):
        untrusted.read_bytes(root, "fifo", 1000)
    assert time.monotonic() - started < 1
    if os.geteuid() == 0:
        os.mknod(root / "null", stat.S_IFCHR | 0o600, os.makedev(1, 3))
        with pytest.raises(Blocked, match="character device"):
            untrusted.read_bytes(root, "null", 1000)
    with open(root / "sparse.bin", "wb") as handle:
        handle.truncate(50 * 1024 ** 3)
    with pytest.raises(Blocked, match="53,687,091,200 bytes, over the limit of 1,000 bytes"):
        untrusted.read_bytes(root, "sparse.bin", 1000)


def test_paths_that_lead_out_or_carry_control_characters_are_refused(tree):
    root, _ = tree
    for bad, why in [("../outside/secret.txt", "'..' leads outside"), ("/etc/passwd", "absolute path"),
                     ("a\nb", "control characters"), ("x\x1b[2J", "control characters"),
                     (".git/config", "the .git entry")]:
        with pytest.raises(Blocked, match=why):
            untrusted.read_bytes(root, bad, 1000)
    with pytest.raises(NotFound):
        untrusted.read_bytes(root, "missing.txt", 1000)
    assert untrusted.read_bytes(root, "./ok.txt", 1000) == b"fine\n"


def test_a_file_swapped_for_a_link_while_being_checked_is_never_followed(tree):
    """A thread keeps swapping ok.txt between a file and a link to the secret: no read ever returns the secret."""
    root, outside = tree
    stop = threading.Event()

    def swap():
        while not stop.is_set():
            tmp = root / ".swap"
            tmp.unlink(missing_ok=True)
            tmp.symlink_to(outside / "secret.txt")
            os.replace(tmp, root / "ok.txt")
            (root / ".swap2").write_text("fine\n")
            os.replace(root / ".swap2", root / "ok.txt")

    swapper = threading.Thread(target=swap)
    swapper.start()
    seen = set()
    try:
        for _ in range(2000):
            try:
                seen.add(untrusted.read_bytes(root, "ok.txt", 1000))
            except (Blocked, NotFound):
                seen.add(b"refused")
    finally:
        stop.set()
        swapper.join()
    assert b"the hidden labels\n" not in seen and b"fine\n" in seen


def test_predictions_a_method_linked_to_the_labels_are_rejected(tmp_path):
    from lab.errors import MethodRejected

    labels = tmp_path / "labels.jsonl"
    labels.write_text('{"id": "a", "label": 1}\n')
    out = tmp_path / "out"
    out.mkdir()
    (out / "predictions.jsonl").symlink_to(labels)
    with pytest.raises(MethodRejected, match="predictions file: it is a symbolic link"):
        read_predictions(out / "predictions.jsonl", ["a"], 1000)
    (out / "predictions.jsonl").unlink()
    os.mkfifo(out / "predictions.jsonl")
    with pytest.raises(MethodRejected, match="it is a FIFO"):
        read_predictions(out / "predictions.jsonl", ["a"], 1000)


EVIL = "#!/bin/sh\ntouch {marker}\ncat \"$@\"\n"


def test_host_git_runs_nothing_a_planted_config_names_and_harden_removes_it(tmp_path):
    """An older lab let agents write the research repository: what they planted there runs nothing, and the next
    `lab init` or `lab start` takes the repository back."""
    state = tmp_path / ".lab"
    state.mkdir()
    repo, _ = research.create(state)
    path = research.research_repo_path(state)
    marker = tmp_path / "ran"
    evil = tmp_path / "evil.sh"
    evil.write_text(EVIL.format(marker=marker))
    evil.chmod(0o755)
    work = tmp_path / "work"
    subprocess.run(["git", "clone", "-q", str(path), str(work)], check=True)
    (work / ".gitattributes").write_text("* diff=evil filter=evil\n")
    (work / "method.py").write_text("print('changed')\n")
    env = {**os.environ, "GIT_AUTHOR_NAME": "a", "GIT_AUTHOR_EMAIL": "a@a", "GIT_COMMITTER_NAME": "a",
           "GIT_COMMITTER_EMAIL": "a@a"}
    subprocess.run(["git", "-C", str(work), "commit", "-qam", "x"], check=True, env=env)
    subprocess.run(["git", "-C", str(work), "add", ".gitattributes"], check=True)
    subprocess.run(["git", "-C", str(work), "commit", "-qm", "attributes"], check=True, env=env)
    subprocess.run(["git", "-C", str(work), "push", "-q", "origin", "HEAD:refs/heads/agent-1"], check=True)
    with open(path / "config", "a") as config:
        config.write(f"[core]\n\tfsmonitor = {evil}\n\tpager = {evil}\n[diff]\n\texternal = {evil}\n"
                     f"[diff \"evil\"]\n\ttextconv = {evil}\n\tcommand = {evil}\n"
                     f"[filter \"evil\"]\n\tsmudge = {evil}\n\tclean = {evil}\n[log]\n\tshowSignature = true\n"
                     f"[gpg]\n\tprogram = {evil}\n")
    for hook in ("post-update", "reference-transaction", "pre-receive"):
        (path / "hooks" / hook).write_text(EVIL.format(marker=marker))
        (path / "hooks" / hook).chmod(0o755)
    (path / "info").mkdir(exist_ok=True)
    (path / "info" / "attributes").write_text("* diff=evil\n")

    history = History(state)
    sha = history.resolve("agent-1")
    assert "changed" in history.show(sha) and "changed" in history.diff_from_main(sha)
    assert history.commits(["agent-1"])[0].branch == "agent-1"
    tree = methods.from_commit(repo, sha, "method.py", tmp_path / "method")
    assert (tree.root / "method.py").read_text() == "print('changed')\n"
    research.pin(repo, sha)
    assert not marker.exists()

    research.harden(path)
    assert (path / "config").read_text() == research.CONFIG
    assert not list((path / "hooks").iterdir()) and not (path / "info" / "attributes").exists()


def test_names_an_agent_gives_are_checked_before_git_sees_them(tmp_path):
    state = tmp_path / ".lab"
    state.mkdir()
    research.create(state)
    history = History(state)
    for bad in ("--output=/tmp/x", "main..agent-1", "HEAD@{1}", "a b", "main^{tree}"):
        with pytest.raises(NotFound):
            history.resolve(bad)
