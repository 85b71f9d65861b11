"""Method runs on a Ray cluster, simulated on this machine (ray.cluster_utils: a head and nodes that declare their
CPUs and GPUs, all on loopback): a submission spread over the nodes and scored as on one machine, the baselines,
the ceilings kept on the head, an agent's `run`, the GPU share, a node killed mid-submission, and the proof that
no label ever entered the object store. One cluster serves the whole module (it takes seconds to start)."""
from __future__ import annotations

import json
import os
import pickle
import subprocess
import threading
from pathlib import Path

import psutil
import pytest

from conftest import LAB, make_lab, requires_bwrap, run_lab, wait_for

os.environ["RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"] = "0"   # Ray reads it on import: loopback stays loopback
import ray  # noqa: E402
from ray.cluster_utils import Cluster  # noqa: E402

pytestmark = requires_bwrap

LOOPBACK = ("127.0.0.1", "::1", "::ffff:127.0.0.1")
NODE = {"node_ip_address": "127.0.0.1", "object_store_memory": 120 * 1024 * 1024, "include_dashboard": False}
RAY_TOML = """
[cluster]
engine = "ray"
address = "{address}"
node_cache = "{cache}"
max_retries = 3
"""
SLOW_METHOD = """\
import argparse, json, os, time
p = argparse.ArgumentParser()
p.add_argument("--data"); p.add_argument("--out"); p.add_argument("--seed", type=int)
a = p.parse_args()
start = time.time()
time.sleep(float(os.environ.get("SLEEP", "2.5")))
ids = [json.loads(line)["id"] for line in open(os.path.join(a.data, "test.jsonl"))]
with open(a.out, "w") as f:
    for i, key in enumerate(ids):
        f.write(json.dumps({"id": key, "label": (i + a.seed) % 2}) + "\\n")
print("ENV " + json.dumps({"gpu": os.environ.get("CUDA_VISIBLE_DEVICES"),
                           "fraction": os.environ.get("LAB_GPU_MEMORY_FRACTION"), "start": start, "end": time.time()}))
"""


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    """A head (1 CPU) and two nodes: one with 1 CPU, one with 2 CPUs and a GPU (declared, not real)."""
    made = Cluster(initialize_head=True, head_node_args={**NODE, "num_cpus": 1})
    made.add_node(**NODE, num_cpus=1)
    made.add_node(**NODE, num_cpus=2, num_gpus=1)
    made.wait_for_nodes()
    made.connect(namespace="lab")       # this process is a driver too: the lab's engines made here share it
    made.cache = tmp_path_factory.mktemp("node-cache")
    yield made
    if ray.is_initialized():
        ray.shutdown()
    made.shutdown()


def ray_lab(lab_dir: Path, folder: Path, cluster, **agents) -> Path:
    """A lab of the session's testbed (copied) whose method runs go to the cluster."""
    extra = RAY_TOML.format(address=cluster.address, cache=cluster.cache)
    return make_lab(lab_dir, folder, agents.pop("turns", []), extra=extra, **agents)


def scorer_for(folder: Path):
    from lab import config
    from lab.sandbox import make_sandbox
    from lab.scorer.scorer import Scorer
    from lab.store import open_db

    cfg = config.load(folder / "lab.toml")
    return Scorer(cfg, open_db(cfg.state_dir / "lab.db"), make_sandbox(cfg.lab.sandbox, warn=lambda line: None),
                  progress=False)


def per_seed(result) -> dict[str, list[float]]:
    return {s.dataset: s.to_dict()["per_seed_acc"] for s in [result.dev, *result.heldout]}


def method_runs(scorer, submission_id: int) -> list[dict]:
    from lab.store import runs

    return runs.of_submission(scorer.db, submission_id)


def _views(scorer) -> list[Path]:
    """The data folders a submission's runs read: every set's, and the second teacher's of each set of the check."""
    task = scorer.cfg.task
    return [scorer.testbed.view(d) for d in task.scored] + [scorer.testbed.teacher_b_view(d) for d in task.checked]


def node_ids() -> set[str]:
    return {n["NodeID"] for n in ray.nodes() if n["Alive"]}


