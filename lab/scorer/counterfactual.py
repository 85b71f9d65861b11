"""The counterfactual teacher of the teacher-dependence check: the teacher's own information gone,
what a method can check about its teacher kept.

A plain shuffle of the teacher's labels is easy to tell from the real teacher: on the embedded
testbed the real teacher's hard labels agree with the strong model's zero-shot view 61% of the time
and shuffled ones 50%, so a method could answer from the zero-shot view and sabotage itself only
when that agreement drops. The counterfactual teacher instead permutes `weak_soft` only within
strata of STRATUM_SIZE examples with neighbouring zero-shot scores: each stratum keeps its own
labels, so agreement with the strong model's view stays where it was, while which example within a
stratum gets which label (what the teacher knows beyond that view) is random.

Where a task's views have no strong features (the hf kind), the scorer cannot compute the strong
model's view, and the counterfactual falls back to one stratum: a plain shuffle.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from lab.task import files, zero_shot
from lab.task.testbed import derived_view

# Measured on the embedded testbed (README, "The teacher-dependence check"): with strata of 50 the
# permuted teacher's agreement with the zero-shot view stays at the real teacher's (0.606 of 4,000;
# 0.62 of 400), and 4,000 training texts give 80 strata.
STRATUM_SIZE = 50
PERMUTATION_SEED = 20231214  # fixed, so every submission meets the same counterfactual teachers
STRATIFIED = f"weak_soft permuted within strata of {STRATUM_SIZE} examples with neighbouring zero-shot scores"
SHUFFLED = "weak_soft shuffled across all examples (the views have no strong features to stratify by)"


def strata(scores: np.ndarray, size: int = STRATUM_SIZE) -> np.ndarray:
    """A stratum id per example: consecutive runs of `size` examples in the order of `scores`
    (the last stratum takes the remainder, so none is smaller than `size` unless all are)."""
    n = len(scores)
    count = max(1, n // size)
    ids = np.empty(n, dtype=np.int64)
    ids[np.argsort(scores, kind="stable")] = np.minimum(np.arange(n) // size, count - 1)
    return ids


def permuted_within(values: np.ndarray, stratum_ids: np.ndarray, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    out = np.array(values, copy=True)
    for stratum in np.unique(stratum_ids):
        where = np.flatnonzero(stratum_ids == stratum)
        out[where] = values[rng.permutation(where)]
    return out


def strong_view(view: Path, cache_dir: Path, max_tokens: int) -> np.ndarray | None:
    """The zero-shot score of every train example, or None where the view has no strong features."""
    features = view / "features" / "train.npy"
    if not features.exists():
        return None
    return zero_shot.scores(np.load(features, mmap_mode="r"), zero_shot.class_embeddings(cache_dir, max_tokens))


def write_views(source: Path, dest: Path, zero_shot_scores: np.ndarray | None, runs: int) -> tuple[list[Path], str]:
    """`runs` counterfactual views of `source` (one permutation each) under `dest`, and how they were made."""
    rows = files.read_jsonl(source / "train.jsonl")
    soft = np.array([r["weak_soft"] for r in rows], dtype=np.float64)
    if zero_shot_scores is None:
        ids, how = np.zeros(len(rows), dtype=np.int64), SHUFFLED
    else:
        ids, how = strata(zero_shot_scores), STRATIFIED
    views = []
    for run in range(runs):
        permuted = permuted_within(soft, ids, PERMUTATION_SEED + run)
        views.append(derived_view(source, dest / f"counterfactual-{run}",
                                  ({**r, "weak_soft": float(p)} for r, p in zip(rows, permuted))))
    return views, how
