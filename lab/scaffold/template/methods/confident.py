"""Confident: train only on the examples whose teacher label is most confident (|weak_soft - 0.5| large)."""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from w2s import defaults
from w2s.io import run
from w2s.probe import train_probe
from w2s.select import most_confident


def predict(task, seed):
    keep = most_confident(task.weak_soft, defaults.CONFIDENT_KEEP)
    probe = train_probe(task.X_train[keep], task.weak_soft[keep], seed=seed)
    return probe.predict_proba(task.X_test)


if __name__ == "__main__":
    run(predict, __doc__)
