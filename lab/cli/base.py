"""The `lab` group, its shared context, and the small formatting helpers every command uses.

Every line a command prints goes through `echo`, which makes agent-made text in it inert (lab.inert):
commit messages, posts, paths and method stderr never drive the person's terminal.
"""
from __future__ import annotations

import click

from lab import config as configs
from lab.inert import inert, inert_line

EXIT_BAD_INPUT = 2
ROLES = {"dev": "dev", "heldout": "held-out"}


def echo(text: str = "", err: bool = False, **style) -> None:
    """Print a line with its control characters made visible; `style` (click.style's fg, bold, ...) is applied after,
    so the only escape codes that reach the terminal are the lab's own colours."""
    click.secho(inert(text), err=err, **style)


def fmt_pgr(score: dict | None) -> str:
    if not score:
        return "-"
    if score.get("status") == "failed":
        return "failed"
    return f"{score['pgr']:+.3f} ± {score['pgr_se']:.3f}"


def fmt_dependence(dependence: dict | None) -> str:
    """The teacher dependence: dev PGR with the real teacher minus with counterfactual ones, ± its SE."""
    if not dependence:
        return "-"
    return f"{dependence['difference']:+.3f} ± {dependence['difference_se']:.3f}"


def table(headers: list[str], rows: list[list[str]]) -> str:
    """Aligned columns; each cell kept on one line and inert before it is measured."""
    headers, rows = [inert_line(str(h)) for h in headers], [[inert_line(str(c)) for c in row] for row in rows]
    widths = [max(len(str(x)) for x in col) for col in zip(headers, *rows)]
    line = lambda cells: "  ".join(str(c).ljust(w) for c, w in zip(cells, widths)).rstrip()
    return "\n".join([line(headers), line(["-" * w for w in widths]), *map(line, rows)])


class Context:
    def __init__(self, config_path: str):
        self.config_path = config_path
        self._cfg = None
        self._db = None

    @property
    def cfg(self):
        if self._cfg is None:
            self._cfg = configs.load(self.config_path)
        return self._cfg

    def db(self):
        from lab.store import open_db

        if self._db is None:
            self._db = open_db(self.cfg.state_dir / "lab.db")
        return self._db

    def sandbox(self):
        from lab.sandbox import make_sandbox

        return make_sandbox(self.cfg.lab.sandbox, warn=lambda line: echo(line, err=True, fg="red"))

    def scorer(self):
        from lab.scorer.scorer import Scorer

        return Scorer(self.cfg, self.db(), self.sandbox())


@click.group()
@click.option("--config", "config_path", default="lab.toml", show_default=True, metavar="FILE",
              help="The lab's configuration file.")
@click.pass_context
def cli(ctx: click.Context, config_path: str) -> None:
    """An automated weak-to-strong research lab on one workstation."""
    ctx.obj = Context(config_path)
