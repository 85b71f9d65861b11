"""Per-agent disk quotas: a loop-mounted filesystem per worktree (or, where the machine cannot mount, a measured one),
bytes published per hour, and research.git's unreachable objects pruned on a schedule. The labs here run real
scripted agents; every mount a test makes is unmounted when it ends, failed or not."""
from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from conftest import lab_status, make_lab, run_lab, wait_for
from lab.sandbox import disk_quota
from lab.sandbox.disk_quota import AgentDisk, DiskQuotaExceeded, ensure_mounted, measure, mounted_source

needs_loop = pytest.mark.skipif(disk_quota.loop_unavailable() is not None,
                                reason=f"no loop-mounted disks here: {disk_quota.loop_unavailable()}")


@pytest.fixture
def unmounted_after(tmp_path):
    """tmp_path, with whatever a test mounted below it unmounted when the test ends."""
    yield tmp_path
    for point in disk_quota.mounts_under(tmp_path):
        disk_quota.unmount(point)


def fill(folder: Path, mb: int) -> OSError | None:
    """Write mb MB of zeros into folder, a MB a file; the error that stopped it."""
    try:
        for i in range(mb):
            (folder / f"fill-{i}").write_bytes(b"\0" * 2**20)
    except OSError as exc:
        return exc
    return None


@needs_loop
def test_a_loop_disk_holds_its_quota_and_comes_back_after_a_remount(unmounted_after):
    disk = AgentDisk("agent-1", unmounted_after / "sandboxes" / "agent-1", unmounted_after / "disks" / "agent-1.img",
                     8 << 20, "loop")
    ensure_mounted(disk, owner=None)
    ensure_mounted(disk, owner=None)            # mounted already: nothing happens
    assert mounted_source(disk.worktree) and os.listdir(disk.worktree) == []   # no lost+found in the worktree
    error = fill(disk.worktree, 12)
    assert error is not None and error.errno == 28
    used, complete = disk.used_bytes()
    assert complete and 6 << 20 < used <= 8 << 20
    assert os.stat(disk.image).st_blocks * 512 >= 8 << 20    # the image is allocated whole: it has no holes
    disk_quota.unmount(disk.worktree)
    assert mounted_source(disk.worktree) is None and os.listdir(disk.worktree) == []
    ensure_mounted(disk, owner=None)
    assert (disk.worktree / "fill-0").stat().st_size == 2**20
    disk_quota.unmount(disk.worktree)
    grown = AgentDisk(disk.name, disk.worktree, disk.image, 16 << 20, "loop")     # agents.disk_mb raised
    ensure_mounted(grown, owner=None)
    (disk.worktree / "more").mkdir()
    assert fill(disk.worktree / "more", 4) is None          # room it did not have before
    assert (disk.worktree / "fill-0").stat().st_size == 2**20 and grown.used_bytes()[0] <= 16 << 20


@needs_loop
def test_a_worktree_made_before_quotas_moves_onto_its_disk(unmounted_after):
    disk = AgentDisk("agent-2", unmounted_after / "sandboxes" / "agent-2", unmounted_after / "disks" / "agent-2.img",
                     8 << 20, "loop")
    (disk.worktree / "sub").mkdir(parents=True)
    (disk.worktree / "sub" / "notes.md").write_text("kept\n")
    os.symlink("/etc/passwd", disk.worktree / "link")
    ensure_mounted(disk, owner=None)
    assert mounted_source(disk.worktree)
    assert (disk.worktree / "sub" / "notes.md").read_text() == "kept\n"
    assert os.readlink(disk.worktree / "link") == "/etc/passwd"
    too_big = AgentDisk("agent-3", unmounted_after / "sandboxes" / "agent-3", unmounted_after / "disks" / "agent-3.img",
                        4 << 20, "loop")
    too_big.worktree.mkdir(parents=True)
    (too_big.worktree / "big").write_bytes(os.urandom(6 << 20))
    with pytest.raises(disk_quota.DiskQuotaError, match="agents.disk_mb = 4 MB"):
        ensure_mounted(too_big, owner=None)
    assert mounted_source(too_big.worktree) is None and (too_big.worktree / "big").stat().st_size == 6 << 20


