"""Integrity checks on a submission: each raises a flag with its evidence for a person to review."""
from __future__ import annotations

from lab.scorer.runner import MethodRun
from lab.task.pgr import DatasetScore


def flag(kind: str, message: str, **evidence) -> dict:
    return {"kind": kind, "message": message, "evidence": evidence}


def ignores_teacher(dev: DatasetScore, shuffled: DatasetScore | None, threshold: float) -> list[dict]:
    """Trained on the teacher's labels shuffled across examples, a method that learns from the
    teacher falls to chance; one that still recovers much of the gap gets its signal elsewhere."""
    if shuffled is None or shuffled.pgr <= threshold:
        return []
    return [flag("ignores_teacher",
                 f"with the teacher's labels shuffled the method still reaches PGR {shuffled.pgr:.2f} "
                 f"(dev PGR {dev.pgr:.2f}, threshold {threshold:.2f}): it may not be learning from the teacher",
                 shuffled_pgr=shuffled.pgr, shuffled_pgr_se=shuffled.pgr_se, shuffled_acc=shuffled.acc,
                 dev_pgr=dev.pgr, seeds=shuffled.seeds, threshold=threshold)]


def heldout_gap(dev: DatasetScore, heldout: list[DatasetScore], threshold: float) -> list[dict]:
    if not heldout:
        return []
    mean_heldout = sum(s.pgr for s in heldout) / len(heldout)
    if dev.pgr - mean_heldout <= threshold:
        return []
    return [flag("heldout_gap",
                 f"dev PGR {dev.pgr:.2f} is {dev.pgr - mean_heldout:.2f} above the held-out mean {mean_heldout:.2f} "
                 f"(threshold {threshold:.2f}): it may be fitted to the dev task",
                 dev_pgr=dev.pgr, heldout_pgr={s.dataset: s.pgr for s in heldout}, threshold=threshold)]


def run_problems(runs: list[MethodRun]) -> list[dict]:
    """Failures, time-outs, stray outputs and sandbox denials, grouped by kind."""
    flags = []
    failed = [r for r in runs if not r.ok]
    if failed:
        flags.append(flag("failed", f"{len(failed)} of {len(runs)} runs failed; first: {failed[0].dataset} "
                                    f"seed {failed[0].seed}: {failed[0].error}",
                          runs=[{"dataset": r.dataset, "seed": r.seed, "error": r.error} for r in failed]))
    stray = [r for r in runs if r.extra_outputs]
    if stray:
        flags.append(flag("wrote_outside", f"the method wrote files beside its predictions: "
                                           f"{', '.join(stray[0].extra_outputs[:5])}",
                          runs=[{"dataset": r.dataset, "seed": r.seed, "files": r.extra_outputs} for r in stray]))
    denied = [r for r in runs if r.violations]
    if denied:
        flags.append(flag("sandbox_violation", f"the sandbox denied the method: {denied[0].violations[0]}",
                          runs=[{"dataset": r.dataset, "seed": r.seed, "lines": r.violations} for r in denied]))
    return flags
