"""What a method can compute from the strong model alone: the zero-shot view of w2s/strong.py, each text's
last-layer embedding against six hand-written class phrases. Not a method: the test methods import it.

zero_shot_classes.json holds the phrases' class vectors, embedded once with the strong model (see
tests/test_teacher_dependence.py, which checks them against the model), so that a run needs numpy only.
"""
import argparse
import json
import os

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))


def args():
    p = argparse.ArgumentParser()
    p.add_argument("--data"), p.add_argument("--out"), p.add_argument("--seed", type=int, default=0)
    return p.parse_args()


def rows(data, split):
    with open(f"{data}/{split}.jsonl") as f:
        return [json.loads(line) for line in f]


def unit(x):
    return x / (np.linalg.norm(x, axis=-1, keepdims=True) + 1e-12)


def class_vectors():
    """(2, 384) unit vectors: the negative phrases' mean embedding, then the positive phrases'."""
    with open(os.path.join(HERE, "zero_shot_classes.json")) as f:
        return np.array(json.load(f)["classes"], dtype=np.float32)


def scores(data, split, classes):
    """cos(text, positive phrases) - cos(text, negative phrases), from the view's layer-6 features."""
    features = np.load(f"{data}/features/{split}.npy", mmap_mode="r")[:, 6, :]
    similarity = unit(np.asarray(features, dtype=np.float32)) @ classes.T
    return similarity[:, 1] - similarity[:, 0]


def labels_at_prior(values, positive_fraction):
    return (values > np.quantile(values, 1 - positive_fraction)).astype(int)


def write(out, ids, labels):
    with open(out, "w") as f:
        f.writelines(json.dumps({"id": i, "label": int(y)}) + "\n" for i, y in zip(ids, labels))
