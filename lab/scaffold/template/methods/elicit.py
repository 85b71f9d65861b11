"""Elicit: mix the teacher's soft labels with the strong model's own zero-shot guess, then train the probe.

The zero-shot guess compares each text's sentence embedding with embeddings of short class
descriptions (w2s/strong.py); it needs no labels.
"""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from w2s import defaults, strong
from w2s.io import run
from w2s.probe import train_probe


def predict(task, seed):
    scores = strong.zero_shot_scores(task.features_train, strong.class_embeddings())
    zero_shot = strong.scores_to_proba(scores, positive_fraction=float((task.weak_soft > 0.5).mean()))
    targets = (1 - defaults.ELICIT_WEIGHT) * task.weak_soft + defaults.ELICIT_WEIGHT * zero_shot
    probe = train_probe(task.X_train, targets, seed=seed)
    return probe.predict_proba(task.X_test)


if __name__ == "__main__":
    run(predict, __doc__)
