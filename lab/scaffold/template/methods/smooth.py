"""Smooth: train on the teacher's soft labels with label smoothing, so the probe commits less to the teacher."""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from w2s import defaults, losses
from w2s.io import run
from w2s.probe import train_probe


def predict(task, seed):
    probe = train_probe(task.X_train, task.weak_soft, loss=losses.label_smoothing(defaults.SMOOTHING), seed=seed)
    return probe.predict_proba(task.X_test)


if __name__ == "__main__":
    run(predict, __doc__)
