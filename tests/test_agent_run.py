"""An agent's `run` on one machine: its commit runs once through the local engine, in the agent's own sandbox and
uid, holding a slot of the GPU queue that the scorer's runs use, and its predictions and logs come back into the
worktree for `evaluate`. A run that fails is a tool error the agent reads, with the method's logs beside it."""
from __future__ import annotations

import json

from conftest import make_lab, requires_bwrap, run_lab, wait_for

pytestmark = requires_bwrap

METHOD = """\
import argparse, json, os
p = argparse.ArgumentParser()
p.add_argument("--data"); p.add_argument("--out"); p.add_argument("--seed", type=int); p.add_argument("--flip")
a = p.parse_args()
ids = [json.loads(line)["id"] for line in open(os.path.join(a.data, "test.jsonl"))]
with open(a.out, "w") as f:
    for key in ids:
        f.write(json.dumps({"id": key, "label": int(a.flip == "yes")}) + "\\n")
print("ENV " + json.dumps({"gpu": os.environ.get("CUDA_VISIBLE_DEVICES"), "uid": os.getuid(), "seed": a.seed,
                           "fraction": os.environ.get("LAB_GPU_MEMORY_FRACTION")}))
"""


def test_an_agents_run_queues_on_the_gpus_and_comes_back_for_evaluate(lab_dir, tmp_path):
    from lab.sandbox.users import uid_of

    turns = [
        {"step": "write", "calls": [{"name": "write_file", "arguments": {"path": "mine.py", "content": METHOD}},
                                    {"name": "git_commit", "arguments": {"message": "a method of my own"}}]},
        {"step": "run", "calls": [{"name": "run", "arguments": {"path": "mine.py", "seed": 3, "args": ["--flip", "yes"]}}]},
        {"step": "evaluate", "calls": [{"name": "evaluate", "arguments": {"predictions": "runs/run-1/predictions.jsonl"}}]},
        {"step": "broken", "calls": [{"name": "run", "arguments": {"path": "missing.py"}}]},
    ]
    folder = make_lab(lab_dir, tmp_path, turns, count=1, extra='\n[slices]\ngpus = ["7"]\n')
    run_lab("start", "--detach", cwd=folder, check=True)
    try:
        from lab.store import events, open_db, runs

        db = open_db(folder / ".lab" / "lab.db")
        wait_for(lambda: db.execute("SELECT count(*) FROM agent_runs WHERE state IN ('done', 'failed')").fetchone()[0]
                 == 2, timeout=180, what="the agent's two runs")
        done, failed = runs.get(db, 1), runs.get(db, 2)
        assert done["state"] == "done" and done["node"] == "local" and done["seed"] == 3, done
        outputs = folder / "sandboxes" / "agent-1" / "runs" / "run-1"
        shown = json.loads(next(ln for ln in (outputs / "stdout.txt").read_text().splitlines() if ln.startswith("ENV "))[4:])
        # the agent's own uid, a slot on the GPU the lab was given, the method's own seed and arguments
        assert shown == {"gpu": "7", "uid": uid_of("agent-1"), "seed": 3, "fraction": "0.5"}, shown
        predictions = [json.loads(line) for line in (outputs / "predictions.jsonl").read_text().splitlines()]
        assert predictions and all(p["label"] == 1 for p in predictions)
        wait_for(lambda: db.execute("SELECT count(*) FROM evaluations").fetchone()[0] == 1, what="the evaluation")
        assert failed["state"] == "failed" and "missing.py" in failed["reason"], failed
        run_results = lambda: [e["data"] for e in events.transcript(db, "agent-1", limit=500)
                               if e["kind"] == "tool_result" and e["data"]["name"] == "run"]
        told = wait_for(lambda: len(run_results()) == 2 and run_results(), what="what the agent was told")
        assert not told[0]["is_error"] and "runs/run-1/predictions.jsonl" in told[0]["output"], told
        assert told[1]["is_error"] and "missing.py" in told[1]["output"], told
        db.conn.close()
    finally:
        run_lab("stop", cwd=folder)
