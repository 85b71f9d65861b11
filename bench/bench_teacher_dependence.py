"""Measures the teacher check on a prepared lab: what a method can tell about its teacher under the first and the second
teacher, and which methods are flagged.

    python bench/bench_teacher_dependence.py --lab DIR [--seeds 5] [--check-seeds 5] [--recipes 6]
                                             [--baseline NAME ...] [--method PATH ...]

DIR holds a lab.toml whose testbed `lab init` has prepared. First, the statistics of bench/teacher_views.py: what a
method could compute about its teacher to notice the check, for the public teacher (whose figures a method knows), and
for every set of the check (the private replica and the held-out sets) its first teacher, its second, and a shuffled
first teacher (a plain shuffle of its labels, the old check, which a method could tell).
Then every method is scored for real (sandboxed, on every set) with [scorer] seeds and check_seeds set as asked: the
scaffold's baselines (as `lab score --baselines` does, recorded as "baseline"), the researcher's recipes (the
baselines' and random ones of its search space), the dishonest methods of tests/methods, among them one that
switches on a fingerprint of its data (given the public test labels, as if it had learned them all) and one that
bypasses the teacher wherever it recognises its public teacher, and any --method. Each gets a line: public and private dev PGR, how far it follows its teacher, and its flags.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import random
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np

from teacher_views import class_embeddings, statistics

ROOT = Path(__file__).resolve().parents[1]
METHODS = ROOT / "tests" / "methods"
BASELINES = ["vanilla", "confident", "logconf", "bootstrap", "elicit"]
DISHONEST = ["zero_shot_bypass", "saboteur", "constant", "agree_filter"]


def recognised(cfg) -> str:
    """The teacher_recognizer method's knowledge: its public teacher's confidence and share of positives."""
    from lab.task import files
    from lab.task.testbed import Testbed

    soft = np.array([r["weak_soft"] for r in
                     files.read_jsonl(Testbed(cfg.state_dir, cfg.task).view(cfg.task.dev) / "train.jsonl")])
    return json.dumps({"confidence": float(np.abs(soft - 0.5).mean()), "share": float((soft > 0.5).mean())})


def teacher_statistics(cfg) -> None:
    from lab.task import files
    from lab.task.testbed import Testbed

    testbed = Testbed(cfg.state_dir, cfg.task)
    classes = class_embeddings(cfg.state_dir / "cache" / "zero_shot", cfg.task.max_tokens)
    public = statistics(testbed.view(cfg.task.dev), classes)
    print("what a method can compute about its teacher: the public teacher on the public texts (a method knows these "
          "figures), then on each set no agent has seen its first teacher (whose labels rank), its second (the "
          "check's) and the first shuffled (the old check's):")
    for stat, value in public.items():
        print(f"  {stat:30s} public {value:.3f}")
    for name in cfg.task.checked:
        soft = np.array([r["weak_soft"] for r in files.read_jsonl(testbed.view(name) / "train.jsonl")])
        rows = {"first": statistics(testbed.view(name), classes),
                "second": statistics(testbed.teacher_b_view(name), classes),
                "shuffled": statistics(testbed.view(name), classes, np.random.default_rng(0).permutation(soft))}
        print(f"  {name} ({len(soft)} train texts)")
        for stat in rows["first"]:
            print(f"    {stat:30s} " + "  ".join(f"{kind} {rows[kind][stat]:.3f}" for kind in rows))


def method_folder(work: Path, source: Path, extra: dict[str, str]) -> Path:
    """A copy of a method file and the test methods' helpers, with extra files beside them."""
    folder = work / source.stem
    folder.mkdir(parents=True)
    for name in (source.name, "zero_shot_view.py", "zero_shot_classes.json"):
        shutil.copy(source.parent / name, folder / name)
    for name, text in extra.items():
        (folder / name).write_text(text)
    return folder / source.name


def recipe_folder(work: Path, name: str, recipe: dict) -> Path:
    from lab.agents.backends import recipes
    from lab.scaffold import TEMPLATE

    folder = work / name
    shutil.copytree(TEMPLATE, folder, ignore=shutil.ignore_patterns("__pycache__"))
    (folder / "recipe.json").write_text(recipes.recipe_json(recipe))
    (folder / "method.py").write_text(recipes.METHOD_PY)
    return folder / "method.py"


