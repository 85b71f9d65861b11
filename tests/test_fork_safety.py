"""No lab process forks with Python code in the child while other threads run: sandboxed runs start through an
exec-time launcher (lab/sandbox/launch.py), and the daemons that start processes load their BLAS with no thread pool.

Before the launcher, run_limited passed a preexec_fn: CPython then forked holding the GIL, through OpenBLAS's fork
handler, which waits for OpenBLAS's pool; a thread inside a matmul at that moment waited for the GIL, and the whole
process froze (issue 19: the supervisor, while its scorer computed zero-shot scores)."""
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from conftest import lab_status, make_lab, requires_bwrap, run_lab, wait_for
from lab.errors import SandboxError
from lab.sandbox.base import Limits, run_limited

ROOT = Path(__file__).resolve().parents[1]

# Two threads multiply matrices on a BLAS with a thread pool while three others start runs through run_limited.
# With the old preexec_fn this froze within seconds on 5 tries of 6 on a 2-core machine (see issue 19's note).
MATMULS_BESIDE_STARTS = textwrap.dedent("""
    import os, sys, threading, time
    import numpy as np
    from lab.sandbox.base import Limits, run_limited

    stop = threading.Event()

    def matmuls():
        a = np.random.rand(512, 512)
        while not stop.is_set():
            a @ a

    def starts(n):
        for _ in range(n):
            result = run_limited(["true"], Limits(timeout_s=60), env={"PATH": os.environ["PATH"]})
            assert result.ok, result.failure()

    multiplying = [threading.Thread(target=matmuls) for _ in range(2)]
    starting = [threading.Thread(target=starts, args=(int(sys.argv[1]),)) for _ in range(3)]
    for thread in multiplying + starting:
        thread.start()
    for thread in starting:
        thread.join()
    stop.set()
    for thread in multiplying:   # joined: OpenBLAS's exit handler waits for a thread left inside a matmul
        thread.join()
    print("every run started and ended", flush=True)
""")


@pytest.mark.parametrize("attempt", range(3))
def test_runs_start_beside_a_thread_in_blas_without_freezing(attempt):
    env = {**os.environ, "OPENBLAS_NUM_THREADS": "4", "OMP_NUM_THREADS": "4", "PYTHONPATH": str(ROOT)}
    try:
        done = subprocess.run([sys.executable, "-c", MATMULS_BESIDE_STARTS, "150"], env=env, capture_output=True,
                              text=True, timeout=150)
    except subprocess.TimeoutExpired:
        pytest.fail("450 runs started beside a thread in BLAS did not end within 150 s: the process froze")
    assert done.returncode == 0, done.stderr[-2000:]
    assert "every run started and ended" in done.stdout


def test_nothing_in_the_lab_forks_with_a_preexec_fn():
    found = [f"{path.relative_to(ROOT)}:{n}" for path in (ROOT / "lab").rglob("*.py")
             for n, line in enumerate(path.read_text().splitlines(), 1) if "preexec_fn=" in line]
    assert not found, f"preexec_fn runs Python code in a forked child of a threaded process: {found}"


def test_a_launch_that_cannot_set_up_is_a_sandbox_error_and_the_command_cannot_fake_one():
    with pytest.raises(SandboxError, match="cannot start the run under its limits: OSError"):
        run_limited(["true"], Limits(timeout_s=30, cpus=(4095,)), env={"PATH": os.environ["PATH"]})
    # a command that exits as the launcher does on failure, and writes what it would: a failed command, no more
    fake = run_limited([sys.executable, "-c", "import os, sys; os.write(2, b'OSError: no'); sys.exit(125)"],
                       Limits(timeout_s=30), env={"PATH": os.environ["PATH"]})
    assert fake.returncode == 125 and not fake.ok


def test_the_launcher_applies_every_limit_before_the_command_starts():
    probe = ("import json, os, resource as r; print(json.dumps([r.getrlimit(r.RLIMIT_NPROC), r.getrlimit(r.RLIMIT_FSIZE), "
             "r.getrlimit(r.RLIMIT_CPU), r.getrlimit(r.RLIMIT_CORE), sorted(os.sched_getaffinity(0)), "
             "os.getpriority(os.PRIO_PROCESS, 0)]))")
    limits = Limits(timeout_s=30, cpu_s=7, max_processes=33, max_file_mb=2, cpus=(0,))
    result = run_limited([sys.executable, "-c", probe], limits, env={"PATH": os.environ["PATH"]}, user="agent-1")
    assert result.ok, result.failure()
    nproc, fsize, cpu, core, cpus, nice = json.loads(result.stdout)
    assert nproc == [33, 33] and fsize == [2 * 1024 * 1024] * 2 and core == [0, 0]
    assert cpu == [9, 10]      # cpu_s and 2 s of slack, then SIGKILL a second later
    assert cpus == [0]
    assert nice >= 5           # a run's nice where no cpu cgroup weighs it, or at least the lab's own


@requires_bwrap
def test_the_lab_daemons_run_blas_on_one_thread_and_the_zygote_forks_alone(lab_dir, tmp_path):
    turns = [{"step": "wait", "calls": [{"name": "shell", "arguments": {"command": "sleep 1"}}]}]
    folder = make_lab(lab_dir, tmp_path / "lab", turns, repeat=True, count=2)
    run_lab("start", "--detach", cwd=folder, check=True)
    try:
        wait_for(lambda: all(a["state"] == "running" for a in lab_status(folder)["agents"]), timeout=60,
                 what="both agents running")
        supervisor = lab_status(folder)["supervisor_pid"]
        import psutil

        daemons = [psutil.Process(supervisor), *psutil.Process(supervisor).children(recursive=True)]
        lab_daemons = [p for p in daemons if any(m in " ".join(p.cmdline()) for m in
                                                 ("lab.agents.supervisor", "lab.agents.zygote", "lab.agents.runner"))]
        assert len(lab_daemons) >= 4, [p.cmdline() for p in daemons]     # supervisor, zygote, two runners
        for proc in lab_daemons:
            environ = proc.environ()
            assert environ.get("OPENBLAS_NUM_THREADS") == "1" and environ.get("OMP_NUM_THREADS") == "1", \
                (proc.cmdline(), {k: v for k, v in environ.items() if k.endswith("_THREADS")})
        zygote = next(p for p in lab_daemons if "lab.agents.zygote" in " ".join(p.cmdline()))
        assert zygote.num_threads() == 1, "the zygote forks runners: it must have no thread but its own"
    finally:
        run_lab("stop", cwd=folder, check=True)
