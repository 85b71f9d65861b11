"""The `lab` group, its shared context, and the small formatting helpers every command uses."""
from __future__ import annotations

import click

from lab import config as configs

EXIT_BAD_INPUT = 2
ROLES = {"dev": "dev", "heldout": "held-out"}


def fmt_pgr(score: dict | None) -> str:
    if not score:
        return "-"
    if score.get("status") == "failed":
        return "failed"
    return f"{score['pgr']:+.3f} ± {score['pgr_se']:.3f}"


def table(headers: list[str], rows: list[list[str]]) -> str:
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

        return make_sandbox(self.cfg.lab.sandbox, warn=lambda line: click.secho(line, fg="red", err=True))

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
