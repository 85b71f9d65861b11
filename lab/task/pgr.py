"""Performance Gap Recovered and its summary over seeds."""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass


def pgr(acc: float, weak_acc: float, ceiling_acc: float) -> float:
    gap = ceiling_acc - weak_acc
    if gap <= 0:
        raise ValueError(f"ceiling accuracy {ceiling_acc:.4f} does not exceed weak accuracy {weak_acc:.4f}")
    return (acc - weak_acc) / gap


def mean_se(values: list[float]) -> tuple[float, float]:
    """Mean and standard error of the mean (0 for a single value)."""
    n = len(values)
    mean = sum(values) / n
    if n < 2:
        return mean, 0.0
    var = sum((v - mean) ** 2 for v in values) / (n - 1)
    return mean, math.sqrt(var / n)


@dataclass(frozen=True)
class DatasetScore:
    dataset: str
    weak_acc: float
    ceiling_acc: float
    acc: float
    pgr: float
    pgr_se: float
    seeds: list[int]
    per_seed_acc: list[float]

    @classmethod
    def from_accuracies(cls, dataset: str, weak_acc: float, ceiling_acc: float, seeds: list[int],
                        accs: list[float]) -> "DatasetScore":
        mean_pgr, se = mean_se([pgr(a, weak_acc, ceiling_acc) for a in accs])
        return cls(dataset, weak_acc, ceiling_acc, sum(accs) / len(accs), mean_pgr, se, list(seeds), list(accs))

    def to_dict(self) -> dict:
        return asdict(self)


def sampling_se(per_seed: list[dict[str, int]], truth: dict[str, int], weak: dict[str, int], gap: float) -> float:
    """The SE of a PGR that counts the sampling of the test texts as well as the seeds: per text, the method's
    accuracy over the seeds minus the weak teacher's, whose mean over the texts divided by the gap is the PGR."""
    n = len(truth)
    if n < 2 or gap <= 0 or not per_seed:
        return 0.0
    d = [sum(run[i] == y for run in per_seed) / len(per_seed) - (weak[i] == y) for i, y in truth.items()]
    mean = sum(d) / n
    return math.sqrt(sum((x - mean) ** 2 for x in d) / (n - 1) / n) / gap
