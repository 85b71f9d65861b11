"""The scorer: evaluate predictions under a budget; submit = re-run a method over seeds and datasets."""
from __future__ import annotations

import tempfile
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from tqdm import tqdm

from lab.errors import MethodRejected
from lab.inert import inert_line
from lab.sandbox import Sandbox
from lab.scaffold import repo as research
from lab.scaffold import template_for
from lab.scorer import budget, counterfactual, engines, integrity, methods
from lab.scorer.engines import MethodJob, RunSpec
from lab.scorer.engines.base import Tick
from lab.scorer.integrity import TeacherDependence
from lab.scorer.methods import MethodTree
from lab.scorer.runner import MethodRun, limits_from, task_binds
from lab.store import submissions
from lab.task import files
from lab.task.pgr import DatasetScore, pgr
from lab.task.predictions import accuracy, read_predictions
from lab.task.testbed import Testbed

COUNTERFACTUAL = "counterfactual_teacher"   # the label of the teacher-dependence check's runs
RUN_PREDICTIONS, RUN_STDOUT, RUN_STDERR = "predictions.jsonl", "stdout.txt", "stderr.txt"   # an agent's run's outputs


@dataclass
class SubmissionResult:
    id: int
    agent: str
    commit_sha: str | None
    entry: str
    dev: DatasetScore
    heldout: list[DatasetScore]
    failed_heldout: dict[str, str]
    teacher_dependence: TeacherDependence | None
    flags: list[dict] = field(default_factory=list)
    duration_s: float = 0.0

    def for_agent(self) -> dict:
        """What the submitting agent is told: the dev result, the teacher dependence and the flags computed
        on the dev task; held-out results, and every flag that draws on them, are for people."""
        return {"submission": self.id, "commit": self.commit_sha, "dataset": self.dev.dataset,
                "acc": self.dev.acc, "pgr": self.dev.pgr, "pgr_se": self.dev.pgr_se, "seeds": self.dev.seeds,
                "teacher_dependence": self.teacher_dependence.for_agent() if self.teacher_dependence else None,
                "flags": [{"kind": f["kind"], "message": f["message"]} for f in self.flags
                          if f["scope"] == integrity.DEV]}

    def to_dict(self) -> dict:
        return {"submission": self.id, "agent": self.agent, "commit": self.commit_sha, "method": self.entry,
                "duration_s": round(self.duration_s, 2),
                "datasets": {s.dataset: {**s.to_dict(), "role": "dev" if s is self.dev else "heldout"}
                             for s in [self.dev, *self.heldout]},
                "failed": self.failed_heldout,
                "teacher_dependence": self.teacher_dependence.to_dict() if self.teacher_dependence else None,
                "flags": self.flags}


