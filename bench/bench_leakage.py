"""Measures what an agent learns of hidden labels through the real `evaluate` tool at the full budget, with the
strongest attacks this bench knows, and what reaches it of the private replica and the held-out sets at all.

    python bench/bench_leakage.py [--config lab.toml] [--state .lab] [--queries N] [--agents 9] [--exact]

An attacking agent (a real Toolbox in a real worktree, against a real scorer service) starts from what it can compute
without labels: a probe trained on its teacher's labels, about 70 % right. Each attack spends N evaluations (default:
[scorer] evaluate_budget, one agent-hour) on one half of the public test texts (part "a", the smaller set, where one
text weighs most), then claims labels. What the claims are worth is counted in labels: a claim right with probability
p carries 1 - H(p) of a label (all right: one label each; right as often as wrong: nothing). The attacks:

- single flips: the base predictions asked often, then each target text flipped alone, asked until the difference is
  clear or its share of the budget is spent;
- subset queries: random halves of a set of target texts flipped together, every answer one equation; least squares
  gives each text's effect (this is the strongest: with enough queries per target it recovers every one);
- boundary probing: a prediction file brought to where its rounded answer changes, then one text flipped at a time
  (which reads a label per query from an exact, rounded answer; with the noise its claims are right as often as
  wrong).

Each runs with the lab's answers (noise of `evaluate_noise` texts) and, with --exact, with exact answers (as the lab
gave them before, rounded to 3 decimals here), for comparison. --agents says how many agents pool what they learn: the
figure for the lab is that many agent-hours. Then the private replica and the held-out sets: no answer any tool gives
draws on them; the bench searches every byte the attacking agent was shown (tool outputs and data) for their texts and
ids, and prints what it found.
"""
from __future__ import annotations

import argparse
import json
import math
import sys
import tempfile
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_lab import ROOT, copy_testbed, ensure_testbed  # noqa: E402

Z = 3.0


class Attacker:
    """An agent whose only way to its labels is the evaluate tool: writes a predictions file, asks, reads the answer."""

    def __init__(self, box, ids: list[str], part: str):
        self.box, self.ids, self.part = box, ids, part
        self.queries, self.shown = 0, []

    def ask(self, labels: dict[str, int]) -> float:
        from lab.agents.turns import ToolCall

        content = "".join(json.dumps({"id": i, "label": int(labels[i])}) + "\n" for i in self.ids)
        self.box.ctx.workspace.write("attack.jsonl", content)
        result = self.box.execute(ToolCall("q", "evaluate", {"predictions": "attack.jsonl", "part": self.part}))
        self.queries += 1
        self.shown.append(result.output)
        if result.is_error:
            raise RuntimeError(result.output)
        return float(result.data["acc"]) * result.data["texts"]       # correct predictions, as told


