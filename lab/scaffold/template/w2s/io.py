"""The method contract: `python method.py --data DIR --out PREDICTIONS --seed N`."""
import argparse
import json
from pathlib import Path
from typing import Callable

import numpy as np

from w2s.data import Task, load_task


def parse_args(description: str | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--data", type=Path, required=True, help="data folder: train.jsonl, test.jsonl, features/")
    parser.add_argument("--out", type=Path, required=True, help="where to write the predictions (JSONL)")
    parser.add_argument("--seed", type=int, default=0)
    return parser.parse_args()


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


def run(predict: Callable[[Task, int], np.ndarray], description: str | None = None) -> None:
    """Parse the contract's arguments, load the data, call predict(task, seed) -> P(label = 1) on test, write."""
    args = parse_args(description)
    task = load_task(args.data)
    write_predictions(args.out, task.test_ids, predict(task, args.seed))