def test_a_measured_quota_counts_allocated_bytes_and_refuses_past_it(tmp_path):
    disk = AgentDisk("agent-1", tmp_path / "agent-1", tmp_path / "agent-1.img", 4 << 20, "measured")
    disk.worktree.mkdir()
    with open(disk.worktree / "sparse", "wb") as out:
        out.truncate(1 << 30)                         # a sparse GB takes nothing
    (disk.worktree / "a").mkdir()
    (disk.worktree / "a" / "data").write_bytes(os.urandom(3 << 20))
    used, complete = measure(disk.worktree)
    assert complete and 3 << 20 <= used < 4 << 20
    disk.check()
    (disk.worktree / "a" / "more").write_bytes(os.urandom(2 << 20))
    with pytest.raises(DiskQuotaExceeded, match=r"may hold 4 MB \(agents.disk_mb\)"):
        disk.check()
    assert measure(disk.worktree, budget_s=0) == (measure(disk.worktree, budget_s=0)[0], False)


def test_a_machine_that_cannot_mount_falls_back_to_measured_quotas_and_says_so(monkeypatch):
    monkeypatch.setattr(os, "geteuid", lambda: 1000)          # as a user who is not root
    mode, warning = disk_quota.resolve_mode("auto")
    assert mode == "measured" and "only measured, after the fact" in warning and "not run as root" in warning
    with pytest.raises(disk_quota.DiskQuotaError, match='disk_quota = "loop" needs a filesystem per agent'):
        disk_quota.resolve_mode("loop")
    assert disk_quota.resolve_mode("off") == ("off", None)


@needs_loop
def test_where_a_disk_cannot_be_mounted_auto_measures_that_agent_and_says_why(lab_dir, tmp_path):
    from lab import config
    from lab.agents import worktrees

    cfg = config.load(make_lab(lab_dir, tmp_path, turns=[], count=1, disk_quota="auto", extra="disk_mb = 8\n") /
                      "lab.toml")
    image = disk_quota.images_dir(cfg.state_dir) / "agent-1.img"
    image.parent.mkdir()
    with open(image, "wb") as garbage:              # no filesystem in it: mount fails
        garbage.truncate(8 << 20)
    said = []
    try:
        worktrees.ensure(cfg, "agent-1", "loop", warn=said.append)
        assert mounted_source(cfg.sandboxes_dir / "agent-1") is None
        assert (cfg.sandboxes_dir / "agent-1" / "method.py").is_file()
        assert "agent-1's disk quota is only measured, after the fact" in said[0] and "mount failed" in said[0]
        assert disk_quota.disk_of(cfg, "agent-1").mode == "measured"
        strict = config.parse({**_toml(cfg), "agents": {**_toml(cfg)["agents"], "disk_quota": "loop"}}, cfg.root)
        with pytest.raises(disk_quota.DiskQuotaError, match="mount failed"):
            worktrees.ensure(strict, "agent-1", "loop")
    finally:
        for point in disk_quota.mounts_under(tmp_path):
            disk_quota.unmount(point)


def _toml(cfg) -> dict:
    import tomllib

    return tomllib.loads((cfg.root / "lab.toml").read_text())


def test_publishes_count_over_a_sliding_hour(tmp_path):
    from lab.agents.publish_quota import PublishQuota
    from lab.errors import Blocked
    from lab.store import open_db

    now = [1_000_000.0]
    quota = PublishQuota(open_db(tmp_path / "lab.db"), "agent-1", mb_per_hour=3, clock=lambda: now[0])
    quota.admit(2 << 20, "a" * 40)
    quota.record(2 << 20, "a" * 40)
    now[0] += 1800
    with pytest.raises(Blocked, match=r"past your quota of 3 MB an hour.*in 30 minutes"):
        quota.admit(2 << 20, "b" * 40)
    with pytest.raises(Blocked, match="larger than the hourly quota"):
        quota.admit(4 << 20, "c" * 40)
    now[0] += 1801
    quota.admit(2 << 20, "b" * 40)


