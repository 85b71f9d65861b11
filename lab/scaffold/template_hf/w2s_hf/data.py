"""The data folder (train.jsonl, test.jsonl, meta.json) as a View, prompts, and the method contract."""
from __future__ import annotations

import argparse
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from .predictions import write_predictions

SHAPE_FIELDS = {"binary": ("question", "choice"), "pairwise": ("prompt", "first", "second")}


@dataclass
class View:
    """What a method may read: meta.json, the training rows (with weak_soft) and the test rows."""

    meta: dict
    train: list[dict]
    test: list[dict]

    @property
    def shape(self) -> str:
        return self.meta["shape"]

    @property
    def train_ids(self) -> list[str]:
        return [r["id"] for r in self.train]

    @property
    def test_ids(self) -> list[str]:
        return [r["id"] for r in self.test]

    @property
    def weak_soft(self) -> np.ndarray:
        """(n_train,) float32: the weak teacher's P(label = 1) for every training row."""
        return np.array([r["weak_soft"] for r in self.train], dtype=np.float32)

    @property
    def weak_labels(self) -> np.ndarray:
        """The teacher's hard labels, 0.0 or 1.0."""
        return (self.weak_soft > 0.5).astype(np.float32)

    @property
    def train_prompts(self) -> list[str]:
        return [prompt(r, self.meta) for r in self.train]

    @property
    def test_prompts(self) -> list[str]:
        return [prompt(r, self.meta) for r in self.test]

    @property
    def train_config(self) -> dict:
        """meta["train"]: epochs, lr, batch_size, max_length, lora_r, lora_alpha, lora_dropout, grad_accum."""
        return dict(self.meta["train"])


def read_jsonl(path) -> list[dict]:
    with open(path, encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def load_view(data_dir) -> View:
    data_dir = Path(data_dir)
    meta = json.loads((data_dir / "meta.json").read_text(encoding="utf-8"))
    view = View(meta=meta, train=read_jsonl(data_dir / "train.jsonl"), test=read_jsonl(data_dir / "test.jsonl"))
    fields = SHAPE_FIELDS.get(meta.get("shape"))
    if fields is None:
        raise ValueError(f"meta.json: shape {meta.get('shape')!r} is not one of {sorted(SHAPE_FIELDS)}")
    for name, rows in (("train", view.train), ("test", view.test)):
        for number, row in enumerate(rows, start=1):
            missing = [f for f in ("id", *fields) if f not in row]
            if missing:
                raise ValueError(f"{name}.jsonl line {number}: missing {missing} for shape {meta['shape']!r}")
    return view


def prompt(row: dict, meta: dict) -> str:
    """meta["template"] filled in with the row's fields (question/choice, or prompt/first/second)."""
    return meta["template"].format_map(row)


def swapped(row: dict) -> dict:
    """A pairwise row with `first` and `second` exchanged: its label is 1 - the row's label."""
    out = dict(row, first=row["second"], second=row["first"])
    if "weak_soft" in out:
        out["weak_soft"] = 1.0 - out["weak_soft"]
    return out


def parse_args(description: str | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--data", type=Path, required=True, help="data folder: train.jsonl, test.jsonl, meta.json")
    parser.add_argument("--out", type=Path, required=True, help="where to write the predictions (JSONL)")
    parser.add_argument("--seed", type=int, default=0)
    return parser.parse_args()


def run(predict: Callable[[View, int], np.ndarray], description: str | None = None) -> None:
    """Parse the contract's arguments, load the view, call predict(view, seed) -> P(label = 1) on test, write."""
    args = parse_args(description)
    view = load_view(args.data)
    write_predictions(args.out, view.test_ids, predict(view, args.seed))
