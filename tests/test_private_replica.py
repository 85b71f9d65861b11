"""Ranking on data no agent has seen: nothing of the private replica (or of a held-out set) reaches an agent, and
`evaluate` is no label oracle.

A real lab of scripted agents evaluates, submits a method that prints every text it reads, reads its result, the
leaderboard and the forum, and runs its method; then every byte an agent could see (its data view and worktree, its
tool results and transcript, the notes the scorer sent it, the forum, its runner's log) is searched for the ids and
texts of the replica and the held-out sets. The single-flip attack goes through the real `evaluate` tool: with the
old exact answers it reads a label per handful of queries; with the lab's noise it claims next to none."""
from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np

from conftest import lab_status, make_lab, requires_bwrap, run_lab, wait_for

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))
from bench_leakage import Attacker, base_predictions, score, single_flips  # noqa: E402

pytestmark = requires_bwrap

# Prints every text of its data, train and test, then predicts half positive: its logs would carry whatever it read.
LEAKY = """\
import argparse, json, sys
p = argparse.ArgumentParser(); p.add_argument("--data"); p.add_argument("--out"); p.add_argument("--seed")
a = p.parse_args()
for split in ("train", "test"):
    for line in open(f"{a.data}/{split}.jsonl"):
        row = json.loads(line)
        print(row["id"], row["text"]); print(row["id"], row["text"], file=sys.stderr)
rows = [json.loads(line) for line in open(f"{a.data}/test.jsonl")]
with open(a.out, "w") as out:
    for i, r in enumerate(rows):
        out.write(json.dumps({"id": r["id"], "label": int(i % 2)}) + "\\n")
"""

TURNS = [
    {"step": "write", "calls": [{"name": "write_file", "arguments": {"path": "method.py", "content": LEAKY}}]},
    {"step": "commit", "calls": [{"name": "git_commit", "arguments": {"message": "a method that prints its data"}}]},
    {"step": "run", "calls": [{"name": "run", "arguments": {"commit": "HEAD", "seed": 0}}]},
    {"step": "evaluate", "calls": [{"name": "shell", "arguments": {
        "command": "python method.py --data $LAB_DATA --out p.jsonl --seed 0 > /dev/null 2>&1; ls p.jsonl"}},
                                   {"name": "evaluate", "arguments": {"predictions": "p.jsonl"}}]},
    {"step": "submit", "calls": [{"name": "submit", "arguments": {"commit": "HEAD", "wait_s": 600}}]},
    {"step": "read", "calls": [{"name": "submission", "arguments": {}}, {"name": "leaderboard", "arguments": {}},
                               {"name": "forum_read", "arguments": {}}]},
    {"step": "post", "calls": [{"name": "forum_post", "arguments": {
        "kind": "result", "title": "what I saw", "body": "the submission's result, as I was told it"}}]},
]


def needles(cfg) -> list[str]:
    """Ids and the starts of texts of every set no agent may see."""
    from lab.task import files
    from lab.task.testbed import Testbed

    testbed = Testbed(cfg.state_dir, cfg.task)
    found = []
    for name in cfg.task.checked:
        for view in (testbed.view(name), testbed.teacher_b_view(name)):
            for split in ("train", "test"):
                for row in files.read_jsonl(view / f"{split}.jsonl"):   # a few words may be in any text
                    found += [row["id"]] + ([row["text"][:40]] if len(row["text"]) >= 20 else [])
    return found


def agent_visible(folder: Path, cfg, name: str) -> str:
    """Every byte the agent could see: its data view, its worktree, its transcript (tool calls and results), the
    messages sent to it, the forum, and its runner's log."""
    from lab.store import commands, events, forum, open_db

    parts = []
    for root in (cfg.state_dir / "data", folder / "sandboxes" / name):
        parts += [p.read_bytes().decode(errors="replace") for p in root.rglob("*") if p.is_file() and ".git" not in
                  p.parts and p.suffix != ".npy"]
    db = open_db(cfg.state_dir / "lab.db")
    try:
        parts += [json.dumps(e) for e in events.transcript(db, name, limit=100000)]
        parts += [json.dumps(c) for c in commands.history(db, name)]
        parts += [json.dumps(p) for p in forum.recent(db, 1000)]
    finally:
        db.conn.close()
    log = cfg.run_dir / "logs" / f"{name}.log"
    parts.append(log.read_text(errors="replace") if log.exists() else "")
    return "\n".join(parts)


