"""The strong model's own zero-shot view of a text, as the scaffold's w2s/strong.py computes it.

A text's last-layer mean-pooled features are its all-MiniLM-L6-v2 sentence embedding; the cosine
similarity to the positive class's descriptions minus that to the negative class's is its zero-shot
score. Embedding the descriptions needs the model, so the two class vectors are cached on disk.
"""
from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np

from lab.task import files
from lab.task.features import STRONG_MODEL, embed_all_layers

# The scaffold's defaults.CLASS_DESCRIPTIONS (tests/test_teacher_dependence.py keeps the two equal):
# the view that an agent's method gets for free is the one the check must hold fixed.
CLASS_DESCRIPTIONS = {
    0: ["a negative review", "this is bad, I did not like it", "a negative, unhappy text"],
    1: ["a positive review", "this is good, I liked it", "a positive, happy text"],
}
LAST_LAYER = 6


def _unit(x: np.ndarray) -> np.ndarray:
    return x / (np.linalg.norm(x, axis=-1, keepdims=True) + 1e-12)


def class_embeddings(cache_dir: Path, max_tokens: int) -> np.ndarray:
    """(2, dim) unit vectors, row 0 the negative class: each the mean of its descriptions' embeddings."""
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


def scores(features: np.ndarray, classes: np.ndarray) -> np.ndarray:
    """cos(text, positive) - cos(text, negative) for (n, layers, dim) features."""
    similarity = _unit(np.asarray(features[:, LAST_LAYER, :], dtype=np.float32)) @ classes.T
    return similarity[:, 1] - similarity[:, 0]


def hard_labels(zero_shot: np.ndarray, positive_fraction: float) -> np.ndarray:
    """The zero-shot labels with the top `positive_fraction` positive: cosine differences have an
    arbitrary offset, so the threshold comes from a class prior (as in the scaffold's scores_to_proba)."""
    return zero_shot > np.quantile(zero_shot, 1 - positive_fraction)


def agreement(weak_soft: np.ndarray, zero_shot: np.ndarray) -> float:
    """How often the teacher's hard labels match the zero-shot labels thresholded at the teacher's prior:
    what a method can measure about its teacher with the strong model alone."""
    teacher = np.asarray(weak_soft) > 0.5
    return float((teacher == hard_labels(zero_shot, float(teacher.mean()))).mean())
