"""Measures the teacher-dependence check on a prepared lab: honest and dishonest methods, and what a
method can tell about its teacher (agreement with the zero-shot view) under each counterfactual.

    python bench/bench_teacher_dependence.py --lab DIR [--seeds 5] [--runs 5] [--baseline NAME ...] [--method PATH ...]

DIR holds a lab.toml whose testbed `lab init` has prepared. Every method is scored for real (sandboxed,
over the dev and held-out sets) with [scorer] seeds and shuffle_seeds replaced by --seeds and --runs:
the scaffold's baselines from the lab's research repository (as `lab score --baselines` does, recorded
as "baseline"), other methods from their files (recorded as "bench").
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
METHODS = ROOT / "tests" / "methods"


BASELINES = ["vanilla", "confident", "elicit"]
OWN = [METHODS / f"{name}.py" for name in ("agree_filter", "zero_shot_bypass", "saboteur", "constant")]


def agreements(cfg, runs: int) -> None:
    """The teacher's agreement with the zero-shot view: real, counterfactual, plainly shuffled."""
    from lab.scorer import counterfactual
    from lab.task import files, zero_shot
    from lab.task.testbed import Testbed

    view = Testbed(cfg.state_dir, cfg.task).view(cfg.task.dev)
    soft = np.array([r["weak_soft"] for r in files.read_jsonl(view / "train.jsonl")])
    scores = counterfactual.strong_view(view, cfg.state_dir / "cache" / "zero_shot", cfg.task.max_tokens)
    seeds = [counterfactual.PERMUTATION_SEED + i for i in range(runs)]
    strata = counterfactual.strata(scores)
    stratified = [zero_shot.agreement(counterfactual.permuted_within(soft, strata, s), scores) for s in seeds]
    shuffled = [zero_shot.agreement(np.random.default_rng(s).permutation(soft), scores) for s in seeds]
    print(f"agreement of the teacher's hard labels with the zero-shot view ({len(soft)} train texts, "
          f"{strata.max() + 1} strata of {counterfactual.STRATUM_SIZE}):")
    print(f"  real teacher {zero_shot.agreement(soft, scores):.3f}; counterfactual teachers "
          f"{np.mean(stratified):.3f} (min {min(stratified):.3f}, max {max(stratified):.3f}); "
          f"plain shuffles {np.mean(shuffled):.3f} (min {min(shuffled):.3f}, max {max(shuffled):.3f})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lab", type=Path, required=True)
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--baseline", action="append", help=f"a scaffold baseline (default: {', '.join(BASELINES)})")
    parser.add_argument("--method", type=Path, action="append", help="a method file (default: the test methods)")
    args = parser.parse_args()
    from lab import config
    from lab.sandbox import make_sandbox
    from lab.scorer.scorer import Scorer
    from lab.store import open_db

    cfg = config.load(args.lab / "lab.toml")
    scorer_section = config.ScorerSection.model_validate({**cfg.scorer.model_dump(), "seeds": args.seeds,
                                                          "shuffle_seeds": args.runs})
    cfg = cfg.model_copy(update={"scorer": scorer_section})
    agreements(cfg, args.runs)
    scorer = Scorer(cfg, open_db(cfg.state_dir / "lab.db"), make_sandbox(cfg.lab.sandbox), progress=False)
    s = cfg.scorer
    z, margin = s.flag_dependence_z, s.flag_teacher_dependence
    print(f"\n{args.seeds} seeds, {args.runs} counterfactual runs; flag when teacher adds ± {z:g} SE stays within "
          f"± {margin}")
    print(f"{'method':24s} {'dev PGR':>15s} {'counterfactual':>15s} {'teacher adds':>15s} {'± z SE':>17s}  flagged  time")
    baselines = args.baseline or BASELINES
    jobs = [(name, lambda name=name: scorer.score_baselines([name])[0]) for name in baselines]
    jobs += [(path.stem, lambda path=path: scorer.score_path(path, agent="bench")) for path in args.method or OWN]
    for name, score in jobs:
        start = time.monotonic()
        result = score()
        d = result.teacher_dependence
        flagged = "yes" if "ignores_teacher" in [f["kind"] for f in result.flags] else "no"
        print(f"{name:24s} {d.pgr:+.3f} ± {d.pgr_se:.3f} {d.counterfactual_pgr:+.3f} ± "
              f"{d.counterfactual_pgr_se:.3f} {d.difference:+.3f} ± {d.difference_se:.3f} "
              f"[{d.difference - z * d.difference_se:+.3f}, {d.difference + z * d.difference_se:+.3f}]  {flagged:7s}  "
              f"{time.monotonic() - start:.0f} s", flush=True)
        others = [f["kind"] for f in result.flags if f["kind"] != "ignores_teacher"]
        if others:
            print(f"{'':24s} other flags: {', '.join(others)}", file=sys.stderr)


if __name__ == "__main__":
    main()