def test_nothing_of_the_replica_or_the_heldout_sets_reaches_an_agent(lab_dir, tmp_path):
    from lab import config

    folder = make_lab(lab_dir, tmp_path / "lab", TURNS, count=1)
    run_lab("start", "--detach", cwd=folder, check=True)
    try:
        wait_for(lambda: lab_status(folder)["agents"][0]["state"] in ("stopped", "stuck", "failed"), timeout=600,
                 what="the agent done with its script")
    finally:
        run_lab("stop", cwd=folder)
    cfg = config.load(folder / "lab.toml")
    seen = agent_visible(folder, cfg, "agent-1")
    assert "public dev PGR" in seen and "what I saw" in seen        # the control: its results are in what was searched
    from lab.task.testbed import Testbed
    public = Testbed(cfg.state_dir, cfg.task).test_ids(cfg.task.dev)
    assert sum(i in seen for i in public) > len(public) / 2         # the control: what it printed of its public data
    hidden = needles(cfg)
    assert len(hidden) > 1000
    leaked = [n for n in hidden if n in seen]
    assert not leaked, leaked[:5]


def test_the_single_flip_attack_through_the_real_evaluate_tool_reads_labels_only_from_exact_answers(lab_dir,
                                                                                                       tmp_path):
    from lab import config
    from lab.agents.tools import ToolContext, Toolbox
    from lab.sandbox import make_sandbox
    from lab.sandbox.workspace import Workspace
    from lab.scaffold.repo import research_repo_path
    from lab.scorer import oracle
    from lab.scorer.auth import KeyCredentials
    from lab.scorer.client import ScorerClient
    from lab.scorer.scorer import Scorer
    from lab.scorer.service import ScorerService
    from lab.store import agents, open_db
    from lab.task.testbed import Testbed

    folder = make_lab(lab_dir, tmp_path / "lab", [], count=1)
    cfg0 = config.load(folder / "lab.toml")
    testbed = Testbed.load(cfg0)
    ids, truth = testbed.test_ids(cfg0.task.dev), testbed.labels(cfg0.task.dev)
    part = [i for i in ids if oracle.in_part(i, "a")]
    base = base_predictions(testbed.view(cfg0.task.dev))
    targets = list(np.random.default_rng(0).permutation(part)[:8])
    recovered = {}
    for noise in (0.0, cfg0.scorer.evaluate_noise):
        scorer_cfg = cfg0.scorer.model_copy(update={"evaluate_noise": noise, "evaluate_budget": 1000})
        cfg = cfg0.model_copy(update={"scorer": scorer_cfg})
        sandbox = make_sandbox(cfg.lab.sandbox, warn=lambda line: None, user="agent-1")
        service = ScorerService(cfg, lambda db, cfg=cfg: Scorer(cfg, db, sandbox, testbed, progress=False))
        service.start_in_thread()
        db = open_db(cfg.state_dir / "lab.db")
        try:
            agents.ensure(db, "agent-1", "scripted", "attack", "cpu 0")
            workspace = Workspace.ensure(cfg.sandboxes_dir, research_repo_path(cfg.state_dir), "agent-1", sandbox)
            box = Toolbox(ToolContext(agent="agent-1", cfg=cfg, db=db, sandbox=sandbox, workspace=workspace,
                                      data_view=testbed.view(cfg.task.dev), scorer=ScorerClient(service.url, KeyCredentials(service.key))))
            attacker = Attacker(box, ids, "a")
            recovered[noise] = score(single_flips(attacker, base, targets, budget=80), truth)
            assert attacker.queries <= 80
        finally:
            service.stop()
            db.conn.close()
    exact, noisy = recovered[0.0], recovered[cfg0.scorer.evaluate_noise]
    assert exact[0] >= 6 and exact[1] == 0, exact          # exact answers: a label for a few queries
    assert noisy[0] - noisy[1] <= 1, noisy                  # with the noise: nothing beyond chance
