"""The scorer: evaluate predictions under a budget; submit = re-run a method over seeds and datasets."""
from __future__ import annotations

import tempfile
import time
from contextlib import contextmanager
from functools import cached_property
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tqdm import tqdm

from lab.errors import MethodRejected
from lab.inert import inert_line
from lab.sandbox import Sandbox
from lab.scaffold import repo as research
from lab.scaffold import template_for
from lab.scorer import budget, engines, integrity, methods, oracle, teacher_check
from lab.scorer.engines import MethodJob, RunSpec
from lab.scorer.engines.base import Tick
from lab.scorer.methods import MethodTree
from lab.scorer.runner import MethodRun, limits_from, task_binds
from lab.scorer.teacher_check import SECOND, TeacherFollowing
from lab.store import submissions
from lab.task import files
from lab.task.pgr import DatasetScore, sampling_se
from lab.task.predictions import accuracy, parse_predictions
from lab.task.testbed import Testbed

if TYPE_CHECKING:
    import sqlite_utils

    from lab.config import Config

RUN_PREDICTIONS, RUN_STDOUT, RUN_STDERR = "predictions.jsonl", "stdout.txt", "stderr.txt"   # an agent's run's outputs


@dataclass
class SubmissionResult:
    """A scored submission as the scorer measured it, for people (lab.scorer.told says what an agent is told)."""
    id: int
    agent: str
    commit_sha: str | None
    entry: str
    dev: DatasetScore                  # the public dev set's
    private: DatasetScore | None       # the private replica's, which ranks it; None where its runs failed
    heldout: list[DatasetScore]
    failed: dict[str, str]             # the private replica or a held-out set whose runs failed, and why
    following: TeacherFollowing | None
    flags: list[dict] = field(default_factory=list)
    duration_s: float = 0.0

    def to_dict(self) -> dict:
        scored = [(self.dev, "dev")] + ([(self.private, "private")] if self.private else [])
        scored += [(h, "heldout") for h in self.heldout]
        return {"submission": self.id, "agent": self.agent, "commit": self.commit_sha, "method": self.entry,
                "duration_s": round(self.duration_s, 2),
                "datasets": {s.dataset: {**s.to_dict(), "role": role} for s, role in scored},
                "failed": self.failed,
                "teacher_following": self.following.to_dict() if self.following else None,
                "flags": self.flags}


def stops_early(run: MethodRun, dev: str) -> bool:
    """A run after which the rest of its submission is not worth running: one that held its slot until a limit on
    its time ended it (hung, its CPU time, the wall clock), or one that failed on the public dev set (which rejects
    the submission anyway). A run cancelled because another one stopped the batch is neither."""
    if run.result.cancelled:
        return False
    return run.result.stopped_at_limit or (run.dataset == dev and not run.ok)


