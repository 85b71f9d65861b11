"""Running one method on one dataset folder with one seed, in the sandbox, and reading its output."""
from __future__ import annotations

import json
import sys
import tempfile
import threading
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING

from lab import untrusted
from lab.errors import MethodRejected
from lab.sandbox import Bind, Limits, RunResult, Sandbox
from lab.scorer.violations import DenialReader
from lab.task.predictions import read_predictions

if TYPE_CHECKING:
    from lab.settings import ScorerSettings, Settings

PREDICTIONS = "predictions.jsonl"


@dataclass
class MethodRun:
    dataset: str                 # what the run was for: a set, or a set with the second teacher (teacher_check.SECOND)
    seed: int
    result: RunResult
    labels: dict[str, int] | None = None
    error: str | None = None
    extra_outputs: list[str] = field(default_factory=list)
    violations: list[str] = field(default_factory=list)
    node: str = "local"          # where it ran: "local", or a Ray node's id
    attempts: int = 1            # more than one where a node died under it and it ran again elsewhere
    predictions: bytes | None = None   # the predictions file itself, where the caller asked for it (an agent's run)

    @property
    def ok(self) -> bool:
        return self.labels is not None

    def ok_labels(self) -> dict[str, int]:
        """The labels of a run that succeeded."""
        assert self.labels is not None, f"the run of {self.dataset}, seed {self.seed}, failed"
        return self.labels


def task_binds(cfg: Settings) -> list[Bind]:
    """The read-only folders a method of this task needs beside its data (the hf kind's strong model)."""
    from lab.task.hf.models import model_folders

    return [Bind(p, str(p)) for p in model_folders(cfg)]


def limits_from(scorer_cfg: ScorerSettings) -> Limits:
    """The [scorer] section's limits for one method run: CPU time judges the method, whatever the machine's load; a
    run that makes no progress for its stall window is hung, and the wall clock is only the backstop behind both."""
    s = scorer_cfg
    return Limits(timeout_s=s.wall_limit_s, cpu_s=s.cpu_limit_s, memory_mb=s.memory_mb,
                  max_processes=s.max_processes, max_file_mb=s.max_output_mb, threads=s.threads_per_run,
                  stall_s=s.stall_s, gpu_stall_s=s.gpu_stall_s)


class MethodRunner:
    def __init__(self, sandbox: Sandbox, limits: Limits, scratch: Path, python: str = sys.executable,
                 binds: list[Bind] | None = None, forbidden: list[Path] | None = None):
        """`binds`: read-only folders every run sees at their own paths (the hf kind's strong model);
        `forbidden`: the lab's folders that a run reaching for is a sandbox violation (its state, worktrees)."""
        self.sandbox, self.limits, self.scratch, self.python = sandbox, limits, Path(scratch), python
        self.binds = list(binds or [])
        self.forbidden = [str(p) for p in forbidden or []]

    def run(self, method_root: Path, entry: str, data_dir: Path, seed: int, dataset: str,
            env: dict[str, str] | None = None, args: tuple[str, ...] = (), keep_predictions: bool = False,
            cancel: threading.Event | None = None, cpu_group: str | None = None) -> MethodRun:
        """One sandboxed run on the data folder's test ids; `env` (e.g. the GPU slot's CUDA_VISIBLE_DEVICES) is
        added to the sandbox's, `args` to the method's command line after the contract's own; `cancel` ends it;
        `cpu_group`: the runs it shares one CPU weight with (Limits.cpu_group)."""
        self.scratch.mkdir(parents=True, exist_ok=True)
        test_ids = view_test_ids(Path(data_dir))
        with tempfile.TemporaryDirectory(prefix="out-", dir=self.scratch) as out:
            code = Bind(Path(method_root), "/method")
            data = Bind(Path(data_dir), "/data")
            output = Bind(Path(out), "/out", writable=True)
            inside = self.sandbox.inside
            argv = [self.python, f"{inside(code)}/{entry}", "--data", inside(data),
                    "--out", f"{inside(output)}/{PREDICTIONS}", "--seed", str(seed), *args]
            gpu = (env or {}).get("CUDA_VISIBLE_DEVICES") or None     # a run on a GPU: its stall rule is the GPU's
            result = self.sandbox.run(argv, [code, data, output, *self.binds], cwd=code,
                                      limits=replace(self.limits, gpu=gpu, cpu_group=cpu_group),
                                      env=dict(env) if env else None,
                                      cancel=cancel)
            run = MethodRun(dataset, seed, result)
            run.extra_outputs = sorted(p.name for p in Path(out).iterdir() if p.name != PREDICTIONS)
            own = [code, data, output, *self.binds]
            reader = DenialReader(self.forbidden, [str(b.host) for b in own] + [inside(b) for b in own])
            run.violations = reader.denials(result.stderr)
            if not result.ok:
                run.error = result.failure()
                return run
            limit = int(self.limits.max_file_mb * 1024 * 1024)
            try:
                run.labels = read_predictions(Path(out) / PREDICTIONS, test_ids, limit)
            except MethodRejected as exc:
                run.error = str(exc)
            if keep_predictions and run.labels is not None:
                run.predictions = untrusted.read_file(Path(out) / PREDICTIONS, limit)
            return run


def view_test_ids(view: Path) -> list[str]:
    """The ids a method must predict on a data folder: its test split's, in order."""
    with (view / "test.jsonl").open() as handle:
        return [json.loads(line)["id"] for line in handle if line.strip()]
