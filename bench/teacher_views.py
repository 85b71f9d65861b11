"""What a method can compute about its teacher with the strong model alone, to tell one teacher from another.

A method sees its train texts, their strong features and one teacher's soft labels, never the truth. These statistics
are what it could compute to decide whether it is in the scorer's teacher check. Two teachers of one kind differ in
every one of them (each teacher's confidence and share of positives are its own to a few thousandths): a method that
knew a teacher's figures could recognise it. So the check never pairs a teacher a method knows with one it does not:
on every set no agent has seen, the teacher whose labels rank and the teacher whose labels the check's runs get are
both teachers no agent has seen, trained alike on texts of their own (lab/task/testbed.py).
bench/bench_teacher_dependence.py prints them for the public teacher, the two teachers of each unseen set, and a
shuffled teacher (what the old check used, which a method could tell from a real one).
"""
from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np

from lab.task import files
from lab.task.features import STRONG_MODEL, embed_all_layers

# The scaffold's defaults.CLASS_DESCRIPTIONS (tests/test_teacher_dependence.py keeps the two equal): the zero-shot
# view a method gets for free.
CLASS_DESCRIPTIONS = {
    0: ["a negative review", "this is bad, I did not like it", "a negative, unhappy text"],
    1: ["a positive review", "this is good, I liked it", "a positive, happy text"],
}
LAST_LAYER = 6


def _unit(x: np.ndarray) -> np.ndarray:
    return x / (np.linalg.norm(x, axis=-1, keepdims=True) + 1e-12)


def class_embeddings(cache_dir: Path, max_tokens: int) -> np.ndarray:
    """(2, dim) unit vectors, row 0 the negative class: each the mean of its descriptions' last-layer embeddings."""
    key = hashlib.sha256(json.dumps([STRONG_MODEL, max_tokens, CLASS_DESCRIPTIONS]).encode()).hexdigest()[:16]
    path = Path(cache_dir) / f"classes-{key}.npy"
    if path.exists():
        return np.load(path)
    texts = CLASS_DESCRIPTIONS[0] + CLASS_DESCRIPTIONS[1]
    vectors = _unit(embed_all_layers(texts, max_tokens, desc="zero-shot class descriptions")[:, LAST_LAYER, :])
    n_negative = len(CLASS_DESCRIPTIONS[0])
    classes = _unit(np.stack([vectors[:n_negative].mean(0), vectors[n_negative:].mean(0)])).astype(np.float32)
    files.write_npy(path, classes)
    return classes


def zero_shot_agreement(features: np.ndarray, soft: np.ndarray, classes: np.ndarray, layer: int = LAST_LAYER) -> float:
    """How often the teacher's hard labels match the strong model's zero-shot labels (its texts' embeddings against
    the class descriptions, thresholded at the teacher's share of positives)."""
    similarity = _unit(np.asarray(features[:, layer, :], dtype=np.float32)) @ classes.T
    scores = similarity[:, 1] - similarity[:, 0]
    teacher = np.asarray(soft) > 0.5
    return float((teacher == (scores > np.quantile(scores, 1 - teacher.mean()))).mean())


def predictability(features: np.ndarray, soft: np.ndarray, layer: int = LAST_LAYER, c: float = 0.1,
                   seed: int = 0) -> float:
    """A probe on the strong features, fitted on half of the texts with the teacher's hard labels, scored on the other
    half: how far the teacher is a smooth function of what the strong model sees."""
    from sklearn.linear_model import LogisticRegression

    x = np.asarray(features[:, layer, :], dtype=np.float32)
    y = (np.asarray(soft) > 0.5).astype(int)
    order = np.random.default_rng(seed).permutation(len(y))
    fit, held = order[: len(y) // 2], order[len(y) // 2:]
    probe = LogisticRegression(C=c, max_iter=1000).fit(x[fit], y[fit])
    return float((probe.predict(x[held]) == y[held]).mean())


def neighbour_agreement(features: np.ndarray, soft: np.ndarray, k: int = 10, layer: int = 4) -> float:
    """How often a text's hard label is the majority of its k nearest neighbours' (cosine, at `layer`)."""
    x = np.array(features[:, layer, :], dtype=np.float32)
    x /= np.linalg.norm(x, axis=1, keepdims=True) + 1e-12
    y = np.asarray(soft) > 0.5
    similarity = x @ x.T
    np.fill_diagonal(similarity, -np.inf)
    nearest = np.argpartition(-similarity, k, axis=1)[:, :k]
    return float(((y[nearest].mean(1) > 0.5) == y).mean())


def statistics(view: Path, classes: np.ndarray, soft: np.ndarray | None = None) -> dict[str, float]:
    """Every statistic of one view's teacher (or of `soft` in its place)."""
    rows = files.read_jsonl(view / "train.jsonl")
    soft = np.array([r["weak_soft"] for r in rows]) if soft is None else soft
    x = np.load(view / "features" / "train.npy", mmap_mode="r")
    return {"zero-shot agreement": zero_shot_agreement(x, soft, classes),
            "zero-shot agreement, layer 5": zero_shot_agreement(x, soft, classes, layer=5),
            "probe predictability": predictability(x, soft),
            "probe predictability, layer 3": predictability(x, soft, layer=3, seed=1),
            "10-neighbour agreement": neighbour_agreement(x, soft),
            "mean soft label": float(soft.mean()), "share above 0.5": float((soft > 0.5).mean()),
            "mean |soft - 0.5|": float(np.abs(soft - 0.5).mean())}
