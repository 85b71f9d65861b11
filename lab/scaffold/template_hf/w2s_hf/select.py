"""Choosing and weighting training examples by how sure the teacher is."""
import numpy as np


def hard_labels(probs) -> np.ndarray:
    return (np.asarray(probs) > 0.5).astype(np.float32)


def confidence(probs) -> np.ndarray:
    """|2p - 1|: 0 for a coin flip, 1 for a certain label."""
    return np.abs(2 * np.asarray(probs, dtype=np.float32) - 1)


def most_confident(probs, keep_fraction, balanced=True) -> np.ndarray:
    """Indices of the `keep_fraction` most confident examples.

    With balanced=True the fraction is kept within each predicted class separately, so a
    teacher that is surer of one class does not tilt the training set towards it.
    """
    probs = np.asarray(probs)
    groups = [np.flatnonzero(probs > 0.5), np.flatnonzero(probs <= 0.5)] if balanced else [np.arange(len(probs))]
    keep = []
    for group in groups:
        n_keep = int(round(keep_fraction * len(group)))
        order = np.argsort(-confidence(probs[group]), kind="stable")
        keep.append(group[order[:n_keep]])
    return np.sort(np.concatenate(keep))


def confidence_weights(probs, power=1.0) -> np.ndarray:
    """Per-example weights growing with the teacher's confidence, scaled to mean 1."""
    w = confidence(probs) ** power + 1e-6
    return (w / w.mean()).astype(np.float32)