def test_the_baselines_spread_over_the_nodes_and_score_as_on_one_machine(lab_dir, tmp_path, cluster, scorer):
    """`lab score --baselines` through the cluster: each baseline a submission whose runs spread over the nodes."""
    from lab.scaffold import repo as research

    on_ray = scorer_for(ray_lab(lab_dir, tmp_path, cluster))
    assert on_ray.engine.name == "ray"
    [remote] = on_ray.score_baselines(["vanilla"])
    first = research.root_commit(research.create(scorer.cfg.state_dir)[0])
    local = scorer.submit("baseline", first, "methods/vanilla.py")
    assert per_seed(remote) == per_seed(local)          # the same method, seeds and data: the same predictions
    assert remote.following == local.following

    rows = method_runs(on_ray, remote.id)
    task, s = on_ray.cfg.task, on_ray.cfg.scorer
    runs_expected = s.seeds * len(task.scored) + s.check_seeds * len(task.checked)
    assert len(rows) == runs_expected and all(r["ok"] for r in rows)
    assert {r["node"] for r in rows} <= node_ids() and len({r["node"] for r in rows}) >= 2, rows
    assert {r["node"] for r in method_runs(scorer, local.id)} == {"local"}
    # each view file travels once, whatever the number of runs and submissions reading it (the views are the same
    # for every submission, so a second submission sends no data at all)
    shipped = on_ray.engine.shipper.put_count
    assert shipped == len({p.read_bytes() for v in _views(on_ray) for p in v.rglob("*") if p.is_file()})
    [second] = on_ray.score_baselines(["confident"])
    assert on_ray.engine.shipper.put_count == shipped and all(r["ok"] for r in method_runs(on_ray, second.id))
    cached = [p for p in Path(cluster.cache).glob("*/files/*")]
    assert cached and all(len(p.name) == 64 for p in cached)
    on_ray.db.conn.close()


def test_ceilings_run_on_the_head_and_match_the_local_ones(lab_dir, tmp_path, cluster, cfg):
    from lab import config
    from lab.prepare import ceiling_runs
    from lab.sandbox import make_sandbox
    from lab.scaffold import repo as research
    from lab.scorer import engines
    from lab.scorer.ceiling import fix_ceilings
    from lab.task.testbed import Testbed

    folder = ray_lab(lab_dir, tmp_path, cluster)
    ray_cfg = config.load(folder / "lab.toml")
    engine = engines.shared(ray_cfg)
    seen = []
    original = engine.run

    def watching(spec, jobs, done=None):      # what the engine ran, and where, read from its results
        found = original(spec, jobs, done)
        seen.extend((spec.private, run.node) for run in found)
        return found
    engine.run = watching
    repo, _ = research.create(ray_cfg.state_dir)
    sandbox = make_sandbox(ray_cfg.lab.sandbox, warn=lambda line: None)
    try:
        fixed = fix_ceilings(Testbed.load(ray_cfg), repo, engine, ceiling_runs(ray_cfg, sandbox),
                             ray_cfg.run_dir / "scorer", list(range(ray_cfg.task.seeds)), force=True)
    finally:
        engine.run = original
    assert len(seen) == len(ray_cfg.task.scored) * ray_cfg.task.seeds
    assert all(private and node == engine.head for private, node in seen), seen
    local = {d: Testbed(cfg.state_dir, cfg.task).baseline(d).ceiling_acc for d in cfg.task.scored}
    assert {b.dataset: b.ceiling_acc for b in fixed} == pytest.approx(local)