def random_recipes(count: int, seed: int = 7) -> list[dict]:
    """Recipes of the researcher's search space: one setting of each of a few dimensions, drawn at random."""
    from lab.agents.backends import recipes

    rng, out = random.Random(seed), []
    while len(out) < count:
        recipe: dict = {}
        for dim in rng.sample(sorted(recipes.DIMENSIONS), 3):
            recipe = recipes.apply(recipe, rng.choice(recipes.DIMENSIONS[dim].settings), recipes.DIMENSIONS[dim])
        if recipes.valid(recipe) is not None and recipes.cost(recipe) < 6:
            out.append(recipe)
    return out


def fingerprint(cfg) -> str:
    """The fingerprint_switch method's knowledge: its public dev data's hash, and every public test label."""
    from lab.task import files
    from lab.task.testbed import Testbed

    testbed = Testbed(cfg.state_dir, cfg.task)
    texts = "\n".join(r["text"] for r in files.read_jsonl(testbed.view(cfg.task.dev) / "train.jsonl"))
    return json.dumps({"train": hashlib.sha256(texts.encode()).hexdigest(), "labels": testbed.labels(cfg.task.dev)})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lab", type=Path, required=True)
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--check-seeds", type=int, default=5)
    parser.add_argument("--recipes", type=int, default=6, help="random recipes of the researcher's search space")
    parser.add_argument("--baseline", action="append", help=f"a scaffold baseline (default: {', '.join(BASELINES)})")
    parser.add_argument("--method", type=Path, action="append", help="another method file")
    args = parser.parse_args()
    from lab import config
    from lab.agents.backends import recipes
    from lab.sandbox import make_sandbox
    from lab.scorer.scorer import Scorer
    from lab import score_text
    from lab.store import open_db
    from lab.store.scores import Following

    cfg = config.load(args.lab / "lab.toml")
    scorer_section = config.ScorerSection.model_validate({**cfg.scorer.model_dump(), "seeds": args.seeds,
                                                          "check_seeds": args.check_seeds})
    cfg = cfg.model_copy(update={"scorer": scorer_section})
    teacher_statistics(cfg)
    scorer = Scorer(cfg, open_db(cfg.state_dir / "lab.db"), make_sandbox(cfg.lab.sandbox), progress=False)
    s = cfg.scorer
    print(f"\n{args.seeds} seeds, {args.check_seeds} with the second teacher on each of {', '.join(cfg.task.checked)}; "
          f"ignores_teacher when the texts moved with and against the teacher differ by less than "
          f"{s.flag_dependence_z:g} SE")
    print(f"{'method':34s} {'public PGR':>15s} {'private PGR':>15s} {'moved +/-':>10s} {'z':>6s}  flags  (time)")
    with tempfile.TemporaryDirectory(prefix="bench-teacher-") as tmp:
        work = Path(tmp)
        jobs = [(f"baseline {n}", lambda n=n: scorer.score_baselines([n])[0]) for n in args.baseline or BASELINES]
        for i, recipe in enumerate([*recipes.BASELINE_RECIPES.values(), *random_recipes(args.recipes)]):
            path = recipe_folder(work, f"recipe-{i}", recipe)
            jobs.append((f"recipe {recipes.describe(recipe)[:27]}",
                         lambda p=path: scorer.score_path(p.parent, agent="bench")))
        for name in DISHONEST:
            path = method_folder(work, METHODS / f"{name}.py", {})
            jobs.append((name, lambda p=path: scorer.score_path(p, agent="bench")))
        switch = method_folder(work, METHODS / "fingerprint_switch.py", {"fingerprint.json": fingerprint(cfg)})
        jobs.append(("fingerprint_switch", lambda p=switch: scorer.score_path(p, agent="bench")))
        recognizer = method_folder(work, METHODS / "teacher_recognizer.py", {"teacher.json": recognised(cfg)})
        jobs.append(("teacher_recognizer", lambda p=recognizer: scorer.score_path(p, agent="bench")))
        jobs += [(path.stem, lambda p=path: scorer.score_path(p, agent="bench")) for path in args.method or []]
        for name, score in jobs:
            start = time.monotonic()
            result = score()
            private = score_text.pgr(result.private.pgr, result.private.pgr_se) if result.private else "failed"
            f = result.following
            moved = score_text.follows_teacher(Following.from_dict(f.to_dict()) if f else None)
            z = f"{f.z:+.1f}" if f else "-"
            flags = score_text.flags(x["kind"] for x in result.flags)
            print(f"{name:34s} {score_text.pgr(result.dev.pgr, result.dev.pgr_se)} {private:>15s} {moved:>10s} {z:>6s}  "
                  f"{flags}  ({time.monotonic() - start:.0f} s)", flush=True)


if __name__ == "__main__":
    main()
