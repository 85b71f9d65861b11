"""The scorer: evaluate predictions under a budget; submit = re-run a method over seeds and datasets."""
from __future__ import annotations

import random
import tempfile
import time
from contextlib import contextmanager
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from tqdm import tqdm

from lab.errors import MethodRejected
from lab.inert import inert_line
from lab.sandbox import Sandbox
from lab.scaffold import repo as research
from lab.scaffold import template_for
from lab.scorer import budget, gpus, integrity, methods
from lab.scorer.methods import MethodTree
from lab.scorer.runner import MethodRun, MethodRunner, limits_from, task_binds
from lab.store import submissions
from lab.task import files
from lab.task.pgr import DatasetScore, pgr
from lab.task.predictions import accuracy, read_predictions
from lab.task.testbed import Testbed, derived_view

SHUFFLE_SEED = 20231214  # fixed, so the shuffled-teacher check is the same for every submission


@dataclass
class SubmissionResult:
    id: int
    agent: str
    commit_sha: str | None
    entry: str
    dev: DatasetScore
    heldout: list[DatasetScore]
    failed_heldout: dict[str, str]
    shuffled: DatasetScore | None
    flags: list[dict] = field(default_factory=list)
    duration_s: float = 0.0

    def for_agent(self) -> dict:
        """What the submitting agent is told: the dev result only; held-out results are for people."""
        return {"submission": self.id, "commit": self.commit_sha, "dataset": self.dev.dataset,
                "acc": self.dev.acc, "pgr": self.dev.pgr, "pgr_se": self.dev.pgr_se, "seeds": self.dev.seeds}

    def to_dict(self) -> dict:
        return {"submission": self.id, "agent": self.agent, "commit": self.commit_sha, "method": self.entry,
                "duration_s": round(self.duration_s, 2),
                "datasets": {s.dataset: {**s.to_dict(), "role": "dev" if s is self.dev else "heldout"}
                             for s in [self.dev, *self.heldout]},
                "failed": self.failed_heldout,
                "shuffled_teacher": self.shuffled.to_dict() if self.shuffled else None,
                "flags": self.flags}


