"""The method contract: `python method.py --data DIR --out PREDICTIONS --seed N`."""
import argparse
from pathlib import Path
from typing import Callable

import numpy as np

from w2s.data import Task, load_task
from w2s.predictions import write_predictions


def parse_args(description: str | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--data", type=Path, required=True, help="data folder: train.jsonl, test.jsonl, features/")
    parser.add_argument("--out", type=Path, required=True, help="where to write the predictions (JSONL)")
    parser.add_argument("--seed", type=int, default=0)
    return parser.parse_args()


def run(predict: Callable[[Task, int], np.ndarray], description: str | None = None) -> None:
    """Parse the contract's arguments, load the data, call predict(task, seed) -> P(label = 1) on test, write."""
    args = parse_args(description)
    task = load_task(args.data)
    write_predictions(args.out, task.test_ids, predict(task, args.seed))
