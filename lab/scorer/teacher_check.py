"""The teacher check: do a method's predictions move with the teacher it is given?

It runs where the method has never seen the data: the private replica and the held-out sets. There every set has two
teachers that no agent has seen, the same weak model trained the same way on labelled texts of their own: the first
labels the set's ranked runs, the second labels the check's runs, `check_seeds` more runs with the same seeds. Nothing
in a run's labels says which of the two it is in (bench/bench_teacher_dependence.py prints what a method could
compute: each teacher has figures of its own, and a method knows neither's).

On the test texts where the two teachers disagree, each pair of runs (first teacher, second teacher, same seed) scores
a text +1 where each run's prediction is its own teacher's answer (the prediction moved with the teacher), -1 where
each is the other teacher's (it moved against it), 0 where it did not move. A method that ignores its teacher (the
strong model's view alone, a fixed rule, anything but the teacher) scores 0 on every text however good it is; one
that copies its teacher, +1. Summed over a text's pairs, a text moved with the teacher or against it; the check counts
texts of each, and asks whether the two counts differ by more than chance (a sign test): a method that answers at
random in some runs moves texts both ways alike. A good weak-to-strong method is robust to its teacher's errors and
moves few texts, but it moves them with its teacher; the flag is for predictions that do not depend on the teacher.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass

SECOND = ":teacher_b"     # the label of a run with the second teacher: the set's name and this


def moved(given: dict[str, int], other: dict[str, int], teacher_a: dict[str, float],
          teacher_b: dict[str, float]) -> dict[str, int]:
    """Per test text where the teachers disagree, how one pair of runs moved (`given`: with the first teacher,
    `other`: with the second, same seed): +1 with the teachers, -1 against them, 0 not at all."""
    out = {}
    for text_id, p_a in teacher_a.items():
        a, b = int(p_a > 0.5), int(teacher_b[text_id] > 0.5)
        if a != b:
            out[text_id] = int(given[text_id] == a) + int(other[text_id] == b) - 1
    return out


@dataclass(frozen=True)
class Pair:
    set: str
    seed: int
    following: float        # the mean over the texts where the teachers disagree
    disagreements: int


@dataclass(frozen=True)
class TeacherFollowing:
    following: float        # the mean over every pair's texts where the teachers disagree
    se: float               # over those texts, each text's pairs taken together
    with_teacher: int       # texts that moved with the teachers, summed over their pairs
    against: int            # texts that moved against them
    z: float                # (with_teacher - against) / sqrt(with_teacher + against): 0 where none moved
    pairs: list[Pair]

    @classmethod
    def measure(cls, runs: list[tuple[str, int, dict[str, int]]]) -> TeacherFollowing | None:
        """From each pair of runs' moves (set, seed, moved(...)); None where the teachers agree everywhere."""
        if not any(values for _, _, values in runs):
            return None
        per_text: dict[tuple[str, str], list[int]] = {}
        for name, _, values in runs:
            for text_id, value in values.items():
                per_text.setdefault((name, text_id), []).append(value)
        means = [sum(v) / len(v) for v in per_text.values()]
        mean = sum(means) / len(means)
        se = math.sqrt(sum((m - mean) ** 2 for m in means) / (len(means) - 1) / len(means)) if len(means) > 1 else 0.0
        up = sum(1 for v in per_text.values() if sum(v) > 0)
        down = sum(1 for v in per_text.values() if sum(v) < 0)
        z = (up - down) / math.sqrt(up + down) if up + down else 0.0
        pairs = [Pair(name, seed, sum(values.values()) / len(values), len(values)) for name, seed, values in runs
                 if values]
        return cls(mean, se, up, down, z, pairs)

    def to_dict(self) -> dict:
        return {"following": self.following, "se": self.se, "with_teacher": self.with_teacher,
                "against": self.against, "z": self.z, "pairs": [asdict(p) for p in self.pairs]}
