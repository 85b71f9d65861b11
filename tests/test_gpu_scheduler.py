"""The scorer's GPU queue with fake GPU ids, real threads and real files; and its wiring into the scorer."""
from __future__ import annotations

import json
import threading
import time

import pytest

from conftest import have_bwrap
from lab.scorer.gpus import GpuScheduler, read_queue, shared_scheduler
from lab.state_layout import RunFolder


def wait_until(predicate, timeout: float = 10.0, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.005)
    raise AssertionError(f"timed out waiting for {what}")


def test_env_gives_the_gpu_and_the_memory_fraction(tmp_path):
    scheduler = GpuScheduler(["0", "1"], runs_per_gpu=2, state_file=RunFolder(tmp_path).gpu_queue)
    with scheduler.slot("a") as first, scheduler.slot("b") as second, scheduler.slot("c") as third:
        assert first == {"CUDA_VISIBLE_DEVICES": "0", "LAB_GPU_MEMORY_FRACTION": "0.5"}
        assert second["CUDA_VISIBLE_DEVICES"] == "1"          # the least busy GPU first
        assert third["CUDA_VISIBLE_DEVICES"] == "0"
        assert scheduler.snapshot()["gpus"] == {"0": {"running": ["a", "c"], "slots": 2, "queue": 0},
                                               "1": {"running": ["b"], "slots": 2, "queue": 0}}
    with GpuScheduler(["MIG-abc"], runs_per_gpu=3, memory_fraction=0.3).slot("x") as env:
        assert env == {"CUDA_VISIBLE_DEVICES": "MIG-abc", "LAB_GPU_MEMORY_FRACTION": "0.3"}
    with GpuScheduler(["0"]).slot("x") as env:
        assert env["LAB_GPU_MEMORY_FRACTION"] == "1"
    with pytest.raises(ValueError):
        GpuScheduler(["0"], runs_per_gpu=0)
    with pytest.raises(ValueError):
        GpuScheduler(["0"], memory_fraction=1.5)


