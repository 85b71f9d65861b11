"""Limits hold per agent: a uid of its own, and cgroups (where the machine has them) around each run; a method run
is judged by the CPU time it uses, not by how busy the machine is."""
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from conftest import requires_bwrap, run_lab, write_config
from lab.errors import SandboxError
from lab.sandbox import Bind, Limits
from lab.sandbox.bwrap import BwrapSandbox
from lab.sandbox.cgroups import Cgroups, detect
from lab.sandbox.users import DEFAULT_BASE, uid_base, uid_of

as_root = pytest.mark.skipif(os.geteuid() != 0, reason="a uid per agent needs the lab to run as root")
MACHINE = detect()
needs_cgroups = pytest.mark.skipif(not MACHINE.parents, reason="this machine offers no cgroups the lab can make")
needs_memory_cgroup = pytest.mark.skipif("memory" not in MACHINE.controllers,
                                         reason="this machine offers no memory cgroup the lab can make")

# Forks until refused, says so in /out/full, then holds its children until /out/done appears (at most 30 s).
SWARM = """
import os, sys, time
children = 0
try:
    for _ in range(10_000):
        if os.fork() == 0:
            time.sleep(30)
            os._exit(0)
        children += 1
except OSError as exc:
    print(f"fork refused after {children} children: {exc}", file=sys.stderr)
open("/out/full", "w").close()
deadline = time.monotonic() + 30
while not os.path.exists("/out/done") and time.monotonic() < deadline:
    time.sleep(0.1)
"""


