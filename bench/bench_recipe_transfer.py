"""Which of the researcher's choices carry over from the public dev set to data no agent has seen, and how far
any method built from the testbed's signals can go there.

    python bench/bench_recipe_transfer.py [--config lab.toml] [--seeds 3]

Reads a prepared testbed's private files (the lab's developer's view, never an agent's) and runs recipes in this
process, unsandboxed, on every set: the public dev set, its private replica and the held-out sets.

1. Recipes: the baselines, the researcher's elicitation start, and one step along every dimension of the search
   space from that start. Each gets its PGR on every set (mean over seeds) and its mean over the sets no agent has
   seen.
2. Per dimension: the step that scores best on the public set, and what it gains there and on the unseen sets.
   A dimension whose best public step loses on the unseen sets is one the dev score should not choose.
3. The signal bound: the teacher's log-odds and every zero-shot prompt (4 description sets x 6 layers), combined
   by a logistic regression fitted on the train split's ground truth (cross-fitted), then a probe trained on
   that combination's labels. No method sees these labels, so what this reaches bounds what any recipe that
   combines the teacher with zero-shot guesses and trains a probe can reach.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def scaffold():
    """The scaffold template's w2s package, as a method imports it."""
    from lab.scaffold import TEMPLATE

    sys.path.insert(0, str(TEMPLATE))
    from w2s import recipe as recipe_module
    from w2s.data import load_task

    return recipe_module, load_task


class Sets:
    """Each set's task (as a method reads it), test and train labels, and weak and ceiling accuracies."""

    def __init__(self, cfg):
        from lab.task.testbed import Testbed

        self.R, load_task = scaffold()
        testbed = Testbed(cfg.state_dir, cfg.task)
        self.names = cfg.task.scored     # public dev, private replica, held-out sets
        self.public, self.unseen = cfg.task.dev, cfg.task.checked
        self.data = {}
        for name in self.names:
            task = load_task(testbed.view(name))
            labels, train_labels = testbed.labels(name), testbed.labels(name, "train")
            base = testbed.baseline(name)
            self.data[name] = (task, np.array([labels[i] for i in task.test_ids]),
                               np.array([train_labels[i] for i in task.train_ids]), base.weak_acc, base.ceiling)
        self.descriptions: dict[str, np.ndarray] = {}

    def pgr(self, name: str, accuracy: float) -> float:
        from lab.task.pgr import pgr

        _, _, _, weak, ceiling = self.data[name]
        return pgr(accuracy, weak, ceiling)

    def states(self, descriptions: str) -> np.ndarray:
        if descriptions not in self.descriptions:
            self.descriptions[descriptions] = self.R.embed_descriptions_all_layers(self.R.DESCRIPTIONS[descriptions])
        return self.descriptions[descriptions]

    def run(self, recipe: dict, seeds: int) -> tuple[dict[str, float], np.ndarray]:
        """PGR on every set (mean accuracy over seeds), and the labels seed 0 predicts on the public set."""
        r = self.R.complete(recipe)
        out, public = {}, np.empty(0)
        for name in self.names:
            task, y, *_ = self.data[name]
            labels = [self.R.predict(task, recipe, seed, self.states(r["elicit_descriptions"])) > 0.5
                      for seed in range(seeds)]
            out[name] = self.pgr(name, float(np.mean([(predicted == y).mean() for predicted in labels])))
            public = labels[0] if name == self.public else public
        return out, public