def test_a_prune_frees_a_reset_branchs_objects_and_keeps_every_pinned_one(tmp_path):
    from lab.scaffold import repo as research
    from lab.scaffold.prune import prune, stored_bytes

    repo, _ = research.create(tmp_path)
    main = repo.commit_of("main")

    def commit(name: str, size: int) -> str:
        blob = repo.text("hash-object", "-w", "--stdin", input=os.urandom(size)).strip()
        tree = repo.text("mktree", input=f"100644 blob {blob}\t{name}\n".encode()).strip()
        return repo.text("commit-tree", tree, "-p", main, "-m", name, env=research.AUTHOR).strip()

    dropped, scored, incoming = commit("dropped", 2 << 20), commit("scored", 1 << 20), commit("incoming", 1 << 20)
    posted = commit("posted", 1 << 20)
    research.pin(repo, scored)
    research.keep_posted(repo, posted)
    repo.update_ref("refs/lab/incoming/agent-2", incoming)
    before, after = prune(repo, grace_s=3600)        # all of it younger than the grace: nothing goes
    assert after >= 5 << 20 and repo.has_commit(dropped)
    before, after = prune(repo, grace_s=0)
    assert before - after >= 2 << 20 and not repo.has_commit(dropped)
    assert repo.has_commit(scored) and repo.has_commit(incoming) and repo.has_commit(posted)
    assert repo.commit_of("main") == main
    assert stored_bytes(repo) == after


# ---- real labs ----------------------------------------------------------------------------------------------
def call(name, **arguments):
    return {"name": name, "arguments": arguments}


def step(label, *calls):
    return {"step": label, "calls": list(calls)}


def tool_results(folder: Path, name: str) -> dict[str, list[dict]]:
    """An agent's tool results, by the step of its script that made them."""
    from lab.store import events, open_db

    db = open_db(folder / ".lab" / "lab.db")
    try:
        return events.results_by_turn(db, name)
    finally:
        db.conn.close()


MEASURED_TURNS = [
    step("fill", call("shell", command="head -c 6000000 /dev/urandom > big.bin && echo filled")),
    step("write", call("write_file", path="notes.md", content="more\n")),
    step("shell", call("shell", command="echo more > more.txt; rm big.bin && echo freed")),
    step("write-again", call("write_file", path="notes.md", content="more\n")),
]


def test_a_measured_quota_refuses_writes_once_over_and_lets_the_agent_delete(lab_dir, tmp_path):
    folder = make_lab(lab_dir, tmp_path, MEASURED_TURNS, count=1, disk_quota="measured", extra="disk_mb = 4\n")
    try:
        started = run_lab("start", "--detach", cwd=folder, check=True)
        assert "only after the fact" in started.stderr
        wait_for(lambda: lab_status(folder)["agents"][0]["state"] == "stopped", timeout=90, what="the script's end")
        steps = tool_results(folder, "agent-1")
        assert not steps["fill"][0]["is_error"]           # measured: the command that went over is not stopped
        refused = steps["write"][0]
        assert refused["is_error"] and "disk quota is full" in refused["output"]
        assert "may hold 4 MB (agents.disk_mb)" in refused["output"]
        freed = steps["shell"][0]
        assert "no file allowed to grow" in freed["output"] and "freed" in freed["output"]
        assert not (folder / "sandboxes" / "agent-1" / "more.txt").exists() or \
            (folder / "sandboxes" / "agent-1" / "more.txt").stat().st_size == 0
        assert not steps["write-again"][0]["is_error"]
        assert lab_status(folder)["agents"][0]["disk"]["mode"] == "measured"
    finally:
        run_lab("stop", cwd=folder)


