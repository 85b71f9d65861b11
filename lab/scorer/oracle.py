"""What an agent may learn of labels it has not seen, bounded in one place.

Every accuracy an agent is told (an `evaluate`, its submissions' public dev results, the leaderboard's) is the true
one plus Gaussian noise of SD `[scorer] evaluate_noise` test texts (of the texts scored: 3 of 550 is 0.0055), rounded to
three decimals: an exact answer is a label oracle (flip one prediction, read one label), and a rounded one without
noise leaks as fast at the rounding's edges. Counting the noise in texts keeps one flipped prediction's share of it the
same whatever the size of the test set. An
`evaluate` draws its noise afresh, so that asking again costs budget each time; a submission's noise is drawn once per
seed from the lab's secret key and the submission's id, so that reading its result again (the `submission` tool, the
leaderboard) tells nothing new. Only the public dev set is ever answered on: the private replica and the held-out
sets reach agents as flag kinds alone (lab.scorer.told). bench/bench_leakage.py measures what the strongest attacks
it knows recover at the full budget; docs/scoring.md states the figure.

An evaluation may ask about one half of the public test texts (`part` "a" or "b", fixed by a hash of each id), so
that a researcher can select on one half and confirm on the other.
"""
from __future__ import annotations

import hashlib
import hmac
import json
import os
import random
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from lab.task.pgr import mean_se, pgr

if TYPE_CHECKING:
    from lab.settings import Settings

PARTS = ("all", "a", "b")


def secret(path: Path) -> bytes:
    """The lab's secret key for fixed noise, made once beside the private data (which no sandbox sees)."""
    try:
        return path.read_bytes()
    except FileNotFoundError:
        pass
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return path.read_bytes()     # another process made it first
    with os.fdopen(fd, "wb") as handle:
        handle.write(os.urandom(32))
    return path.read_bytes()


def in_part(text_id: str, part: str) -> bool:
    if part == "all":
        return True
    return (hashlib.sha256(text_id.encode()).digest()[0] % 2 == 0) == (part == "a")


DECIMALS = 3       # of every accuracy told


@dataclass(frozen=True)
class Coarse:
    noise: float      # SD of the noise on the count of correct predictions, in texts
    key: bytes
    public_texts: int   # the public dev set's test texts, which a submission's accuracies are over

    def _told(self, acc: float, texts: int, rng: random.Random) -> float:
        noisy = acc + (rng.gauss(0.0, self.noise / texts) if self.noise else 0.0)
        return round(min(1.0, max(0.0, noisy)), DECIMALS)

    def evaluation(self, acc: float, texts: int) -> float:
        """An evaluate's accuracy on `texts` test texts, with noise drawn afresh."""
        return self._told(acc, texts, random.SystemRandom())

    def seed_accuracy(self, submission_id: int, seed: int, acc: float) -> float:
        """One seed's public accuracy of a submission, with the noise fixed for that submission and seed."""
        digest = hmac.new(self.key, f"submission {submission_id} seed {seed}".encode(), hashlib.sha256).digest()
        return self._told(acc, self.public_texts, random.Random(int.from_bytes(digest[:8], "big")))

    def submission(self, submission_id: int, seeds: list[int], accs: list[float], weak_acc: float,
                   ceiling_acc: float) -> dict:
        """A submission's public result as agents read it: accuracy, PGR and its SE from the noisy seeds."""
        told = [self.seed_accuracy(submission_id, s, a) for s, a in zip(seeds, accs)]
        mean_pgr, se = mean_se([pgr(a, weak_acc, ceiling_acc) for a in told])
        return {"acc": round(sum(told) / len(told), 4), "pgr": round(mean_pgr, 3), "pgr_se": round(se, 3)}


def coarse_for(cfg: Settings) -> Coarse:
    """The lab's coarsening of what agents are told: its [scorer] settings, its secret key, its public test size."""
    meta = json.loads((cfg.state.data / cfg.task.dev / "meta.json").read_text())
    return Coarse(cfg.scorer.evaluate_noise, secret(cfg.state.oracle_key), int(meta["n_test"]))