def test_labels_never_leave_the_head(lab_dir, tmp_path, cluster):
    """After a submission through the cluster, the object store of every node, read from the raylets' shared
    memory, holds the views that travelled (the control) and none of the private files: test labels, train labels,
    ground-truth views, baselines."""
    from lab.scaffold import repo as research
    from lab.scorer.engines.shipping import PrivateData, check_shippable

    on_ray = scorer_for(ray_lab(lab_dir, tmp_path, cluster))
    on_ray.submit("baseline", research.root_commit(research.create(on_ray.cfg.state_dir)[0]), "methods/vanilla.py")
    on_ray.db.conn.close()
    state = lab_dir / ".lab"
    control = (state / "data" / "rotten_tomatoes" / "train.jsonl").read_bytes().splitlines()[7]
    private = []
    for labels_file in sorted((state / "private").glob("*/labels.json")):
        for mapping in json.loads(labels_file.read_text()).values():
            items = dict(list(mapping.items())[:20])
            # as JSON (the file itself, or a dict sent as JSON) and as Ray would pickle a dict (protocol 5)
            private += [json.dumps(items).encode()[1:-1], json.dumps(items, indent=2).encode()[2:80],
                        pickle.dumps(items, protocol=5)[12:100]]
    for truth in sorted((state / "private").glob("*/ground_truth_view/train.jsonl")):
        view = truth.parent.parent / "view" / "train.jsonl"
        if not view.exists():
            view = state / "data" / truth.parent.parent.name / "train.jsonl"
        differing = [t for t, v in zip(truth.read_bytes().splitlines(), view.read_bytes().splitlines()) if t != v]
        assert differing, truth
        private += differing[:20]
    private += [b.read_bytes()[:120] for b in sorted((state / "private").glob("*/baselines.json"))]
    found = _in_object_stores([control, *private])
    assert control in found                      # the control: the views did travel, and the scan sees them
    assert not found & set(private), sorted(found & set(private))[:3]
    for refused in (state / "private" / "imdb", state / "private" / "imdb" / "ground_truth_view"):
        with pytest.raises(PrivateData):
            check_shippable(refused, state)
    check_shippable(state / "private" / "imdb" / "view", state)      # a held-out view travels: no labels in it


def test_the_cluster_listens_on_loopback_only(cluster):
    ours = {p.pid for p in psutil.Process().children(recursive=True)}
    listening = [c for c in psutil.net_connections(kind="inet") if c.status == psutil.CONN_LISTEN and c.pid in ours]
    assert listening, "no Ray process listens: the check would prove nothing"
    assert all(c.laddr.ip in LOOPBACK for c in listening), [(c.laddr, c.pid) for c in listening]


def test_runs_share_a_gpu_as_runs_per_gpu_says(lab_dir, tmp_path, cluster):
    from lab import config
    from lab.sandbox import Limits
    from lab.scorer import engines
    from lab.scorer.engines import MethodJob, RunSpec

    folder = ray_lab(lab_dir, tmp_path, cluster)
    text = (folder / "lab.toml").read_text().replace("[scorer]\n", "[scorer]\nruns_per_gpu = 2\n")
    (folder / "lab.toml").write_text(text)
    engine = engines.shared(config.load(folder / "lab.toml"))
    code = tmp_path / "code"
    code.mkdir()
    (code / "method.py").write_text(SLOW_METHOD.replace('"2.5"', '"1.5"'))
    spec = RunSpec(code, "method.py", "scorer", "gpu-test", Limits(timeout_s=60, max_processes=64), gpu=True)
    view = folder / ".lab" / "data" / "rotten_tomatoes"
    found = engine.run(spec, [MethodJob("rotten_tomatoes", view, seed) for seed in range(4)])
    gpu_node = next(n["NodeID"] for n in ray.nodes() if n["Alive"] and n["Resources"].get("GPU"))
    assert all(r.ok and r.node == gpu_node for r in found), "; ".join(f"{r.node}: {r.error}" for r in found)
    seen = [json.loads(next(ln for ln in r.result.stdout.splitlines() if ln.startswith("ENV "))[4:]) for r in found]
    assert all(s["gpu"] == "0" and s["fraction"] == "0.5" for s in seen), seen
    spans = sorted((s["start"], s["end"]) for s in seen)
    # the most runs at one moment (it peaks at some run's start): one run may overlap a run that ended and the
    # run that took its share, one after the other, and still never three at once
    at_once = max(sum(a <= start < b for a, b in spans) for start, _ in spans)
    assert at_once <= 2, spans       # two runs share the one GPU, never three


