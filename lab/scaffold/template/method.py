"""Your method. This file is yours to change: the scorer runs

    python method.py --data DIR --out PREDICTIONS --seed N

from your commit and scores what it writes. It starts as the vanilla baseline (methods/vanilla.py):
a linear probe on the strong model's features, trained on the weak teacher's soft labels.
Build on w2s/ (data, probe, losses, select, strong) or replace any of it; see README.md.
"""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from w2s.io import run
from w2s.probe import train_probe


def predict(task, seed):
    """P(label = 1) for every test example, from the task's training data and the teacher's labels."""
    probe = train_probe(task.X_train, task.weak_soft, seed=seed)
    return probe.predict_proba(task.X_test)


if __name__ == "__main__":
    run(predict, __doc__)
