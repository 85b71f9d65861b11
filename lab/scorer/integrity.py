"""Integrity checks on a submission: each raises a flag with its evidence for a person to review.

Every flag has a scope: "dev" when it was computed from the public dev set alone (the submitting agent is told it
whole), "private" when the private replica went into it, "heldout" when a held-out set did (the agent is told only
its kind: lab.scorer.told).
"""
from __future__ import annotations

import math

from lab import score_text
from lab.scorer.runner import MethodRun
from lab.scorer.teacher_check import TeacherFollowing
from lab.store.scores import Following
from lab.task.pgr import DatasetScore

DEV, PRIVATE, HELDOUT = "dev", "private", "heldout"


def flag(kind: str, message: str, scope: str, **evidence) -> dict:
    if scope not in (DEV, PRIVATE, HELDOUT):
        raise ValueError(f"a flag's scope is {DEV!r}, {PRIVATE!r} or {HELDOUT!r}, not {scope!r}")
    return {"kind": kind, "message": message, "scope": scope, "evidence": evidence}


def ignores_teacher(following: TeacherFollowing | None, z: float) -> list[dict]:
    """Flag predictions that do not depend on the teacher: where two teachers disagree, as many texts moved against
    the teacher as with it, within chance (|z| below `z`; none at all for a method that ignores it). Moving against
    the teacher consistently is depending on it too (a method whose teacher lowers it)."""
    if following is None or abs(following.z) >= z:
        return []
    check = score_text.teacher_check(Following.from_dict(following.to_dict()))
    return [flag("ignores_teacher", f"{check}: no more one way than chance gives (|z| < {z:g}), so its predictions do "
                 f"not depend on its teacher", PRIVATE, **following.to_dict(), threshold_z=z)]


def overfit_public(public: DatasetScore, private: DatasetScore, public_se: float, private_se: float,
                   margin: float, z: float) -> list[dict]:
    """Flag a public dev PGR far above the private replica's: the method (or the research behind it) fits the
    public set's labels. The SEs count the test texts' sampling as well as the seeds (lab.task.pgr.sampling_se)."""
    gap = public.pgr - private.pgr
    se = math.hypot(public_se, private_se)
    if gap - z * se <= margin:
        return []
    return [flag("overfit_public",
                 f"public dev PGR {public.pgr:+.2f} is {gap:.2f} ± {se:.2f} above the private replica's "
                 f"{private.pgr:+.2f} (more than {margin:.2f} even at {z:g} SE): it fits the public dev set",
                 PRIVATE, public_pgr=public.pgr, private_pgr=private.pgr, difference=gap, difference_se=se,
                 public_se=public_se, private_se=private_se, margin=margin, z=z)]


def heldout_gap(dev: DatasetScore, heldout: list[DatasetScore], threshold: float) -> list[dict]:
    """`dev`: the dev task's unbiased figure, the private replica's (the public one where it failed)."""
    if not heldout:
        return []
    mean_heldout = sum(s.pgr for s in heldout) / len(heldout)
    if dev.pgr - mean_heldout <= threshold:
        return []
    return [flag("heldout_gap",
                 f"dev PGR {dev.pgr:.2f} ({dev.dataset}) is {dev.pgr - mean_heldout:.2f} above the held-out mean "
                 f"{mean_heldout:.2f} (threshold {threshold:.2f}): it may be fitted to the dev task", HELDOUT,
                 dev_pgr=dev.pgr, dev_set=dev.dataset, heldout_pgr={s.dataset: s.pgr for s in heldout},
                 threshold=threshold)]


def run_problems(runs: list[MethodRun], scope: str) -> list[dict]:
    """Failures, time-outs, stray outputs and sandbox denials, grouped by kind; `scope` says whose runs: the public
    dev set's, the private replica's (either teacher) or the held-out sets' (either teacher)."""
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