def test_an_agents_run_goes_through_the_cluster(lab_dir, tmp_path, cluster):
    turns = [{"step": "run", "calls": [{"name": "run", "arguments": {"seed": 1}}]},
             {"step": "evaluate", "calls": [{"name": "evaluate", "arguments": {
                 "predictions": "runs/run-1/predictions.jsonl"}}]}]
    folder = ray_lab(lab_dir, tmp_path, cluster, turns=turns, count=1)
    run_lab("start", "--detach", cwd=folder, check=True)
    try:
        from lab.store import open_db, runs

        db = open_db(folder / ".lab" / "lab.db")
        wait_for(lambda: db.execute("SELECT count(*) FROM evaluations").fetchone()[0] > 0, timeout=180,
                 what="the agent's evaluation of its run")
        row = runs.get(db, 1)
        assert row["state"] == "done" and row["node"] in node_ids() and row["outputs"], row
        assert (folder / "sandboxes" / "agent-1" / "runs" / "run-1" / "predictions.jsonl").is_file()
        status = run_lab("status", cwd=folder, check=True).stdout
        assert "cluster: ray at" in status and status.count("  node ") >= 3, status
        view = json.loads((folder / ".lab" / "run" / "cluster.json").read_text())
        assert view["engine"] == "ray" and len([n for n in view["nodes"] if n["alive"]]) >= 3
        db.conn.close()
    finally:
        run_lab("stop", cwd=folder)


def test_without_ray_the_engine_is_one_line(lab_dir, tmp_path, cluster):
    folder = ray_lab(lab_dir, tmp_path, cluster)
    shadow = tmp_path / "shadow" / "ray"
    shadow.mkdir(parents=True)
    (shadow / "__init__.py").write_text("raise ImportError('No module named ray')\n")
    env = {**os.environ, "PYTHONPATH": str(shadow.parent)}
    done = subprocess.run([*LAB, "score", "--method", str(tmp_path / "none.py")], cwd=folder, env=env,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 2, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "pip install -e '.[ray]'" in lines[0], done.stderr


def test_a_node_killed_mid_submission_has_its_runs_retried_elsewhere(lab_dir, tmp_path, cluster):
    folder = ray_lab(lab_dir, tmp_path, cluster)
    before = node_ids()
    doomed = cluster.add_node(**NODE, num_cpus=2)
    cluster.wait_for_nodes()
    [doomed_id] = node_ids() - before
    method = tmp_path / "slow"
    method.mkdir()
    (method / "method.py").write_text(SLOW_METHOD)
    scorer = scorer_for(folder)
    outcome = {}
    worker = threading.Thread(target=lambda: outcome.setdefault("result", scorer.score_path(method)), daemon=True)
    worker.start()
    wait_for(lambda: any(n["id"] == doomed_id and n["running"] for n in scorer.engine.snapshot()["nodes"]),
             timeout=120, interval=0.1, what="a run on the node about to die")
    cluster.remove_node(doomed, allow_graceful=False)
    worker.join(timeout=300)
    result = outcome["result"]
    rows = method_runs(scorer, result.id)
    assert all(r["ok"] for r in rows) and doomed_id not in {r["node"] for r in rows}, rows
    assert any(r["attempts"] > 1 for r in rows), rows
    assert scorer.engine.snapshot()["retried"] >= 1
    scorer.db.conn.close()


def _raylets() -> list[psutil.Process]:
    return [p for p in psutil.Process().children(recursive=True) if p.name() == "raylet"]


def _in_object_stores(patterns: list[bytes]) -> set[bytes]:
    """Which of these byte strings any node's object store holds (the raylets' shared-memory arenas, read once)."""
    import re

    assert all(len(p) >= 16 for p in patterns), patterns
    search = re.compile(b"|".join(re.escape(p) for p in sorted(set(patterns), key=len, reverse=True)))
    found: set[bytes] = set()
    for raylet in _raylets():
        for line in Path(f"/proc/{raylet.pid}/maps").read_text().splitlines():
            if "/dev/shm/plasma" not in line:
                continue
            low, high = (int(x, 16) for x in line.split()[0].split("-"))
            with open(f"/proc/{raylet.pid}/mem", "rb") as memory:
                memory.seek(low)
                found.update(m.group() for m in search.finditer(memory.read(high - low)))
    return found