class Scorer:
    def __init__(self, cfg, db, sandbox: Sandbox, testbed: Testbed | None = None, progress: bool = True):
        self.cfg, self.db, self.sandbox = cfg, db, sandbox
        self.testbed = testbed or Testbed.load(cfg)
        self.progress = progress
        self.limits = limits_from(cfg.scorer)
        self.scratch = cfg.state_dir / "run" / "scorer"
        # One engine per process, shared by every Scorer (the service builds one per request): on this machine
        # with its GPU queue, or on a Ray cluster.
        self.engine = engines.shared(cfg, sandbox)

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
    def submit(self, agent: str, commit: str, path: str = "method.py", tick: Tick | None = None) -> SubmissionResult:
        """Score an agent's commit; `tick` is called at least every second while its runs go on (a heartbeat)."""
        s = self.cfg.scorer
        budget.check(self.db, "submissions", agent, s.submit_budget, s.budget_window_hours)
        repo, _ = research.create(self.cfg.state_dir, template_for(self.cfg.task))
        with self._workdir() as work:
            tree = methods.from_commit(repo, commit, path, work / "method")
            research.pin(repo, tree.commit_sha)
            return self._score(agent, tree, work, tick)

    def run_once(self, agent: str, commit: str, path: str, seed: int, args: list[str],
                 outputs: Path) -> tuple[MethodRun, list[str]]:
        """An agent's `run`: its commit's method once on the dev view, in its own sandbox under the scorer's limits,
        through the engine; its predictions and the ends of its logs are written to `outputs`."""
        repo, _ = research.create(self.cfg.state_dir, template_for(self.cfg.task))
        dev = self.cfg.task.dev
        with self._workdir() as work:
            tree = methods.from_commit(repo, commit, path, work / "method")
            job = MethodJob(dev, self.testbed.view(dev), seed, tuple(args))
            run = self.engine.run(self.spec(tree, agent, user=agent, keep_predictions=True), [job])[0]
        written = {RUN_STDOUT: run.result.stdout.encode(), RUN_STDERR: run.result.stderr.encode()}
        if run.predictions is not None:
            written[RUN_PREDICTIONS] = run.predictions
        for name, data in written.items():
            files.write_bytes(outputs / name, data)
        return run, sorted(written)

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

    def _counterfactual_views(self, work: Path, runs: int) -> tuple[list[Path], str]:
        """Dev views whose teacher keeps what the strong model sees and loses what it adds (counterfactual.py)."""
        source = self.testbed.view(self.cfg.task.dev)
        scores = counterfactual.strong_view(source, self.cfg.state_dir / "cache" / "zero_shot",
                                            self.cfg.task.max_tokens)
        return counterfactual.write_views(source, work, scores, runs)

    def spec(self, tree: MethodTree, agent: str = "", user: str | None = None, **extra) -> RunSpec:
        """The runs of one method: in the scorer's sandbox (or `user`'s), under the scorer's limits."""
        owner = " ".join(p for p in (agent, (tree.commit_sha or "")[:8] or tree.entry) if p)
        return RunSpec(tree.root, tree.entry, user or self.sandbox.user, owner, self.limits,
                       binds=tuple(task_binds(self.cfg)),
                       forbidden=(str(self.cfg.state_dir), str(self.cfg.sandboxes_dir)),
                       gpu=self.cfg.task.kind == "hf", **extra)

    def _run_all(self, tree: MethodTree, jobs: list[MethodJob], agent: str = "",
                 tick: Tick | None = None) -> list[MethodRun]:
        with tqdm(total=len(jobs), desc=f"scoring {inert_line(tree.entry)}", unit="run",
                  disable=not self.progress) as bar:
            return self.engine.run(self.spec(tree, agent), jobs, done=lambda run: bar.update(1), tick=tick)

    def _summarise(self, dataset: str, runs: list[MethodRun], truth_of: str | None = None) -> DatasetScore:
        base = self.testbed.baseline(truth_of or dataset)
        truth = self.testbed.labels(truth_of or dataset)
        accs = [accuracy(r.labels, truth) for r in runs]
        return DatasetScore.from_accuracies(dataset, base.weak_acc, base.ceiling_acc, [r.seed for r in runs], accs)

    def _score(self, agent: str, tree: MethodTree, work: Path, tick: Tick | None = None) -> SubmissionResult:
        start = time.monotonic()
        task, s = self.cfg.task, self.cfg.scorer
        seeds = list(range(s.seeds))
        common = dict(agent=agent, commit_sha=tree.commit_sha, path=tree.entry, tree_hash=tree.tree_hash,
                      fingerprint=self.cfg.scoring_fingerprint(), seeds=seeds, sandbox=self.sandbox.name)
        dev_view = self.testbed.view(task.dev)
        # One dev run first: a broken method is rejected in seconds, not after every seed.
        first = self._run_all(tree, [MethodJob(task.dev, dev_view, seeds[0])], agent, tick)[0]
        if not first.ok:
            self._reject(common, first, start)
        jobs = [MethodJob(task.dev, dev_view, seed) for seed in seeds[1:]]
        jobs += [MethodJob(ds, self.testbed.view(ds), seed) for ds in task.heldout for seed in seeds]
        views, how = self._counterfactual_views(work, s.shuffle_seeds) if s.shuffle_seeds else ([], "")
        # each counterfactual run takes a dev run's seed: the pairs' differences give the dependence its SE
        jobs += [MethodJob(COUNTERFACTUAL, view, seed) for seed, view in zip(seeds, views)]
        runs = [first] + self._run_all(tree, jobs, agent, tick)

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
        counterfactual_runs = by_label.get(COUNTERFACTUAL, [])
        # A failed counterfactual run leaves no measure; the `failed` flag below names it instead.
        dependence = (TeacherDependence.measure(
            dev, self._summarise(COUNTERFACTUAL, counterfactual_runs, truth_of=task.dev), how)
            if counterfactual_runs and all(r.ok for r in counterfactual_runs) else None)
        dev_runs = by_label[task.dev] + counterfactual_runs
        heldout_runs = [r for ds in task.heldout for r in by_label.get(ds, [])]
        flags = (integrity.ignores_teacher(dependence, s.flag_teacher_dependence, s.flag_dependence_z)
                 + integrity.run_problems(dev_runs, integrity.DEV)
                 + integrity.heldout_gap(dev, heldout, s.flag_heldout_gap)
                 + integrity.run_problems(heldout_runs, integrity.HELDOUT))
        scores = [{**dev.to_dict(), "role": "dev", "status": "ok"}]
        scores += [{**h.to_dict(), "role": "heldout", "status": "ok"} for h in heldout]
        scores += [{"dataset": ds, "role": "heldout", "status": "failed", "error": err} for ds, err in failed.items()]
        duration = time.monotonic() - start
        sid = submissions.record_submission(self.db, **common, duration_s=duration, scores=scores, flags=flags,
                                            teacher_dependence=dependence.to_dict() if dependence else None,
                                            method_runs=runs)
        return SubmissionResult(sid, agent, tree.commit_sha, tree.entry, dev, heldout, failed, dependence,
                                flags, duration)

    def _reject(self, common: dict, run: MethodRun, start: float):
        message = f"method rejected on the dev task, seed {run.seed}: {run.error}"
        submissions.record_submission(self.db, **common, duration_s=time.monotonic() - start, scores=[],
                                      flags=integrity.run_problems([run], integrity.DEV), status="rejected",
                                      error=message, method_runs=[run])
        raise MethodRejected(message)

