"""Integrity checks on a submission: each raises a flag with its evidence for a person to review.

Every flag has a scope: "dev" when it was computed from the dev task alone (the submitting agent is
told), "heldout" when anything of a held-out set went into it (only people see it).
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass

from lab.scorer.runner import MethodRun
from lab.task.pgr import DatasetScore, mean_se
from lab.task.pgr import pgr as pgr_of

DEV, HELDOUT = "dev", "heldout"
DEPENDENCE_FOR_AGENTS = ("pgr", "counterfactual_pgr", "difference", "difference_se", "seeds")


def flag(kind: str, message: str, scope: str, **evidence) -> dict:
    if scope not in (DEV, HELDOUT):
        raise ValueError(f"a flag's scope is {DEV!r} or {HELDOUT!r}, not {scope!r}")
    return {"kind": kind, "message": message, "scope": scope, "evidence": evidence}


@dataclass(frozen=True)
class TeacherDependence:
    """How much of a method's dev PGR its teacher supplies: PGR with the real teacher minus PGR with
    counterfactual teachers that keep what the strong model sees and lose what the teacher adds.

    Each counterfactual run uses the seed of a dev run, and the SE comes from those pairs' differences:
    a method that ignores the teacher gives the same answer for a seed with either teacher, so its
    difference is 0 with SE 0 however much its answers vary from seed to seed. With one pair, the SE
    is that of the two means, sqrt(SE_real² + SE_counterfactual²)."""
    pgr: float
    pgr_se: float
    counterfactual_pgr: float
    counterfactual_pgr_se: float
    difference: float
    difference_se: float
    seeds: list[int]             # the counterfactual runs' seeds, one counterfactual teacher each
    counterfactual: str          # how the counterfactual teachers were made

    @classmethod
    def measure(cls, dev: DatasetScore, counterfactual: DatasetScore, how: str) -> TeacherDependence:
        real = {seed: pgr_of(acc, dev.weak_acc, dev.ceiling_acc) for seed, acc in zip(dev.seeds, dev.per_seed_acc)}
        pairs = [real[seed] - pgr_of(acc, counterfactual.weak_acc, counterfactual.ceiling_acc)
                 for seed, acc in zip(counterfactual.seeds, counterfactual.per_seed_acc) if seed in real]
        se = mean_se(pairs)[1] if len(pairs) > 1 else math.hypot(dev.pgr_se, counterfactual.pgr_se)
        return cls(dev.pgr, dev.pgr_se, counterfactual.pgr, counterfactual.pgr_se, dev.pgr - counterfactual.pgr,
                   se, list(counterfactual.seeds), how)

    def to_dict(self) -> dict:
        return asdict(self)

    def for_agent(self) -> dict:
        return {k: getattr(self, k) for k in DEPENDENCE_FOR_AGENTS}


def describe_dependence(dependence: dict) -> str:
    """One line from a dependence's dict (to_dict() or for_agent()), for people and agents alike."""
    d = dependence
    return (f"the teacher adds {d['difference']:+.3f} ± {d['difference_se']:.3f} PGR: {d['pgr']:+.3f} with it, "
            f"{d['counterfactual_pgr']:+.3f} with counterfactual teachers over {len(d['seeds'])} runs")


def ignores_teacher(dependence: TeacherDependence | None, margin: float, z: float) -> list[dict]:
    """Flag a result that does not depend on the teacher, whatever its level: the difference's whole
    interval (difference ± z SE) lies within ±`margin` of PGR. A method that the teacher's own
    information lowers (bootstrap on this testbed) depends on it too, so the test is two-sided."""
    if dependence is None:
        return []
    d = dependence
    lower, upper = d.difference - z * d.difference_se, d.difference + z * d.difference_se
    if upper >= margin or lower <= -margin:
        return []
    return [flag("ignores_teacher",
                 f"{describe_dependence(d.to_dict())}; within ±{margin:.2f} even at ±{z:g} SE: "
                 f"the result may not come from the teacher",
                 DEV, **d.to_dict(), lower=lower, upper=upper, margin=margin, z=z)]


def heldout_gap(dev: DatasetScore, heldout: list[DatasetScore], threshold: float) -> list[dict]:
    if not heldout:
        return []
    mean_heldout = sum(s.pgr for s in heldout) / len(heldout)
    if dev.pgr - mean_heldout <= threshold:
        return []
    return [flag("heldout_gap",
                 f"dev PGR {dev.pgr:.2f} is {dev.pgr - mean_heldout:.2f} above the held-out mean {mean_heldout:.2f} "
                 f"(threshold {threshold:.2f}): it may be fitted to the dev task", HELDOUT,
                 dev_pgr=dev.pgr, heldout_pgr={s.dataset: s.pgr for s in heldout}, threshold=threshold)]


def run_problems(runs: list[MethodRun], scope: str) -> list[dict]:
    """Failures, time-outs, stray outputs and sandbox denials, grouped by kind; `scope` says whether
    the runs were all on the dev task (dev and counterfactual-teacher runs) or on a held-out set."""
    flags = []
    failed = [r for r in runs if not r.ok]
    if failed:
        flags.append(flag("failed", f"{len(failed)} of {len(runs)} runs failed; first: {failed[0].dataset} "
                                    f"seed {failed[0].seed}: {failed[0].error}", scope,
                          runs=[{"dataset": r.dataset, "seed": r.seed, "error": r.error} for r in failed]))
    stray = [r for r in runs if r.extra_outputs]
    if stray:
        flags.append(flag("wrote_outside", f"the method wrote files beside its predictions: "
                                           f"{', '.join(stray[0].extra_outputs[:5])}", scope,
                          runs=[{"dataset": r.dataset, "seed": r.seed, "files": r.extra_outputs} for r in stray]))
    denied = [r for r in runs if r.violations]
    if denied:
        flags.append(flag("sandbox_violation", f"the sandbox denied the method: {denied[0].violations[0]}", scope,
                          runs=[{"dataset": r.dataset, "seed": r.seed, "lines": r.violations} for r in denied]))
    return flags
