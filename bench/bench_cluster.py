"""The same submissions through the local engine and through Ray with 1, 2 and 4 simulated nodes on this machine:
runs per minute, and Ray's overhead per run.

    python bench/bench_cluster.py [--submissions 2] [--overhead-runs 15] [--nodes 1,2,4] [--config lab.toml]
                                  [--state .lab]

Each configuration runs in a process of its own (Ray is initialised once per process) on a copy of the testbed
(prepared with `lab init` first if missing). Throughput: `--submissions` submissions of the scaffold's vanilla
baseline (every seed, held-out set and counterfactual teacher). Overhead: a method that only writes its
predictions (about 0.2 s in the sandbox) run `--overhead-runs` times one after another; a run's overhead is its
latency, from handing it to the engine to having its result, minus the time its sandboxed process ran. The Ray
overhead reported is the mean Ray overhead minus the local engine's. A simulated node declares one CPU per core
it is given; with more nodes than cores, runs share the cores, so runs per minute measure the engine, not the
machine.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_lab import ROOT, copy_testbed, ensure_testbed  # noqa: E402

TRIVIAL = """\
import argparse, json, os
p = argparse.ArgumentParser()
p.add_argument("--data"); p.add_argument("--out"); p.add_argument("--seed", type=int)
a = p.parse_args()
with open(os.path.join(a.data, "test.jsonl")) as f, open(a.out, "w") as out:
    for line in f:
        out.write(json.dumps({"id": json.loads(line)["id"], "label": 1}) + "\\n")
"""


def one(engine: str, nodes: int, state: Path, submissions: int, overhead_runs: int) -> dict:
    """One configuration, measured in this process."""
    cluster = None
    with tempfile.TemporaryDirectory(prefix="lab-bench-cluster-") as tmp:
        folder = Path(tmp)
        copy_testbed(state, folder / ".lab")
        toml = (ROOT / "lab.toml").read_text().split("\n[cluster]")[0]
        if engine == "ray":
            os.environ["RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"] = "0"     # loopback stays loopback
            from ray.cluster_utils import Cluster

            cores = os.cpu_count() or 1
            shares = [max(1, cores // nodes)] * nodes
            common = {"node_ip_address": "127.0.0.1", "include_dashboard": False,
                      "object_store_memory": 400 * 1024 * 1024}
            cluster = Cluster(initialize_head=True, head_node_args={**common, "num_cpus": shares[0]})
            for share in shares[1:]:
                cluster.add_node(**common, num_cpus=share)
            cluster.wait_for_nodes()
            toml += (f'\n[cluster]\nengine = "ray"\naddress = "{cluster.address}"\n'
                     f'node_cache = "{folder / "node-cache"}"\n')
        (folder / "lab.toml").write_text(toml)
        try:
            return _measure(folder, submissions, overhead_runs)
        finally:
            if cluster is not None:
                import ray

                ray.shutdown()
                cluster.shutdown()


def _measure(folder: Path, submissions: int, overhead_runs: int) -> dict:
    from lab import config
    from lab.sandbox import make_sandbox
    from lab.scaffold import repo as research
    from lab.scorer.engines import MethodJob
    from lab.scorer.methods import MethodTree
    from lab.scorer.scorer import Scorer
    from lab.store import open_db

    cfg = config.load(folder / "lab.toml")
    scorer = Scorer(cfg, open_db(cfg.state_dir / "lab.db"), make_sandbox(cfg.lab.sandbox, warn=lambda line: None),
                    progress=False)
    first = research.root_commit(research.create(cfg.state_dir)[0])
    code = folder / "trivial"
    code.mkdir()
    (code / "method.py").write_text(TRIVIAL)
    os.chmod(code, 0o755)
    spec = scorer.spec(MethodTree(code, "method.py", "trivial", None), "bench")
    view = scorer.testbed.view(cfg.task.dev)
    overheads = []
    for i in range(overhead_runs + 1):
        start = time.perf_counter()
        run = scorer.engine.run(spec, [MethodJob(cfg.task.dev, view, i)])[0]
        latency = time.perf_counter() - start
        assert run.ok, run.error
        if i:       # the first run fills the caches (code, views on the node)
            overheads.append(latency - run.result.duration_s)
    start = time.perf_counter()
    runs = 0
    for _ in range(submissions):
        result = scorer.submit("baseline", first, "methods/vanilla.py")
        runs += len(list(scorer.db.query("SELECT id FROM method_runs WHERE submission_id = ?", [result.id])))
    minutes = (time.perf_counter() - start) / 60
    nodes = {r[0] for r in scorer.db.execute("SELECT DISTINCT node FROM method_runs").fetchall()}
    return {"runs": runs, "runs_per_minute": runs / minutes, "overhead_s": statistics.mean(overheads),
            "overhead_p90_s": sorted(overheads)[int(0.9 * (len(overheads) - 1))], "nodes_used": len(nodes),
            "load": os.getloadavg()[0]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--submissions", type=int, default=2)
    parser.add_argument("--overhead-runs", type=int, default=15)
    parser.add_argument("--nodes", default="1,2,4")
    parser.add_argument("--config", type=Path, default=ROOT / "lab.toml")
    parser.add_argument("--state", type=Path, default=ROOT / ".lab")
    parser.add_argument("--one", help=argparse.SUPPRESS)      # engine:nodes, measured in this process
    args = parser.parse_args()
    if args.one:
        engine, nodes = args.one.split(":")
        print(json.dumps(one(engine, int(nodes), args.state, args.submissions, args.overhead_runs)))
        return
    ensure_testbed(args.config, args.state)
    configs = [("local", 1)] + [("ray", int(n)) for n in args.nodes.split(",")]
    print(f"{os.cpu_count()} cores; {args.submissions} submissions of vanilla each; overhead over "
          f"{args.overhead_runs} runs of a method that only writes its predictions")
    print(f"{'engine':<16} {'runs':>5} {'runs/min':>9} {'overhead/run':>13} {'p90':>7} {'nodes used':>11} {'load':>5}")
    local = None
    for engine, nodes in configs:
        done = subprocess.run([sys.executable, __file__, "--one", f"{engine}:{nodes}", "--state", str(args.state),
                               "--submissions", str(args.submissions), "--overhead-runs", str(args.overhead_runs)],
                              capture_output=True, text=True, cwd=ROOT)
        if done.returncode != 0:
            print(f"{engine} {nodes}: failed\n{done.stderr[-2000:]}")
            continue
        r = json.loads(done.stdout.strip().splitlines()[-1])
        name = "local" if engine == "local" else f"ray, {nodes} node{'s' if nodes > 1 else ''}"
        extra = "" if local is None else f" (+{r['overhead_s'] - local:.3f})"
        print(f"{name:<16} {r['runs']:>5} {r['runs_per_minute']:>9.1f} {r['overhead_s']:>8.3f} s{extra:<10} "
              f"{r['overhead_p90_s']:>6.3f} {r['nodes_used']:>11} {r['load']:>5.1f}")
        if engine == "local":
            local = r["overhead_s"]


if __name__ == "__main__":
    main()
