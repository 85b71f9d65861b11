"""Load a data folder (train.jsonl, test.jsonl, features/*.npy, meta.json) into a Task."""
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from w2s import defaults


@dataclass
class Task:
    meta: dict
    train_ids: list[str]
    train_texts: list[str]
    weak_soft: np.ndarray  # (n_train,) the weak teacher's P(label = 1)
    test_ids: list[str]
    test_texts: list[str]
    features_train: np.ndarray  # (n_train, layers, dim) raw mean-pooled hidden states
    features_test: np.ndarray  # (n_test, layers, dim)
    X_train: np.ndarray  # (n_train, d) selected layers, standardised: what the probe sees
    X_test: np.ndarray  # (n_test, d)
    layers: tuple = defaults.LAYERS  # what X_train and X_test were made of
    standardized: bool = defaults.STANDARDIZE

    def features(self, layers) -> tuple[np.ndarray, np.ndarray]:
        """(train, test) of the chosen layers side by side, standardised: X_train and X_test where those are
        the layers they hold (no second pass over the features)."""
        if tuple(layers) == tuple(self.layers) and self.standardized:
            return self.X_train, self.X_test
        X_train, X_test = standardize(select_layers(self.features_train, layers),
                                      select_layers(self.features_test, layers))
        return X_train.astype(np.float32), X_test.astype(np.float32)

    @property
    def weak_labels(self) -> np.ndarray:
        """The teacher's hard labels, 0.0 or 1.0."""
        return (self.weak_soft > 0.5).astype(np.float32)


def read_jsonl(path: Path) -> list[dict]:
    with open(path, encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def select_layers(features: np.ndarray, layers=defaults.LAYERS) -> np.ndarray:
    """(n, layers, dim) -> (n, len(layers) * dim), the chosen layers side by side."""
    return np.ascontiguousarray(features[:, list(layers), :]).reshape(len(features), -1)


def standardize(X_train: np.ndarray, X_test: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Z-score every column with mean and std of train and test together (no labels involved)."""
    both = np.concatenate([X_train, X_test])
    mean, std = both.mean(0), both.std(0) + 1e-6
    return (X_train - mean) / std, (X_test - mean) / std


def load_task(data_dir, layers=defaults.LAYERS, standardize_features=defaults.STANDARDIZE) -> Task:
    data_dir = Path(data_dir)
    meta = json.loads((data_dir / "meta.json").read_text())
    train, test = read_jsonl(data_dir / "train.jsonl"), read_jsonl(data_dir / "test.jsonl")
    features_train = np.load(data_dir / "features" / "train.npy")
    features_test = np.load(data_dir / "features" / "test.npy")
    for name, rows, feats in (("train", train, features_train), ("test", test, features_test)):
        if len(rows) != len(feats):
            raise ValueError(f"{name}.jsonl has {len(rows)} rows but features/{name}.npy has {len(feats)}")
    X_train, X_test = select_layers(features_train, layers), select_layers(features_test, layers)
    if standardize_features:
        X_train, X_test = standardize(X_train, X_test)
    return Task(
        meta=meta,
        train_ids=[r["id"] for r in train],
        train_texts=[r["text"] for r in train],
        weak_soft=np.array([r["weak_soft"] for r in train], dtype=np.float32),
        test_ids=[r["id"] for r in test],
        test_texts=[r["text"] for r in test],
        features_train=features_train,
        features_test=features_test,
        X_train=X_train.astype(np.float32),
        X_test=X_test.astype(np.float32),
        layers=tuple(layers),
        standardized=bool(standardize_features),
    )
