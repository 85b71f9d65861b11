"""The method contract's output: one JSONL line per test id."""
import json

import numpy as np


def write_predictions(path, ids, p1) -> None:
    """One {"id", "label", "p1"} line per test id, label = int(p1 > 0.5)."""
    p1 = np.asarray(p1, dtype=np.float64).reshape(-1)
    if len(p1) != len(ids):
        raise ValueError(f"{len(p1)} probabilities for {len(ids)} test ids")
    if not np.isfinite(p1).all():
        raise ValueError("predicted probabilities contain NaN or infinity")
    p1 = np.round(np.clip(p1, 0.0, 1.0), 6)
    with open(path, "w", encoding="utf-8") as f:
        for id_, p in zip(ids, p1.tolist()):
            f.write(json.dumps({"id": id_, "label": int(p > 0.5), "p1": p}) + "\n")
