"""Fixing each dataset's ceiling: the scaffold's vanilla method trained on ground-truth labels.

Running the very method that agents start from (not a second implementation of it) makes the
ceiling "the strong model trained the same way", as PGR requires. Its runs go through the lab's engine
as a private batch: their views carry the train split's true labels, so on a cluster they run on the
head's own node, and nothing of them enters the object store.
"""
from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Callable

from lab.errors import TestbedError
from lab.scaffold import repo as research
from lab.scaffold.safegit import SafeGit
from lab.scorer import methods
from lab.scorer.engines import Engine, MethodJob, RunSpec
from lab.scorer.methods import MethodTree
from lab.scorer.runner import MethodRun
from lab.task import files
from lab.task.predictions import accuracy
from lab.task.testbed import Baseline, Testbed

CEILING_METHOD = "methods/vanilla.py"


def fix_ceilings(testbed: Testbed, repo: SafeGit, engine: Engine, spec_for: Callable[[MethodTree], RunSpec],
                 scratch: Path, seeds: list[int], force: bool = False) -> list[Baseline]:
    """Each dataset's ceiling over the seeds; every finished seed is kept, so an interrupted `lab init` (hours
    with large models) resumes where it stopped."""
    commit = research.root_commit(repo)
    fixed: dict[str, Baseline] = {}
    done: dict[str, dict[str, float]] = {}
    for dataset in testbed.task.scored:
        current = testbed.baseline(dataset)
        if (current.ceiling_acc is not None and current.seeds == seeds and current.ceiling_commit == commit
                and not force):
            fixed[dataset] = current
        else:
            done[dataset] = _read_partial(_partial(testbed, dataset), commit) if not force else {}
    jobs = [MethodJob(dataset, testbed.ground_truth_view(dataset), seed)
            for dataset, accs in done.items() for seed in seeds if str(seed) not in accs]
    if jobs:
        scratch.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(prefix="ceiling-", dir=scratch) as work:
            tree = methods.from_commit(repo, commit, CEILING_METHOD, Path(work) / "method")

            def keep(run: MethodRun) -> None:
                if run.ok:
                    done[run.dataset][str(run.seed)] = accuracy(run.ok_labels(), testbed.labels(run.dataset))
                    files.write_json(_partial(testbed, run.dataset), {"commit": commit, "accs": done[run.dataset]})
            for run in engine.run(spec_for(tree), jobs, done=keep):
                if not run.ok:
                    raise TestbedError(f"the ceiling run of {CEILING_METHOD} on {run.dataset} seed {run.seed} "
                                       f"failed: {run.error}")
    for dataset, accs in done.items():
        fixed[dataset] = testbed.set_ceiling(dataset, seeds, [accs[str(s)] for s in seeds], commit)
        _partial(testbed, dataset).unlink(missing_ok=True)
    return [fixed[d] for d in testbed.task.scored]


def _partial(testbed: Testbed, dataset: str) -> Path:
    return testbed.private_dir(dataset) / "ceiling_partial.json"


def _read_partial(path: Path, commit: str) -> dict[str, float]:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return data.get("accs", {}) if data.get("commit") == commit else {}
