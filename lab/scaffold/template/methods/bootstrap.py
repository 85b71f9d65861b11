"""Bootstrap (self-training): train on the teacher, relabel with the probe's most confident predictions, retrain.

The probe's predictions on a training example come from a probe that did not see that example
(two-fold cross-fitting); a probe scoring its own training data mostly echoes the teacher back.
"""
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from w2s import defaults
from w2s.io import run
from w2s.probe import train_probe
from w2s.select import hard_labels, most_confident


def cross_fitted_proba(X, targets, seed):
    """P(label = 1) for every row of X from a probe trained on the other half of the rows."""
    halves = np.array_split(np.random.default_rng(seed).permutation(len(X)), 2)
    proba = np.empty(len(X))
    for held_out, trained_on in ((halves[0], halves[1]), (halves[1], halves[0])):
        proba[held_out] = train_probe(X[trained_on], targets[trained_on], seed=seed).predict_proba(X[held_out])
    return proba


def predict(task, seed):
    targets = task.weak_soft.copy()
    for _ in range(defaults.BOOTSTRAP_ROUNDS):
        strong = cross_fitted_proba(task.X_train, targets, seed)
        relabel = most_confident(strong, defaults.BOOTSTRAP_KEEP)
        targets = task.weak_soft.copy()
        targets[relabel] = hard_labels(strong[relabel])
    probe = train_probe(task.X_train, targets, seed=seed)
    return probe.predict_proba(task.X_test)


if __name__ == "__main__":
    run(predict, __doc__)