def test_never_more_than_runs_per_gpu_on_a_gpu(tmp_path):
    scheduler = GpuScheduler(["0", "1"], runs_per_gpu=2, state_file=RunFolder(tmp_path).gpu_queue)
    lock = threading.Lock()
    now = {"0": 0, "1": 0}
    most = {"0": 0, "1": 0}
    most_total = [0]

    def job(i: int) -> None:
        with scheduler.slot(f"run {i}") as env:
            gpu = env["CUDA_VISIBLE_DEVICES"]
            with lock:
                now[gpu] += 1
                most[gpu] = max(most[gpu], now[gpu])
                most_total[0] = max(most_total[0], sum(now.values()))
            time.sleep(0.02 + (i % 3) * 0.005)
            with lock:
                now[gpu] -= 1

    threads = [threading.Thread(target=job, args=(i,)) for i in range(24)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert not any(t.is_alive() for t in threads)
    assert max(most.values()) <= 2 and most_total[0] <= 4
    final = json.loads((RunFolder(tmp_path).gpu_queue).read_text())
    assert final["totals"] == {"gpus": 2, "slots": 4, "running": 0, "waiting": 0, "finished": 24}
    assert all(row["running"] == [] for row in final["gpus"].values())


def test_waiters_are_admitted_in_order_and_the_file_shows_the_queue(tmp_path):
    path = RunFolder(tmp_path / "run").gpu_queue
    scheduler = GpuScheduler(["0"], runs_per_gpu=1, state_file=path)
    started = time.time()
    admitted: list[str] = []
    lock = threading.Lock()

    def job(label: str) -> None:
        with scheduler.slot(label):
            with lock:
                admitted.append(label)
            time.sleep(0.005)

    labels = [f"agent-{i} dev seed 0" for i in range(6)]
    holder = scheduler.slot("holder")
    holder.__enter__()
    threads = []
    for i, label in enumerate(labels):    # each joins the queue before the next starts: a known order
        threads.append(threading.Thread(target=job, args=(label,)))
        threads[-1].start()
        wait_until(lambda: len(scheduler.snapshot()["waiting"]) == i + 1, what=f"{label} waiting")

    snap = scheduler.snapshot()
    assert snap["gpus"]["0"]["running"] == ["holder"] and snap["waiting"] == labels
    assert snap["gpus"]["0"]["queue"] == 6 and snap["totals"]["running"] == 1
    on_disk = read_queue(path.parent, since=started)
    assert on_disk is not None and on_disk["waiting"] == labels and on_disk["gpus"]["0"]["running"] == ["holder"]
    assert on_disk["updated"] >= started and on_disk["pid"] > 0
    assert read_queue(path.parent, since=time.time() + 60) is None   # older than the supervisor's start
    assert [p.name for p in path.parent.iterdir()] == [path.name]    # no temporary file left behind

    holder.__exit__(None, None, None)
    for t in threads:
        t.join(30)
    assert admitted == labels
    assert read_queue(path.parent, since=started)["totals"]["finished"] == 7


def test_without_gpus_a_slot_never_blocks_and_writes_nothing(tmp_path):
    scheduler = GpuScheduler([], runs_per_gpu=1, state_file=RunFolder(tmp_path).gpu_queue)
    count = 8
    barrier = threading.Barrier(count, timeout=10)   # every run inside its slot at once, or this breaks
    envs = []

    def job(i: int) -> None:
        with scheduler.slot(f"cpu {i}") as env:
            envs.append(env)
            barrier.wait()

    threads = [threading.Thread(target=job, args=(i,)) for i in range(count)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert envs == [{"CUDA_VISIBLE_DEVICES": ""}] * count
    assert not barrier.broken
    assert not (RunFolder(tmp_path).gpu_queue).exists() and read_queue(tmp_path, since=None) is None


def test_read_queue_treats_missing_or_broken_files_as_no_queue(tmp_path):
    assert read_queue(tmp_path, since=None) is None
    (RunFolder(tmp_path).gpu_queue).write_text("{not json")
    assert read_queue(tmp_path, since=None) is None
    (RunFolder(tmp_path).gpu_queue).write_text(json.dumps([1, 2]))
    assert read_queue(tmp_path, since=None) is None


def test_one_scheduler_per_lab_in_a_process(tmp_path):
    first = shared_scheduler(tmp_path / "run", ["0", "1"])
    assert shared_scheduler(tmp_path / "run", ["0", "1"]) is first
    assert shared_scheduler(tmp_path / "other", ["0", "1"]) is not first
    assert shared_scheduler(tmp_path / "run", ["0", "1"], runs_per_gpu=2).runs_per_gpu == 2
    assert (RunFolder(tmp_path / "run").gpu_queue).exists()     # written when made: `lab status` sees the GPUs at once


METHOD = """\
import argparse, json, os, sys, time
p = argparse.ArgumentParser()
p.add_argument("--data"); p.add_argument("--out"); p.add_argument("--seed", type=int)
a = p.parse_args()
start = time.time()
time.sleep(0.3)
ids = [json.loads(line)["id"] for line in open(os.path.join(a.data, "test.jsonl"))]
with open(a.out, "w") as f:
    for i in ids:
        f.write(json.dumps({"id": i, "label": 0}) + "\\n")
print("ENV " + json.dumps({"gpu": os.environ.get("CUDA_VISIBLE_DEVICES"),
                           "fraction": os.environ.get("LAB_GPU_MEMORY_FRACTION"),
                           "start": start, "end": time.time()}), file=sys.stderr)
"""


def test_scorer_runs_queue_on_the_configured_gpus(tmp_path):
    from lab import config
    from lab.sandbox import make_sandbox
    from lab.scorer.engines import MethodJob
    from lab.scorer.methods import MethodTree
    from lab.scorer.scorer import Scorer

    kind = "bwrap" if have_bwrap() else "none"
    cfg = config.parse({"lab": {"sandbox": kind}, "slices": {"gpus": ["7"]},
                        "scorer": {"parallel": 3, "timeout_s": 60}}, root=tmp_path)
    data = tmp_path / "data"
    data.mkdir()
    ids = [f"t{i}" for i in range(5)]
    (data / "test.jsonl").write_text("".join(json.dumps({"id": i, "text": "x"}) + "\n" for i in ids))
    code = tmp_path / "method"
    code.mkdir()
    (code / "method.py").write_text(METHOD)
    sandbox = make_sandbox(kind, warn=lambda line: None)
    scorer = Scorer(cfg, db=None, sandbox=sandbox, testbed=object(), progress=False)
    again = Scorer(cfg, db=None, sandbox=sandbox, testbed=object(), progress=False)
    assert scorer.engine is again.engine and scorer.engine.gpus.gpus == ["7"]   # one queue for every request's Scorer

    tree = MethodTree(code, "method.py", "hash", None)
    runs = scorer._run_all(tree, [MethodJob("dev", data, seed) for seed in range(3)], agent="agent-1")
    assert all(r.ok for r in runs), [r.error for r in runs]
    seen = [json.loads(next(ln for ln in r.result.stderr.splitlines() if ln.startswith("ENV "))[4:]) for r in runs]
    # nine agents on the one GPU keep one share of ten for the scorer's runs
    assert all(s["gpu"] == "7" and s["fraction"] == "0.1" for s in seen)
    spans = sorted((s["start"], s["end"]) for s in seen)
    # three threads, one slot on GPU 7: the runs never overlapped
    assert all(later[0] >= earlier[1] for earlier, later in zip(spans, spans[1:]))
    final = read_queue(cfg.run_dir, since=None)
    assert final["totals"]["finished"] == 3 and final["waiting"] == []


def test_load_line_shows_the_queue_beside_each_gpu():
    from lab.machine import GpuLoad, Load
    from lab.tui.widgets.load_line import render_load

    load = Load(cpu_percent=41.0, cpus=16, memory_used_mb=52_000, memory_total_mb=131_072,
                gpus=[GpuLoad(0, "NVIDIA H200", 87.0, 61_440, 143_771)])
    assert "queue" not in render_load(load).plain
    queue = {"gpus": {"0": {"running": ["agent-1 dev seed 0"], "slots": 1, "queue": 3},
                      "MIG-1234567890abcdef": {"running": [], "slots": 2, "queue": 3}}}
    plain = render_load(load, queue).plain
    assert "GPU0  87%" in plain and "run 1/1 queue 3" in plain
    assert "GPU MIG-12345678 run 0/2 queue 3" in plain
