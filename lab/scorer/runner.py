"""Running one method on one dataset folder with one seed, in the sandbox, and reading its output."""
from __future__ import annotations

import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from lab.errors import MethodRejected
from lab.sandbox import Bind, Limits, RunResult, Sandbox
from lab.scorer.violations import DenialReader
from lab.task.predictions import read_predictions

PREDICTIONS = "predictions.jsonl"


@dataclass
class MethodRun:
    dataset: str
    seed: int
    result: RunResult
    labels: dict[str, int] | None = None
    error: str | None = None
    extra_outputs: list[str] = field(default_factory=list)
    violations: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.labels is not None


def task_binds(cfg) -> list[Bind]:
    """The read-only folders a method of this task needs beside its data (the hf kind's strong model)."""
    from lab.task.hf.models import model_folders

    return [Bind(p, str(p)) for p in model_folders(cfg)]


def limits_from(scorer_cfg) -> Limits:
    """The [scorer] section's limits for one method run: CPU time judges the method, whatever the machine's load;
    the wall clock only stops a hung run."""
    s = scorer_cfg
    return Limits(timeout_s=s.wall_limit_s, cpu_s=s.cpu_limit_s, memory_mb=s.memory_mb,
                  max_processes=s.max_processes, max_file_mb=s.max_output_mb, threads=s.threads_per_run)


class MethodRunner:
    def __init__(self, sandbox: Sandbox, limits: Limits, scratch: Path, python: str = sys.executable,
                 binds: list[Bind] | None = None, forbidden: list[Path] | None = None):
        """`binds`: read-only folders every run sees at their own paths (the hf kind's strong model);
        `forbidden`: the lab's folders that a run reaching for is a sandbox violation (its state, worktrees)."""
        self.sandbox, self.limits, self.scratch, self.python = sandbox, limits, Path(scratch), python
        self.binds = list(binds or [])
        self.forbidden = [str(p) for p in forbidden or []]

    def run(self, method_root: Path, entry: str, data_dir: Path, test_ids: list[str], seed: int,
            dataset: str, env: dict[str, str] | None = None) -> MethodRun:
        """One sandboxed run; `env` (e.g. the GPU slot's CUDA_VISIBLE_DEVICES) is added to the sandbox's."""
        self.scratch.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(prefix="out-", dir=self.scratch) as out:
            code = Bind(Path(method_root), "/method")
            data = Bind(Path(data_dir), "/data")
            output = Bind(Path(out), "/out", writable=True)
            inside = self.sandbox.inside
            argv = [self.python, f"{inside(code)}/{entry}", "--data", inside(data),
                    "--out", f"{inside(output)}/{PREDICTIONS}", "--seed", str(seed)]
            result = self.sandbox.run(argv, [code, data, output, *self.binds], cwd=code, limits=self.limits,
                                      env=dict(env) if env else None)
            run = MethodRun(dataset, seed, result)
            run.extra_outputs = sorted(p.name for p in Path(out).iterdir() if p.name != PREDICTIONS)
            own = [code, data, output, *self.binds]
            reader = DenialReader(self.forbidden, [str(b.host) for b in own] + [inside(b) for b in own])
            run.violations = reader.denials(result.stderr)
            if not result.ok:
                run.error = result.failure()
                return run
            try:
                run.labels = read_predictions(Path(out) / PREDICTIONS, test_ids,
                                              int(self.limits.max_file_mb * 1024 * 1024))
            except MethodRejected as exc:
                run.error = str(exc)
            return run
