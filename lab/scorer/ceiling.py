"""Fixing each dataset's ceiling: the scaffold's vanilla method trained on ground-truth labels.

Running the very method that agents start from (not a second implementation of it) makes the
ceiling "the strong model trained the same way", as PGR requires.
"""
from __future__ import annotations

import json
import tempfile
from pathlib import Path

from lab.errors import TestbedError
from lab.scaffold import repo as research
from lab.scaffold.safegit import SafeGit
from lab.scorer import methods
from lab.scorer.runner import MethodRunner
from lab.task import files
from lab.task.predictions import accuracy
from lab.task.testbed import Baseline, Testbed

CEILING_METHOD = "methods/vanilla.py"


def fix_ceilings(testbed: Testbed, repo: SafeGit, runner: MethodRunner, seeds: list[int],
                 force: bool = False) -> list[Baseline]:
    fixed = []
    runner.scratch.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="ceiling-", dir=runner.scratch) as work:
        tree = None
        commit = research.root_commit(repo)
        for dataset in testbed.task.datasets:
            current = testbed.baseline(dataset)
            if (current.ceiling_acc is not None and current.seeds == seeds and current.ceiling_commit == commit
                    and not force):
                fixed.append(current)
                continue
            if tree is None:
                tree = methods.from_commit(repo, commit, CEILING_METHOD, Path(work) / "method")
            truth = testbed.labels(dataset)
            ids = testbed.test_ids(dataset)
            # each finished seed is kept, so an interrupted `lab init` (hours with large models) resumes
            partial = testbed.private_dir(dataset) / "ceiling_partial.json"
            done = _read_partial(partial, commit) if not force else {}
            for seed in seeds:
                if str(seed) in done:
                    continue
                run = runner.run(tree.root, tree.entry, testbed.ground_truth_view(dataset), ids, seed, dataset)
                if not run.ok:
                    raise TestbedError(f"the ceiling run of {CEILING_METHOD} on {dataset} seed {seed} failed: {run.error}")
                done[str(seed)] = accuracy(run.labels, truth)
                files.write_json(partial, {"commit": commit, "accs": done})
            fixed.append(testbed.set_ceiling(dataset, seeds, [done[str(s)] for s in seeds], commit))
            partial.unlink(missing_ok=True)
    return fixed


def _read_partial(path: Path, commit: str) -> dict[str, float]:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return data.get("accs", {}) if data.get("commit") == commit else {}