def test_a_filesystem_the_kernel_made_read_only_is_seen_so():
    line = ("46 27 7:0 / /lab/sandboxes/agent-1 rw,nosuid,nodev,relatime - ext4 /dev/loop0 "
            "rw,discard,noinit_itable{}\n")
    assert disk_quota.read_only_in(line.format(",emergency_ro"), "/lab/sandboxes/agent-1")
    assert not disk_quota.read_only_in(line.format(""), "/lab/sandboxes/agent-1")
    assert not disk_quota.read_only_in(line.format(",emergency_ro"), "/lab/sandboxes/agent-2")


@needs_loop
def test_a_disk_made_read_only_by_a_full_state_disk_is_repaired_once_space_returns(unmounted_after):
    """The image is sparse: while the state disk is full, the agent's filesystem cannot write into its image, aborts
    its journal and stays read-only. The next tool call after space returns repairs it."""
    from lab.errors import StateDiskFull

    state = unmounted_after / "state"
    state.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=160m", "tmpfs", str(state)], check=True)
    disk = AgentDisk("agent-1", unmounted_after / "sandboxes" / "agent-1", state / "disks" / "agent-1.img",
                     64 << 20, "loop")
    ensure_mounted(disk, owner=None)
    (disk.worktree / "kept.txt").write_text("written before the disk filled\n")
    # Whether a failed write into the image aborts the journal (read-only) or only fails that write depends on what
    # the kernel was writing back (metadata or data); here the journal's abort is made certain by a read-only remount
    subprocess.run(["mount", "-o", "remount,ro", str(disk.worktree)], check=True)
    assert disk_quota.read_only(disk.worktree)
    filler = state / "filler"
    with open(filler, "wb") as out:                     # the state disk full
        try:
            while True:
                out.write(b"\0" * 2**20)
        except OSError:
            pass
    with pytest.raises(StateDiskFull):                  # still full: not yet
        disk.check_mounted()
    filler.unlink()
    disk.check_mounted()                                # room again: unmounted, checked, mounted
    assert not disk_quota.read_only(disk.worktree)
    assert (disk.worktree / "kept.txt").read_text() == "written before the disk filled\n"
    (disk.worktree / "after.txt").write_text("the disk writes again\n")


@needs_loop
def test_an_agents_disk_is_reserved_whole_so_a_full_state_disk_fails_none_of_its_writes(unmounted_after):
    """With holes, the image took space as its agent wrote; while the state disk was full such writes failed under
    the agent's filesystem (a chaos run had six git index files come back corrupt). Reserved whole, they cannot."""
    state = unmounted_after / "state"
    state.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=96m", "tmpfs", str(state)], check=True)
    too_big = AgentDisk("agent-2", unmounted_after / "sandboxes" / "agent-2", state / "disks" / "agent-2.img",
                        128 << 20, "loop")
    with pytest.raises(disk_quota.DiskQuotaError, match="does not fit on the state disk"):
        ensure_mounted(too_big, owner=None)
    assert sorted(os.listdir(state / "disks")) == []                 # nothing half-made
    disk = AgentDisk("agent-1", unmounted_after / "sandboxes" / "agent-1", state / "disks" / "agent-1.img",
                     48 << 20, "loop")
    ensure_mounted(disk, owner=None)
    with open(state / "filler", "wb") as out:                       # the state disk full
        try:
            while True:
                out.write(b"\0" * 2**20)
        except OSError:
            pass
    payload = os.urandom(16 << 20)
    with open(disk.worktree / "written.bin", "wb") as out:
        out.write(payload)
        out.flush()
        os.fsync(out.fileno())
    os.sync()
    assert not disk_quota.read_only(disk.worktree)
    assert (disk.worktree / "written.bin").read_bytes() == payload
    assert disk.used_bytes()[0] >= 16 << 20
    disk_quota.unmount(disk.worktree)
    used, complete = disk.used_bytes()                               # stopped: read from the image's superblock
    assert complete and 16 << 20 <= used < 40 << 20
