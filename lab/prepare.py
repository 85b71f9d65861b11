"""`lab init`: the testbed, the research repository and the fixed baselines, each built once."""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable

from lab.errors import TestbedError
from lab.sandbox import Sandbox
from lab.scaffold import repo as research
from lab.scaffold import template_for
from lab.scorer import engines
from lab.scorer.ceiling import fix_ceilings
from lab.scorer.engines import RunSpec
from lab.scorer.methods import MethodTree
from lab.scorer.runner import limits_from, task_binds
from lab.task import testbed as testbeds
from lab.task.testbed import Baseline, Testbed

if TYPE_CHECKING:
    from lab.config import Config
    from lab.settings import Settings


@dataclass
class Prepared:
    testbed: Testbed
    baselines: list[Baseline]
    rebuilt: bool
    repo_created: bool


def prepare(cfg: Config, sandbox: Sandbox, force: bool = False) -> Prepared:
    testbed = Testbed(cfg.state_dir, cfg.task)
    rebuilt = force or not testbed.is_current()
    if not rebuilt:
        try:
            testbed.verify(deep=True)
        except TestbedError:
            rebuilt = True
    engine = engines.shared(cfg, sandbox)
    if rebuilt:
        testbed = testbeds.build(cfg, force=force, engine=engine)
    _check_models_readable(cfg, sandbox)
    repo, created = research.create(cfg.state_dir, template_for(cfg.task))
    baselines = fix_ceilings(testbed, repo, engine, ceiling_runs(cfg, sandbox), cfg.run_dir / "scorer",
                             list(range(cfg.task.seeds)), force=rebuilt)
    for ranked in (cfg.task.dev, cfg.task.private):     # public PGR teaches the agents, private PGR ranks them
        base = next(b for b in baselines if b.dataset == ranked)
        if base.gap <= 0:
            raise TestbedError(f"{ranked} leaves no gap: ceiling {base.ceiling_acc:.3f} <= weak {base.weak_acc:.3f}; "
                               "PGR is undefined (use larger [task.sizes])")
    return Prepared(testbed, baselines, rebuilt, created)


def ceiling_runs(cfg: Settings, sandbox: Sandbox) -> Callable[[MethodTree], RunSpec]:
    """How the ceiling's runs are run: the scorer's sandbox and limits, as a private batch (its views carry the
    train split's true labels, so on a cluster they stay on the head)."""
    def spec(tree: MethodTree) -> RunSpec:
        return RunSpec(tree.root, tree.entry, sandbox.user, "ceiling", limits_from(cfg.scorer),
                       binds=tuple(task_binds(cfg)), private=True, gpu=cfg.task.kind == "hf")
    return spec


def _check_models_readable(cfg: Settings, sandbox: Sandbox) -> None:
    """Run as root, bwrap runs methods as `nobody`, who must be able to read the strong model."""
    if not getattr(sandbox, "as_root", False):
        return
    from lab.task.hf.models import model_folders, unreadable_by_others

    for folder in model_folders(cfg):
        blocked = unreadable_by_others(folder)
        if blocked:
            raise TestbedError(f"the sandbox runs methods as user nobody, who cannot read {blocked[0]} "
                               f"(mode {blocked[0].stat().st_mode & 0o777:o}); make the model readable, e.g. "
                               f"`chmod -R a+rX {folder}`")