class Scorer:
    def __init__(self, cfg: Config, db: sqlite_utils.Database, sandbox: Sandbox, testbed: Testbed | None = None,
                 progress: bool = True):
        self.cfg, self.db, self.sandbox = cfg, db, sandbox
        self.testbed = testbed or Testbed.load(cfg)
        self.progress = progress
        self.limits = limits_from(cfg.scorer)
        self.scratch = cfg.state.run.method_runs
        # One engine per process, shared by every Scorer (the service builds one per request): on this machine
        # with its GPU queue, or on a Ray cluster.
        self.engine = engines.shared(cfg, sandbox)

    @cached_property
    def coarse(self) -> oracle.Coarse:
        """How the public figures are told to agents (lab.scorer.oracle); made when first needed."""
        return oracle.coarse_for(self.cfg)

    # ---- evaluate ------------------------------------------------------------------------------
    def evaluate(self, agent: str, content: bytes, part: str = "all") -> dict:
        """Accuracy and PGR of a predictions file's bytes on the public dev test split (or one of its halves), within
        the agent's budget, as an agent is told them (lab.scorer.oracle); the exact figures are recorded for people."""
        s = self.cfg.scorer
        if part not in oracle.PARTS:
            raise MethodRejected(f"part {part!r} is not one of {', '.join(oracle.PARTS)}")
        budget.check(self.db, "evaluations", agent, s.evaluate_budget, s.budget_window_hours)
        dev = self.cfg.task.dev
        if len(content) > int(s.max_output_mb * 1024 * 1024):
            raise MethodRejected(f"the predictions file is over the {s.max_output_mb:g} MB limit")
        predicted = parse_predictions(content, self.testbed.test_ids(dev))
        truth = {i: y for i, y in self.testbed.labels(dev).items() if oracle.in_part(i, part)}
        weak = {i: int(p > 0.5) for i, p in self.testbed.teachers(dev)["a"].items() if i in truth}
        base = self.testbed.baseline(dev)
        acc, weak_acc = accuracy(predicted, truth), accuracy(weak, truth)
        gap = base.gap      # of the whole set: a half's ceiling is not measured
        submissions.record_evaluation(self.db, agent, dev, acc, (acc - weak_acc) / gap)
        told = self.coarse.evaluation(acc, len(truth))
        return {"dataset": dev, "part": part, "texts": len(truth), "acc": told,
                "pgr": round((told - weak_acc) / gap, 3), "weak_acc": round(weak_acc, 3),
                "ceiling_acc": round(weak_acc + gap, 3), "noise_texts": s.evaluate_noise}

    # ---- submit --------------------------------------------------------------------------------
    def submit(self, agent: str, commit: str, path: str = "method.py", tick: Tick | None = None) -> SubmissionResult:
        """Score an agent's commit; `tick` is called at least every second while its runs go on (a heartbeat)."""
        s = self.cfg.scorer
        budget.check(self.db, "submissions", agent, s.submit_budget, s.budget_window_hours)
        repo, _ = research.create(self.cfg.state_dir, template_for(self.cfg.task))
        with self._workdir() as work:
            tree = methods.from_commit(repo, commit, path, work / "method")
            assert tree.commit_sha is not None     # a tree from a commit names it
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

    def spec(self, tree: MethodTree, agent: str = "", user: str | None = None, **extra) -> RunSpec:
        """The runs of one method: in the scorer's sandbox (or `user`'s), under the scorer's limits."""
        owner = " ".join(p for p in (agent, (tree.commit_sha or "")[:8] or tree.entry) if p)
        return RunSpec(tree.root, tree.entry, user or self.sandbox.user, owner, self.limits, tenant=agent or "lab",
                       binds=tuple(task_binds(self.cfg)),
                       forbidden=(str(self.cfg.state_dir), str(self.cfg.sandboxes_dir)),
                       gpu=self.cfg.task.kind == "hf", **extra)

    def _run_all(self, tree: MethodTree, jobs: list[MethodJob], agent: str = "",
                 tick: Tick | None = None, stop_on=None) -> list[MethodRun]:
        with tqdm(total=len(jobs), desc=f"scoring {inert_line(tree.entry)}", unit="run",
                  disable=not self.progress) as bar:
            return self.engine.run(self.spec(tree, agent), jobs, done=lambda run: bar.update(1), tick=tick,
                                   stop_on=stop_on)

    def _summarise(self, dataset: str, runs: list[MethodRun]) -> DatasetScore:
        base = self.testbed.baseline(dataset)
        truth = self.testbed.labels(dataset)
        accs = [accuracy(r.ok_labels(), truth) for r in runs]
        return DatasetScore.from_accuracies(dataset, base.weak_acc, base.ceiling, [r.seed for r in runs], accs)

    def _sampling_se(self, score: DatasetScore, runs: list[MethodRun]) -> float:
        weak = {i: int(p > 0.5) for i, p in self.testbed.teachers(score.dataset)["a"].items()}
        return sampling_se([r.ok_labels() for r in runs], self.testbed.labels(score.dataset), weak,
                           score.ceiling_acc - score.weak_acc)

    def _following(self, by_label: dict[str, list[MethodRun]], sets: list[str]) -> TeacherFollowing | None:
        """The teacher check over the pairs of runs (first teacher, second teacher) of each set and check seed; None
        where a run of a pair failed (the `failed` flag then names it)."""
        runs = []
        for name in sets:
            given = {r.seed: r for r in by_label.get(name, [])}
            teachers = self.testbed.teachers(name)
            for other in by_label.get(name + SECOND, []):
                first = given.get(other.seed)
                if first is None or not (first.ok and other.ok):
                    return None
                runs.append((name, other.seed, teacher_check.moved(first.ok_labels(), other.ok_labels(), teachers["a"],
                                                                   teachers["b"])))
        return TeacherFollowing.measure(runs)

    def _score(self, agent: str, tree: MethodTree, work: Path, tick: Tick | None = None) -> SubmissionResult:
        start = time.monotonic()
        task, s = self.cfg.task, self.cfg.scorer
        seeds = list(range(s.seeds))
        common: dict[str, Any] = dict(agent=agent, commit_sha=tree.commit_sha, path=tree.entry,
                                      tree_hash=tree.tree_hash, fingerprint=self.cfg.scoring_fingerprint(),
                                      seeds=seeds, sandbox=self.sandbox.name)
        public = self.testbed.view(task.dev)
        # One public run first: a broken method is rejected in seconds, not after every seed.
        first = self._run_all(tree, [MethodJob(task.dev, public, seeds[0])], agent, tick)[0]
        if not first.ok:
            self._reject(common, first, start)
        unseen = [task.private, *task.heldout]
        jobs = [MethodJob(task.dev, public, seed) for seed in seeds[1:]]
        jobs += [MethodJob(name, self.testbed.view(name), seed) for name in unseen for seed in seeds]
        # the teacher check: the same seeds again where the method has never seen the data, with the second teacher
        jobs += [MethodJob(name + SECOND, self.testbed.teacher_b_view(name), seed)
                 for name in task.checked for seed in seeds[:s.check_seeds]]
        stop_on = lambda run: stops_early(run, task.dev)  # noqa: E731
        runs = [first] + self._run_all(tree, jobs, agent, tick, stop_on)
        stopper = next((r for r in runs if stop_on(r)), None)
        if stopper is not None:
            self._stop_early(common, stopper, runs, len(jobs) + 1, task.dev, start)

        by_label: dict[str, list[MethodRun]] = {}
        for run in runs:
            by_label.setdefault(run.dataset, []).append(run)
        public_failed = next((r for r in by_label[task.dev] if not r.ok), None)
        if public_failed:
            self._reject(common, public_failed, start)
        dev = self._summarise(task.dev, by_label[task.dev])
        scored, failed = {}, {}
        for name in unseen:
            bad = next((r for r in by_label[name] if not r.ok), None)
            if bad:   # said without the method's own words: an error may quote data no agent has seen
                failed[name] = f"seed {bad.seed}: {bad.error}"
            else:
                scored[name] = self._summarise(name, by_label[name])
        private = scored.get(task.private)
        heldout = [scored[h] for h in task.heldout if h in scored]
        following = self._following(by_label, task.checked)
        of = lambda names: [r for n in names for r in by_label.get(n, []) + by_label.get(n + SECOND, [])]  # noqa: E731
        flags = (integrity.run_problems(by_label[task.dev], integrity.DEV)
                 + integrity.run_problems(of([task.private]), integrity.PRIVATE)
                 + integrity.run_problems(of(task.heldout), integrity.HELDOUT)
                 + integrity.ignores_teacher(following, s.flag_dependence_z)
                 + (integrity.overfit_public(dev, private, self._sampling_se(dev, by_label[task.dev]),
                                             self._sampling_se(private, by_label[task.private]),
                                             s.flag_overfit_public, s.flag_overfit_z) if private else [])
                 + integrity.heldout_gap(private or dev, heldout, s.flag_heldout_gap))
        scores = [{**dev.to_dict(), "role": "dev", "status": "ok"}]
        scores += [{**private.to_dict(), "role": "private", "status": "ok"}] if private else []
        scores += [{**h.to_dict(), "role": "heldout", "status": "ok"} for h in heldout]
        scores += [{"dataset": name, "role": "private" if name == task.private else "heldout", "status": "failed",
                    "error": why} for name, why in failed.items()]
        duration = time.monotonic() - start
        sid = submissions.record_submission(self.db, **common, duration_s=duration, scores=scores, flags=flags,
                                            teacher_dependence=following.to_dict() if following else None,
                                            method_runs=runs)
        return SubmissionResult(sid, agent, tree.commit_sha, tree.entry, dev, private, heldout, failed, following,
                                flags, duration)

    def _stop_early(self, common: dict[str, Any], stopper: MethodRun, runs: list[MethodRun], planned: int, dev: str,
                    start: float):
        """Record the submission as rejected, with the run that stopped it, and raise; it counts against the
        agent's budget like any other. The reason names no data the agent has not seen, nor its method's words on
        it."""
        where = f"on the dev task, seed {stopper.seed}" if stopper.dataset == dev else "on data you have not seen"
        why = stopper.error if stopper.dataset == dev else stopper.result.failure()
        message = (f"method rejected {where}: {why}; the submission stopped there ({planned - len(runs)} of its "
                   f"{planned} runs were not run)")
        submissions.record_submission(self.db, **common, duration_s=time.monotonic() - start, scores=[],
                                      flags=integrity.run_problems([r for r in runs if r.dataset == dev],
                                                                   integrity.DEV),
                                      status="rejected", error=message, method_runs=runs)
        raise MethodRejected(message)

    def _reject(self, common: dict[str, Any], run: MethodRun, start: float):
        message = f"method rejected on the dev task, seed {run.seed}: {run.error}"
        submissions.record_submission(self.db, **common, duration_s=time.monotonic() - start, scores=[],
                                      flags=integrity.run_problems([run], integrity.DEV), status="rejected",
                                      error=message, method_runs=[run])
        raise MethodRejected(message)