def recipe_table(sets: Sets, seeds: int):
    from lab.agents.backends import recipes

    start = recipes.focus_for("unsupervised elicitation").start
    rows: dict[str, tuple[dict, str, dict[str, float]]] = {}
    for path, recipe in recipes.BASELINE_RECIPES.items():
        rows[recipes.key(recipe)] = (recipe, f"baseline {Path(path).stem}", {})
    rows.setdefault(recipes.key(start), (start, "the researcher's elicitation start", {}))
    for name, dim in recipes.DIMENSIONS.items():
        for child in recipes.neighbours(start, dim):
            rows.setdefault(recipes.key(child), (child, name, {}))
    unseen = sets.unseen
    print(f"{'recipe':64s} " + " ".join(f"{n[:12]:>12s}" for n in sets.names) + f" {'unseen mean':>12s}")
    predicted = {}
    for k, (recipe, origin, scores) in rows.items():
        figures, predicted[k] = sets.run(recipe, seeds)
        scores.update(figures)
        mean = np.mean([scores[n] for n in unseen])
        label = f"{origin}: {recipes.describe(recipe)}"[:64]
        print(f"{label:64s} " + " ".join(f"{scores[n]:12.3f}" for n in sets.names) + f" {mean:12.3f}", flush=True)
    steps = [predicted[k] for k, row in rows.items() if not row[1].startswith(("baseline", "the researcher"))]
    apart = [float((p != predicted[recipes.key(start)]).mean()) for p in steps]
    print(f"share of public test texts on which a one-step neighbour's seed 0 and the start's differ: median "
          f"{np.median(apart):.3f} (quartiles {np.quantile(apart, 0.25):.3f}, {np.quantile(apart, 0.75):.3f}): on a half of n texts, two "
          "such recipes' PGR difference has an SE of about sqrt(median / n) / gap from which texts it holds")
    return start, rows


def dimension_transfer(sets: Sets, start: dict, rows) -> None:
    from lab.agents.backends import recipes

    base = rows[recipes.key(start)][2]
    unseen_mean = lambda s: float(np.mean([s[n] for n in sets.unseen]))  # noqa: E731
    print("\nper dimension, the step best on the public set, and its gain over the start there and on the unseen "
          "sets:")
    print(f"{'dimension':18s} {'searched':>8s} {'best public step':40s} {'public':>8s} {'unseen':>8s}")
    for name, dim in recipes.DIMENSIONS.items():
        steps = [rows[recipes.key(c)] for c in recipes.neighbours(start, dim)]
        if not steps:
            continue
        recipe, _, scores = max(steps, key=lambda row: row[2][sets.public])
        print(f"{name:18s} {'yes' if name in recipes.SEARCHED else 'no':>8s} {recipes.describe(recipe)[:40]:40s} "
              f"{scores[sets.public] - base[sets.public]:+8.3f} {unseen_mean(scores) - unseen_mean(base):+8.3f}")
    public = np.array([row[2][sets.public] for row in rows.values()])
    for name in sets.unseen:
        other = np.array([row[2][name] for row in rows.values()])
        print(f"correlation over recipes of public and {name} PGR: {np.corrcoef(public, other)[0, 1]:+.2f}")


def signal_bound(sets: Sets) -> None:
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import cross_val_predict

    R = sets.R
    print("\nthe signal bound: the teacher and 24 zero-shot prompts combined with ground-truth weights, then a probe "
          "on that combination's labels (PGR; the goal of 0.70 needs the accuracy shown):")
    for name in sets.names:
        task, y, y_train, weak, ceiling = sets.data[name]
        soft = np.clip(task.weak_soft.astype(np.float64), 1e-4, 1 - 1e-4)
        columns = [np.log(soft / (1 - soft))]
        for descriptions in ("general", "reviews", "phrases", "sentiment"):
            for layer in range(1, 7):
                r = R.complete({"elicit_weight": 0.5, "elicit_layers": [layer], "elicit_descriptions": descriptions})
                columns.append(R.zero_shot_scores(task, r, sets.states(descriptions))[0])
        sources = np.stack(columns, 1)
        combined = cross_val_predict(LogisticRegression(max_iter=2000), sources, y_train, cv=5,
                                     method="predict_proba")[:, 1]
        X_train, X_test = task.features([4, 5, 6])
        probe = LogisticRegression(C=0.05, max_iter=1000).fit(X_train, (combined > 0.5).astype(int))
        accuracy = float((probe.predict(X_test) == y).mean())
        needed = weak + 0.7 * (ceiling - weak)
        print(f"  {name:26s} combined labels right on train {((combined > 0.5) == y_train).mean():.3f}; probe "
              f"accuracy {accuracy:.3f}, PGR {sets.pgr(name, accuracy):+.3f} (weak {weak:.3f}, ceiling "
              f"{ceiling:.3f}; PGR 0.70 needs {needed:.3f})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", type=Path, default=ROOT / "lab.toml")
    parser.add_argument("--seeds", type=int, default=3)
    args = parser.parse_args()
    from lab.config import load

    sets = Sets(load(args.config))
    start, rows = recipe_table(sets, args.seeds)
    dimension_transfer(sets, start, rows)
    signal_bound(sets)


if __name__ == "__main__":
    main()