def single_flips(attacker: Attacker, base: dict[str, int], targets: list[str], budget: int) -> dict[str, int]:
    """Claims: text -> label, for the targets whose flip made a clear difference."""
    reference = [attacker.ask(base) for _ in range(budget // 5)]
    mean0, var0 = float(np.mean(reference)), float(np.var(reference, ddof=1))
    claims, per_target = {}, max(2, (budget - len(reference)) // max(1, len(targets)))
    for text in targets:
        if attacker.queries >= budget:
            break
        flipped = {**base, text: 1 - base[text]}
        answers = [attacker.ask(flipped) for _ in range(min(per_target, budget - attacker.queries))]
        if len(answers) < 2:
            break
        diff = float(np.mean(answers)) - mean0           # +1: the flip made it right; -1: it made it wrong
        se = math.sqrt(var0 / len(answers) + var0 / len(reference))
        if se > 0 and abs(diff) / se >= Z:
            claims[text] = 1 - base[text] if diff > 0 else base[text]
        elif se == 0 and diff:
            claims[text] = 1 - base[text] if diff > 0 else base[text]
    return claims


def subset_queries(attacker: Attacker, base: dict[str, int], targets: list[str], budget: int,
                   rng: np.random.Generator) -> dict[str, int]:
    """Random halves of the targets flipped per query; least squares over every answer."""
    rows, answers = [], []
    for _ in range(budget):
        mask = rng.random(len(targets)) < 0.5
        labels = dict(base)
        for text, flip in zip(targets, mask):
            if flip:
                labels[text] = 1 - base[text]
        rows.append(mask.astype(float))
        answers.append(attacker.ask(labels))
    x = np.column_stack([np.ones(len(rows)), np.array(rows)])
    y = np.array(answers)
    beta, *_ = np.linalg.lstsq(x, y, rcond=None)
    residual = y - x @ beta
    dof = max(1, len(y) - x.shape[1])
    sigma2 = float(residual @ residual) / dof
    try:
        se = np.sqrt(np.diag(np.linalg.inv(x.T @ x)) * sigma2)
    except np.linalg.LinAlgError:
        return {}
    claims = {}
    for j, text in enumerate(targets, start=1):
        if se[j] > 0 and abs(beta[j]) / se[j] >= Z:
            claims[text] = 1 - base[text] if beta[j] > 0 else base[text]
        elif se[j] == 0 and abs(beta[j]) > 0.5:
            claims[text] = 1 - base[text] if beta[j] > 0 else base[text]
    return claims


def boundary_probing(attacker: Attacker, base: dict[str, int], pool: list[str], targets: list[str],
                     budget: int) -> dict[str, int]:
    """Flip texts of `pool` one by one until the told accuracy changes: the file is then at a rounding edge, where
    flipping one more text moves the answer up or down by its label. Each target is read against that edge."""
    current, last = dict(base), attacker.ask(base)
    edge = None
    for text in pool:
        if attacker.queries >= budget // 3:
            break
        trial = {**current, text: 1 - current[text]}
        answer = attacker.ask(trial)
        if answer != last:
            edge = current
            break
        current, last = trial, answer
    if edge is None:
        return {}
    at_edge = attacker.ask(edge)
    claims = {}
    for text in targets:
        if attacker.queries >= budget:
            break
        answer = attacker.ask({**edge, text: 1 - edge[text]})
        if answer > at_edge:
            claims[text] = 1 - edge[text]
        elif answer < at_edge:
            claims[text] = edge[text]
    return claims


def base_predictions(view: Path) -> dict[str, int]:
    """What an agent knows without labels: a probe on the strong features trained on its teacher's hard labels."""
    from sklearn.linear_model import LogisticRegression

    from lab.task import files

    train, test = files.read_jsonl(view / "train.jsonl"), files.read_jsonl(view / "test.jsonl")
    x_train = np.load(view / "features" / "train.npy", mmap_mode="r")[:, 6, :]
    x_test = np.load(view / "features" / "test.npy", mmap_mode="r")[:, 6, :]
    probe = LogisticRegression(C=0.05, max_iter=1000).fit(x_train, [int(r["weak_soft"] > 0.5) for r in train])
    return {r["id"]: int(p) for r, p in zip(test, probe.predict(x_test))}


def labels_worth(right: int, wrong: int) -> float:
    """What claims right this often are worth, in labels: each carries 1 - H(p) bits of a label's one, p its chance of
    being right (claims as often wrong as right are worth nothing; claims that are all right, one label each)."""
    claims = right + wrong
    if not claims:
        return 0.0
    p = right / claims
    entropy = -sum(q * math.log2(q) for q in (p, 1 - p) if q > 0)
    return claims * (1 - entropy) if p > 0.5 else 0.0


def score(claims: dict[str, int], truth: dict[str, int]) -> tuple[int, int]:
    """Right and wrong claims."""
    right = sum(truth[t] == y for t, y in claims.items())
    return right, len(claims) - right


def attack_all(cfg, folder: Path, queries: int, noise: float, rng: np.random.Generator) -> tuple[dict, list[str]]:
    """Each attack with its own fresh budget; {attack: (right, wrong)} and everything the agent was shown."""
    from lab import config as configs
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

    scorer_cfg = configs.ScorerSection.model_validate({**cfg.scorer.model_dump(), "evaluate_noise": noise,
                                                       "evaluate_budget": 10 ** 9})   # each attack counts its own
    cfg = cfg.model_copy(update={"scorer": scorer_cfg})
    testbed = Testbed.load(cfg)
    sandbox = make_sandbox(cfg.lab.sandbox, warn=lambda line: None, user="agent-1")
    service = ScorerService(cfg, lambda db: Scorer(cfg, db, make_sandbox(cfg.lab.sandbox, warn=lambda line: None),
                                                   testbed, progress=False))
    service.start_in_thread()
    db = open_db(cfg.state_dir / "lab.db")
    agents.ensure(db, "agent-1", "bench", "leakage", "cpu")
    workspace = Workspace.ensure(cfg.sandboxes_dir, research_repo_path(cfg.state_dir), "agent-1", sandbox)
    box = Toolbox(ToolContext(agent="agent-1", cfg=cfg, db=db, sandbox=sandbox, workspace=workspace,
                              data_view=testbed.view(cfg.task.dev), scorer=ScorerClient(service.url, KeyCredentials(service.key))))
    dev = cfg.task.dev
    ids = testbed.test_ids(dev)
    truth = testbed.labels(dev)
    part = [i for i in ids if oracle.in_part(i, "a")]
    base = base_predictions(testbed.view(dev))
    shown, results = [], {}
    try:
        for name in ("single flips", "subset queries", "boundary probing"):
            attacker = Attacker(box, ids, "a")
            order = list(rng.permutation(part))
            if name == "single flips":
                claims = single_flips(attacker, base, order[:20], queries)
            elif name == "subset queries":
                claims = subset_queries(attacker, base, order[: max(10, queries // 2)], queries, rng)
            else:
                claims = boundary_probing(attacker, base, order[-100:], order[:queries], queries)
            results[name] = score(claims, truth)
            shown += attacker.shown
    finally:
        service.stop()
        db.conn.close()
    return results, shown


def unseen_found(cfg, shown: list[str]) -> tuple[int, int]:
    """Texts and ids of the private replica and the held-out sets that appear in what the agent was shown (its
    tool outputs and its data view): (found, searched)."""
    from lab.task import files
    from lab.task.testbed import Testbed

    testbed = Testbed(cfg.state_dir, cfg.task)
    seen = "\n".join(shown)
    view = testbed.view(cfg.task.dev)
    seen += "".join(p.read_text(errors="replace") for p in view.rglob("*") if p.suffix in (".jsonl", ".json", ".md"))
    needles = []
    for name in cfg.task.checked:
        for split in ("train", "test"):
            for row in files.read_jsonl(testbed.view(name) / f"{split}.jsonl"):
                # a text of a few words ("horrible") is in other texts too: only longer ones say where they came from
                needles += [row["id"]] + ([row["text"][:60]] if len(row["text"]) >= 20 else [])
    return sum(1 for n in needles if n in seen), len(needles)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", type=Path, default=ROOT / "lab.toml")
    parser.add_argument("--state", type=Path, default=ROOT / ".lab")
    parser.add_argument("--queries", type=int, help="evaluations per attack (default: evaluate_budget)")
    parser.add_argument("--agents", type=int, default=9, help="agents pooling what they learn")
    parser.add_argument("--exact", action="store_true", help="also attack the old exact answers")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    from lab import config as configs

    ensure_testbed(args.config, args.state)
    with tempfile.TemporaryDirectory(prefix="lab-leakage-") as tmp:
        folder = Path(tmp)
        copy_testbed(args.state, folder / ".lab")
        (folder / "lab.toml").write_text(args.config.read_text())
        cfg = configs.load(folder / "lab.toml")
        queries = args.queries or cfg.scorer.evaluate_budget
        settings = [("as the lab answers", cfg.scorer.evaluate_noise)] + ([("exact, as before", 0.0)] if args.exact
                                                                         else [])
        print(f"public dev set: labels recovered in {queries} evaluations (one agent-hour at the budget) on half a; "
              f"a claim needs |z| >= {Z:g}")
        print(f"{'answers':26s} {'attack':18s} {'right':>6s} {'wrong':>6s} {'labels':>9s} {'per agent-hour':>15s} "
              f"{f'{args.agents} agents, an hour':>20s}")
        shown_all = []
        for label, noise in settings:
            results, shown = attack_all(cfg, folder, queries, noise, np.random.default_rng(args.seed))
            shown_all += shown
            for attack, (right, wrong) in results.items():
                worth = labels_worth(right, wrong)
                rate = worth * cfg.scorer.evaluate_budget / queries
                print(f"{label:26s} {attack:18s} {right:6d} {wrong:6d} {worth:9.0f} {rate:15.0f} "
                      f"{rate * args.agents:20.0f}")
        found, searched = unseen_found(cfg, shown_all)
        print(f"\nprivate replica and held-out sets: 0 labels recovered (no tool answers on them; a submission tells its "
              f"agent the public figures and its flags' kinds); of {searched} of their ids and texts, {found} appear "
              f"in what the attacking agent was shown")


if __name__ == "__main__":
    main()