class Scorer:
    def __init__(self, cfg, db, sandbox: Sandbox, testbed: Testbed | None = None, progress: bool = True):
        self.cfg, self.db, self.sandbox = cfg, db, sandbox
        self.testbed = testbed or Testbed.load(cfg)
        self.progress = progress
        self.limits = limits_from(cfg.scorer)
        self.scratch = cfg.state_dir / "run" / "scorer"
        self.runner = MethodRunner(sandbox, self.limits, self.scratch, binds=task_binds(cfg))
        # One queue per process for the GPUs, shared by every Scorer (the service builds one per request).
        # Agents' slices keep one share of each GPU's memory for the scorer; its runs split that share.
        found = list(cfg.slices.gpus) or list(gpus.machine_gpus())
        per_gpu = -(-cfg.agents.count // len(found)) if found else 0
        self.gpus = gpus.shared_scheduler(cfg.run_dir, found, cfg.scorer.runs_per_gpu,
                                          round(1 / ((per_gpu + 1) * cfg.scorer.runs_per_gpu), 4) if found else None)

    # ---- evaluate ------------------------------------------------------------------------------
    def evaluate(self, agent: str, predictions: Path) -> dict:
        """Accuracy and PGR of a predictions file on the dev test split, within the agent's budget."""
        s = self.cfg.scorer
        budget.check(self.db, "evaluations", agent, s.evaluate_budget, s.budget_window_hours)
        dev = self.cfg.task.dev
        truth = self.testbed.labels(dev)
        predicted = read_predictions(Path(predictions), self.testbed.test_ids(dev),
                                     int(s.max_output_mb * 1024 * 1024))
        base = self.testbed.baseline(dev)
        acc = accuracy(predicted, truth)
        value = pgr(acc, base.weak_acc, base.ceiling_acc)
        submissions.record_evaluation(self.db, agent, dev, acc, value)
        return {"dataset": dev, "acc": acc, "pgr": value, "weak_acc": base.weak_acc, "ceiling_acc": base.ceiling_acc}

    # ---- submit --------------------------------------------------------------------------------
    def submit(self, agent: str, commit: str, path: str = "method.py") -> SubmissionResult:
        s = self.cfg.scorer
        budget.check(self.db, "submissions", agent, s.submit_budget, s.budget_window_hours)
        repo, _ = research.create(self.cfg.state_dir, template_for(self.cfg.task))
        with self._workdir() as work:
            tree = methods.from_commit(repo, commit, path, work / "method")
            research.pin(repo, tree.commit_sha)
            return self._score(agent, tree, work)

    def score_path(self, path: Path, agent: str = "person") -> SubmissionResult:
        with self._workdir() as work:
            tree = methods.from_path(path, work / "method", self.sandbox)
            return self._score(agent, tree, work)

    def score_baselines(self, names: list[str] | None = None) -> list[SubmissionResult]:
        """The scaffold's baseline methods (all of this task kind's by default), submitted as "baseline"."""
        from lab.scaffold import baselines_for

        names = names or list(baselines_for(self.cfg.task))
        repo, _ = research.create(self.cfg.state_dir, template_for(self.cfg.task))
        first = research.root_commit(repo)
        return [self.submit("baseline", first, f"methods/{name}.py") for name in names]

    # ---- internals -----------------------------------------------------------------------------
    @contextmanager
    def _workdir(self):
        self.scratch.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(prefix="submission-", dir=self.scratch) as work:
            yield Path(work)

    def _shuffled_view(self, work: Path) -> Path:
        """The dev view with weak_soft permuted across examples; everything else linked."""
        source = self.testbed.view(self.cfg.task.dev)
        rows = files.read_jsonl(source / "train.jsonl")
        soft = [r["weak_soft"] for r in rows]
        random.Random(SHUFFLE_SEED).shuffle(soft)
        return derived_view(source, work / "shuffled", ({**r, "weak_soft": p} for r, p in zip(rows, soft)))

    def _run_all(self, tree: MethodTree, jobs: list[tuple[str, Path, int, str]], agent: str = "") -> list[MethodRun]:
        ids = {}
        for label, view, _, dataset in jobs:
            ids.setdefault(label, self.testbed.test_ids(dataset))
        owner = " ".join(p for p in (agent, (tree.commit_sha or "")[:8] or tree.entry) if p)

        def one(job):
            label, view, seed, _ = job
            # Every run waits for a GPU slot (at once where there are no GPUs); `parallel` bounds the threads.
            with self.gpus.slot(f"{owner} {label} seed {seed}") as env:
                return self.runner.run(tree.root, tree.entry, view, ids[label], seed, label, env=env)
        with ThreadPoolExecutor(self.cfg.scorer.parallel) as pool, \
                tqdm(total=len(jobs), desc=f"scoring {inert_line(tree.entry)}", unit="run", disable=not self.progress) as bar:
            runs = []
            for run in pool.map(one, jobs):
                runs.append(run)
                bar.update(1)
        return runs

    def _summarise(self, dataset: str, runs: list[MethodRun], truth_of: str | None = None) -> DatasetScore:
        base = self.testbed.baseline(truth_of or dataset)
        truth = self.testbed.labels(truth_of or dataset)
        accs = [accuracy(r.labels, truth) for r in runs]
        return DatasetScore.from_accuracies(dataset, base.weak_acc, base.ceiling_acc, [r.seed for r in runs], accs)

    def _score(self, agent: str, tree: MethodTree, work: Path) -> SubmissionResult:
        start = time.monotonic()
        task, s = self.cfg.task, self.cfg.scorer
        seeds = list(range(s.seeds))
        common = dict(agent=agent, commit_sha=tree.commit_sha, path=tree.entry, tree_hash=tree.tree_hash,
                      fingerprint=self.cfg.scoring_fingerprint(), seeds=seeds, sandbox=self.sandbox.name)
        dev_view = self.testbed.view(task.dev)
        # One dev run first: a broken method is rejected in seconds, not after every seed.
        first = self._run_all(tree, [(task.dev, dev_view, seeds[0], task.dev)], agent)[0]
        if not first.ok:
            self._reject(common, first, start)
        jobs = [(task.dev, dev_view, seed, task.dev) for seed in seeds[1:]]
        jobs += [(ds, self.testbed.view(ds), seed, ds) for ds in task.heldout for seed in seeds]
        shuffled_view = self._shuffled_view(work) if s.shuffle_seeds else None
        jobs += [("shuffled_teacher", shuffled_view, seed, task.dev) for seed in seeds[: s.shuffle_seeds]]
        runs = [first] + self._run_all(tree, jobs, agent)

        by_label: dict[str, list[MethodRun]] = {}
        for run in runs:
            by_label.setdefault(run.dataset, []).append(run)
        dev_failed = next((r for r in by_label[task.dev] if not r.ok), None)
        if dev_failed:
            self._reject(common, dev_failed, start)
        dev = self._summarise(task.dev, by_label[task.dev])
        heldout, failed = [], {}
        for ds in task.heldout:
            bad = next((r for r in by_label[ds] if not r.ok), None)
            if bad:
                failed[ds] = f"seed {bad.seed}: {bad.error}"
            else:
                heldout.append(self._summarise(ds, by_label[ds]))
        shuffled_runs = by_label.get("shuffled_teacher", [])
        shuffled = (self._summarise("shuffled_teacher", shuffled_runs, truth_of=task.dev)
                    if shuffled_runs and all(r.ok for r in shuffled_runs) else None)
        flags = (integrity.ignores_teacher(dev, shuffled, s.flag_shuffled_pgr)
                 + integrity.heldout_gap(dev, heldout, s.flag_heldout_gap)
                 + integrity.run_problems(runs))
        scores = [{**dev.to_dict(), "role": "dev", "status": "ok"}]
        scores += [{**h.to_dict(), "role": "heldout", "status": "ok"} for h in heldout]
        scores += [{"dataset": ds, "role": "heldout", "status": "failed", "error": err} for ds, err in failed.items()]
        duration = time.monotonic() - start
        sid = submissions.record_submission(self.db, **common, duration_s=duration, scores=scores, flags=flags)
        return SubmissionResult(sid, agent, tree.commit_sha, tree.entry, dev, heldout, failed, shuffled,
                                flags, duration)

    def _reject(self, common: dict, run: MethodRun, start: float):
        message = f"method rejected on the dev task, seed {run.seed}: {run.error}"
        submissions.record_submission(self.db, **common, duration_s=time.monotonic() - start, scores=[],
                                      flags=integrity.run_problems([run]), status="rejected", error=message)
        raise MethodRejected(message)