def wait_for_file(path: Path, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not path.exists():
        assert time.monotonic() < deadline, f"timed out waiting for {path}"
        time.sleep(0.05)


def in_background(sandbox, argv, binds, limits, cancel=None) -> tuple[threading.Thread, dict]:
    got = {}
    thread = threading.Thread(target=lambda: got.update(result=sandbox.run(argv, binds, cwd=binds[0],
                                                                            limits=limits, cancel=cancel)))
    thread.start()
    return thread, got


def out_bind(folder: Path) -> Bind:
    folder.mkdir(exist_ok=True)
    return Bind(folder, "/out", writable=True)


# ---- uids -------------------------------------------------------------------------------------

def test_uids_come_from_the_users_subordinate_range(tmp_path):
    import pwd

    me = pwd.getpwuid(os.getuid()).pw_name
    (tmp_path / "subuid").write_text(f"someone:100000:65536\n{me}:300000:65536\n")
    (tmp_path / "passwd").write_text("root:x:0:0::/root:/bin/sh\n")
    assert uid_base(tmp_path) == 300000
    assert uid_of("scorer", tmp_path) == 300000 and uid_of("agent-9", tmp_path) == 300009


def test_uids_an_account_or_another_users_range_holds_are_refused(tmp_path):
    (tmp_path / "passwd").write_text(f"build:x:{DEFAULT_BASE + 3}:100::/home/build:/bin/sh\n")
    with pytest.raises(SandboxError, match=f"account 'build' \\({DEFAULT_BASE + 3}\\)"):
        uid_base(tmp_path)
    other = tmp_path / "other"
    other.mkdir()
    (other / "subgid").write_text(f"someone:{DEFAULT_BASE - 10}:20\n")
    with pytest.raises(SandboxError, match="someone's subordinate range"):
        uid_base(other)


def test_an_unknown_sandbox_user_is_refused():
    with pytest.raises(SandboxError, match="not a sandbox user"):
        uid_of("agent-0")
    with pytest.raises(SandboxError, match="not a sandbox user"):
        BwrapSandbox(user="mallory")


@requires_bwrap
@as_root
def test_each_agent_runs_as_a_uid_of_its_own(tmp_path):
    seen = {}
    for user in ("agent-1", "agent-2", "scorer"):
        sandbox = BwrapSandbox(user=user)
        out = out_bind(tmp_path / user)
        result = sandbox.run(["/bin/sh", "-c", "id -u; id -g"], [out], cwd=out, limits=Limits(timeout_s=20))
        assert result.ok, result.stderr
        seen[user] = result.stdout.split()
        assert seen[user] == [str(sandbox.uid)] * 2
    assert len({uid for uid, _ in seen.values()}) == 3 and "0" not in seen["agent-1"]


@requires_bwrap
@as_root
@pytest.mark.parametrize("cgroups", [None, Cgroups()], ids=["machine-cgroups", "rlimits-only"])
def test_one_agents_fork_swarm_leaves_another_agent_room(tmp_path, cgroups):
    """Agent-1's swarm holds every process it may have while agent-2, under the same limits, starts 8 of its own."""
    swarmer, other = BwrapSandbox(user="agent-1", cgroups=cgroups), BwrapSandbox(user="agent-2", cgroups=cgroups)
    limits = Limits(timeout_s=60, max_processes=16)
    swarm_out = out_bind(tmp_path / "swarm")
    thread, got = in_background(swarmer, [sys.executable, "-c", SWARM], [swarm_out], limits)
    try:
        wait_for_file(tmp_path / "swarm" / "full")
        out = out_bind(tmp_path / "other")
        result = other.run(["/bin/sh", "-c", "for i in $(seq 8); do sleep 1 & done; wait; echo all started"],
                           [out], cwd=out, limits=limits)
    finally:
        (tmp_path / "swarm" / "done").touch()
        thread.join(timeout=60)
    assert result.ok and result.stdout.strip() == "all started", result.stderr
    assert "fork refused" in got["result"].stderr, got["result"].stderr


# ---- cgroups ----------------------------------------------------------------------------------

@requires_bwrap
@needs_memory_cgroup
def test_a_memory_hog_is_killed_by_its_cgroup(tmp_path):
    hog = "chunks = [bytearray(b'x' * (16 << 20)) for _ in range(64)]"   # touches up to 1 GB, 16 MB at a time
    out = out_bind(tmp_path)
    result = BwrapSandbox(user="agent-1").run([sys.executable, "-c", hog], [out], cwd=out,
                                              limits=Limits(timeout_s=60, memory_mb=128))
    assert not result.ok and result.oom_killed
    assert "out of memory (limit 128 MB)" in result.failure()


@requires_bwrap
def test_without_cgroups_rlimits_bound_memory_and_the_run_is_reniced(tmp_path):
    from lab.sandbox.cgroups import RUN_NICE, autogroup_enabled

    hog = "chunks = [bytearray(b'x' * (16 << 20)) for _ in range(64)]"
    out = out_bind(tmp_path)
    sandbox = BwrapSandbox(user="agent-1", cgroups=Cgroups())
    result = sandbox.run([sys.executable, "-c", hog], [out], cwd=out, limits=Limits(timeout_s=60, memory_mb=128))
    assert not result.ok and not result.oom_killed
    assert "ran out of memory (limit 128 MB)" in result.failure()
    # bwrap's --new-session makes a new autogroup, and so may the command: each gets the run's nice
    looks = "nice; cat /proc/self/autogroup; sleep 1.5; setsid sh -c 'sleep 1.5; cat /proc/self/autogroup'"
    result = sandbox.run(["/bin/sh", "-c", looks], [out], cwd=out, limits=Limits(timeout_s=20))
    assert result.ok, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == str(RUN_NICE)
    if autogroup_enabled():
        assert lines[2].endswith(f"nice {RUN_NICE}") and lines[2] != lines[1], lines


@requires_bwrap
@as_root
@needs_cgroups
def test_every_process_of_a_run_is_in_its_cgroup_which_goes_with_the_run(tmp_path):
    sandbox = BwrapSandbox(user="agent-3")
    out, cancel = out_bind(tmp_path), threading.Event()
    thread, got = in_background(sandbox, ["/bin/sh", "-c", "sleep 60 & sleep 60 & touch /out/ready; wait"], [out],
                                Limits(timeout_s=60), cancel)
    try:
        wait_for_file(tmp_path / "ready")
        run_paths, commands = set(), _processes_of(sandbox.uid)
        assert len(commands) >= 3, commands    # sh and its two sleeps
        for pid in commands:
            lines = Path(f"/proc/{pid}/cgroup").read_text().splitlines()
            inside = [line.split(":", 2)[2] for line in lines if "/lab/agent-3/run-" in line]
            assert len(inside) == len(set(MACHINE.parents.values())), lines   # in each hierarchy the lab uses
            run_paths |= set(inside)
        assert len({Path(p).name for p in run_paths}) == 1, run_paths     # all in the one run's cgroup
        run_name = Path(run_paths.pop()).name
        for parent in set(MACHINE.parents.values()):
            members = {int(p) for p in (parent / "agent-3" / run_name / "cgroup.procs").read_text().split()}
            assert set(commands) < members   # and bwrap, which runs as root, too
            assert "bwrap" in {Path(f"/proc/{p}/comm").read_text().strip() for p in members - set(commands)}
    finally:
        cancel.set()
        thread.join(timeout=30)
    assert got["result"].cancelled
    for parent in set(MACHINE.parents.values()):
        assert not (parent / "agent-3" / run_name).exists()
    assert not _processes_of(sandbox.uid)


@requires_bwrap
@as_root
@needs_cgroups
def test_runs_of_one_group_share_one_cpu_weight(tmp_path):
    """Three of the scorer's runs busy on one core: two of agent-1's submissions' and one of agent-2's. Each group
    weighs the same, so agent-2's one run gets about as much CPU as agent-1's two together, not a third of it; each
    group's cgroup is inside the scorer's, and goes with its last run."""
    if "cpu" not in MACHINE.parents:
        pytest.skip("this machine offers no cgroup CPU control")
    sandbox = BwrapSandbox(user="scorer")
    burn = ["/bin/sh", "-c", "touch /out/$0; end=$(($(date +%s) + 5)); while [ $(date +%s) -lt $end ]; do :; done"]
    runs = []
    for name, group in (("a1", "agent-1"), ("a2", "agent-1"), ("b", "agent-2")):
        out = out_bind(tmp_path / name)
        runs.append(in_background(sandbox, burn[:3] + [name], [out], Limits(timeout_s=60, cpus=(0,), cpu_group=group)))
    for name in ("a1", "a2", "b"):
        wait_for_file(tmp_path / name / name)
    scorer = MACHINE.parents["cpu"] / "scorer"
    assert len(list((scorer / "agent-1").glob("run-*"))) == 2 and len(list((scorer / "agent-2").glob("run-*"))) == 1
    for thread, _ in runs:
        thread.join(timeout=60)
    used = [got["result"].cpu_used_s for _, got in runs]
    assert all(u is not None for u in used), used
    assert used[2] > 0.75 * (used[0] + used[1]), used      # alone in its group: half the core, not a third
    assert not (scorer / "agent-1").exists() and not (scorer / "agent-2").exists()


def _processes_of(uid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                status = (entry / "status").read_text()
            except OSError:
                continue
            uids = next(line.split()[1:] for line in status.splitlines() if line.startswith("Uid:"))
            if int(uids[0]) == uid:
                found.append(int(entry.name))
    return found


# ---- handing files over -----------------------------------------------------------------------

@requires_bwrap
@as_root
def test_hand_over_never_follows_a_planted_symlink(tmp_path):
    outside_file, outside_dir = tmp_path / "secret.txt", tmp_path / "elsewhere"
    outside_file.write_text("root's")
    outside_dir.mkdir()
    (outside_dir / "inner.txt").write_text("root's too")
    tree = tmp_path / "worktree"
    (tree / "sub").mkdir(parents=True)
    (tree / "sub" / "data.txt").write_text("the agent's")
    (tree / "link").symlink_to(outside_file)
    (tree / "sub" / "dirlink").symlink_to(outside_dir)
    (tree / "sub" / "dangling").symlink_to(tmp_path / "nothing")
    sandbox = BwrapSandbox(user="agent-4")

    sandbox.hand_over(tree)
    sandbox.hand_over(tree / "link")
    planted = Bind(tree / "sub" / "dirlink", "/out", writable=True)   # a run's writable bind that is a link
    sandbox.run(["/bin/true"], [planted], cwd=planted, limits=Limits(timeout_s=20))

    for untouched in (outside_file, outside_dir, outside_dir / "inner.txt", tmp_path):
        assert untouched.stat().st_uid == 0, untouched
    for given in (tree, tree / "sub", tree / "sub" / "data.txt", tree / "link", tree / "sub" / "dirlink"):
        assert given.lstat().st_uid == sandbox.uid, given


# ---- lab status -------------------------------------------------------------------------------

def test_lab_status_says_which_limits_hold(tmp_path):
    write_config(tmp_path)
    (tmp_path / ".lab").mkdir()    # prepared, never started: `lab status` reads it, creating nothing
    human = run_lab("status", cwd=tmp_path, check=True, timeout=120).stdout
    line = next(line for line in human.splitlines() if line.startswith("limits: "))
    assert ("cgroup v" in line) == bool(MACHINE.parents)
    assert line.endswith("; a method run: 60 s wall clock (timeout_s)")   # the test config's old key
    if os.geteuid() == 0 and "bwrap" in (tmp_path / "lab.toml").read_text():
        assert f"uid per agent ({uid_of('agent-1')}-{uid_of('agent-9')}, scorer {uid_of('scorer')})" in line
    as_json = run_lab("status", "--json", cwd=tmp_path, check=True, timeout=120).stdout
    assert f'"limits": "{line}"' in as_json


# ---- CPU time, not the machine's load ----------------------------------------------------------

BURN = "while True: pass"
WORK = "print(sum(i * i for i in range(4_000_000)))"    # a fixed amount of work: about 0.3 s of CPU here


def busy_loops(count: int, cpus: tuple[int, ...]) -> list[subprocess.Popen]:
    """Processes that keep `cpus` saturated, as nine agents' experiments would, at the person's priority."""
    return [subprocess.Popen([sys.executable, "-c", BURN], preexec_fn=lambda: os.sched_setaffinity(0, cpus))
            for _ in range(count)]


@requires_bwrap
@pytest.mark.parametrize("cgroups", [None, Cgroups()], ids=["machine-cgroups", "rlimits-only"])
def test_a_method_burning_cpu_is_stopped_at_the_cpu_limit(tmp_path, cgroups):
    out = out_bind(tmp_path)
    result = BwrapSandbox(user="scorer", cgroups=cgroups).run(
        [sys.executable, "-c", BURN], [out], cwd=out, limits=Limits(timeout_s=120, cpu_s=2))
    assert result.cpu_limited and not result.timed_out and not result.ok
    assert result.failure().startswith("stopped at its CPU-time limit of 2 s"), result.failure()
    assert 2 <= result.cpu_used_s < 4 and result.duration_s < 60


@requires_bwrap
@pytest.mark.parametrize("cgroups", [None, Cgroups()], ids=["machine-cgroups", "rlimits-only"])
def test_a_method_that_waits_past_the_old_wall_limit_completes(tmp_path, cgroups):
    """The old limit was 2 s of wall clock; the method sleeps 4 s, using almost no CPU: under the backstop it is fine."""
    out = out_bind(tmp_path)
    result = BwrapSandbox(user="scorer", cgroups=cgroups).run(
        ["/bin/sh", "-c", "sleep 4; echo done"], [out], cwd=out, limits=Limits(timeout_s=30, cpu_s=2))
    assert result.ok and result.stdout.strip() == "done", result.failure()
    assert result.duration_s >= 4 and (result.cpu_used_s is None or result.cpu_used_s < 2)


@requires_bwrap
def test_a_hung_method_is_stopped_at_the_wall_clock_backstop(tmp_path):
    out = out_bind(tmp_path)
    result = BwrapSandbox(user="scorer").run(["/bin/sh", "-c", "sleep 600"], [out], cwd=out,
                                             limits=Limits(timeout_s=3, cpu_s=2))
    assert result.timed_out and not result.cpu_limited
    assert result.failure().startswith("timed out after 3 s of wall-clock time, the backstop for hung runs"), \
        result.failure()


@requires_bwrap
@pytest.mark.parametrize("cgroups", [None, Cgroups()], ids=["machine-cgroups", "rlimits-only"])
def test_the_same_method_gets_the_same_verdict_beside_busy_processes(tmp_path, cgroups):
    """Quiet, then beside four busy loops on the same core: a fixed amount of work passes both times, a burner is
    stopped at its CPU limit both times, whatever the wall clock says."""
    core = (sorted(os.sched_getaffinity(0))[0],)
    sandbox = BwrapSandbox(user="scorer", cgroups=cgroups)
    limits = Limits(timeout_s=120, cpu_s=3, cpus=core)
    out = out_bind(tmp_path)

    def verdicts() -> dict[str, tuple[bool, str, float]]:
        got = {}
        for name, code in (("work", WORK), ("burn", BURN)):
            result = sandbox.run([sys.executable, "-c", code], [out], cwd=out, limits=limits)
            got[name] = (result.ok, "" if result.ok else result.failure().split(" (")[0], result.duration_s)
        return got

    quiet = verdicts()
    busy = busy_loops(4, core)
    try:
        time.sleep(0.5)
        loaded = verdicts()
    finally:
        for proc in busy:
            proc.kill()
            proc.wait()
    # the wall-clock times (the third item, shown on failure) differ with the load; the verdicts do not
    assert quiet["work"][:2] == loaded["work"][:2] == (True, ""), (quiet, loaded)
    assert quiet["burn"][:2] == loaded["burn"][:2] == (False, "stopped at its CPU-time limit of 3 s"), (quiet, loaded)


def test_the_scorers_limits_come_from_run_cpu_s_and_run_wall_s_and_the_old_key_keeps_its_meaning():
    from lab.config import ScorerSection
    from lab.scorer.runner import limits_from

    default = limits_from(ScorerSection())
    assert (default.cpu_s, default.timeout_s) == (180, 900)
    assert (limits_from(ScorerSection(run_cpu_s=60)).cpu_s, limits_from(ScorerSection(run_cpu_s=60)).timeout_s) == \
        (60, 300)
    both = limits_from(ScorerSection(run_cpu_s=60, run_wall_s=100))
    assert (both.cpu_s, both.timeout_s) == (60, 100)
    old = limits_from(ScorerSection(timeout_s=30))       # a lab.toml of before: the wall clock alone, as it was
    assert (old.cpu_s, old.timeout_s) == (None, 30)
    with pytest.raises(ValueError, match="timeout_s is the old name of scorer.run_wall_s"):
        ScorerSection(timeout_s=30, run_wall_s=100)


@requires_bwrap
def test_lab_score_names_the_cpu_limit_a_method_hit(lab_dir):
    from conftest import METHODS

    fast = lab_dir / "cpu-limited"
    fast.mkdir(exist_ok=True)
    config = write_config(fast, run_cpu_s=2, run_wall_s=60)
    text = config.read_text().replace("\ntimeout_s = 60\n", "\n").replace('[lab]\n', '[lab]\nstate_dir = "../.lab"\n')
    config.write_text(text)
    result = run_lab("--config", str(config), "score", "--method", str(METHODS / "burn.py"), cwd=lab_dir)
    assert result.returncode == 2
    assert "method rejected on the dev task, seed 0: stopped at its CPU-time limit of 2 s" in result.stderr, \
        result.stderr


@requires_bwrap
@pytest.mark.parametrize("cgroups", [None, Cgroups()], ids=["machine-cgroups", "rlimits-only"])
def test_a_sleeping_method_is_ended_as_hung_within_its_stall_window(tmp_path, cgroups):
    """It uses no CPU, so its CPU limit never stops it: the stall rule does, long before the backstop."""
    out = out_bind(tmp_path)
    result = BwrapSandbox(user="scorer", cgroups=cgroups).run(
        [sys.executable, "-c", "import time; time.sleep(600)"], [out], cwd=out,
        limits=Limits(timeout_s=120, cpu_s=60, stall_s=2))
    assert result.hung is not None and not result.timed_out and not result.ok and result.stopped_at_limit
    assert 2 <= result.duration_s < 6, result.duration_s
    assert result.failure().startswith("ended as hung after"), result.failure()
    assert "a run must use, or wait for, at least 1% of a core" in result.failure()


@requires_bwrap
def test_a_busy_method_beside_busy_processes_is_never_hung(tmp_path):
    """A method that works for longer than its stall window, on a core four busy loops share, is not hung."""
    core = (sorted(os.sched_getaffinity(0))[0],)
    out = out_bind(tmp_path)
    busy = busy_loops(4, core)
    try:
        result = BwrapSandbox(user="scorer").run(
            [sys.executable, "-c", "import time\nend = time.monotonic() + 5\nwhile time.monotonic() < end: pass"],
            [out], cwd=out, limits=Limits(timeout_s=60, cpu_s=30, stall_s=1, cpus=core))
    finally:
        for proc in busy:
            proc.kill()
            proc.wait()
    assert result.ok and result.hung is None, result.failure()


def test_a_gpu_run_gets_the_gpu_window():
    assert Limits(stall_s=2, gpu_stall_s=30).stall_window_s == 2
    assert Limits(stall_s=2, gpu_stall_s=30, gpu="0").stall_window_s == 30
    assert Limits(stall_s=2, gpu="0").stall_window_s == 2
