"""The `lab` group, its shared context, and the small formatting helpers every command uses.

Every line a command prints goes through `echo`, which makes agent-made text in it inert (lab.inert):
commit messages, posts, paths and method stderr never drive the person's terminal.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any, Literal, overload

import click

from lab.errors import LabError
from lab.inert import inert, inert_line
from lab.suggest import closest

if TYPE_CHECKING:
    import sqlite_utils

    from lab.config import Config
    from lab.sandbox import Sandbox
    from lab.scorer.scorer import Scorer
    from lab.settings import Settings
    from lab.store import Database

EXIT_BAD_INPUT = 2
# Commands that only read the lab: they open its database read-only and create nothing (a write inside one, like
# `lab forum post` or `lab score --method`, asks for the database with write=True).
READ_ONLY_COMMANDS = {"status", "score", "agent", "forum", "log", "show", "report"}
# `lab --help` lists the commands in the order of a person's day: prepare and score the baselines, start and watch,
# read the agents' work, steer them, share it, stop; then the scorer service (the supervisor runs it for agents) and
# `data`, which makes a dataset for the hf kind once, before any day with it
DAY_ORDER = ("init", "score", "start", "status", "tui", "agent", "log", "show", "forum", "message", "pause", "resume",
             "report", "stop", "scorer", "data")
ROLES = {"dev": "public dev", "private": "private dev", "heldout": "held-out"}


def echo(text: str = "", err: bool = False, **style: Any) -> None:
    """Print a line with its control characters made visible; `style` (click.style's fg, bold, ...) is applied after,
    so the only escape codes that reach the terminal are the lab's own colours."""
    click.secho(inert(text), err=err, **style)


def table(headers: list[str], rows: list[list[str]]) -> str:
    """Aligned columns; each cell kept on one line and inert before it is measured."""
    headers, rows = [inert_line(str(h)) for h in headers], [[inert_line(str(c)) for c in row] for row in rows]
    widths = [max(len(str(x)) for x in col) for col in zip(headers, *rows)]
    line = lambda cells: "  ".join(str(c).ljust(w) for c, w in zip(cells, widths)).rstrip()
    return "\n".join([line(headers), line(["-" * w for w in widths]), *map(line, rows)])


class NoLab(LabError):
    """A command that reads the lab ran where no lab has been made."""


class Context:
    def __init__(self, config_path: str, read_only: bool = False):
        self.config_path = config_path
        self.read_only = read_only
        self._cfg: Config | None = None
        self._view: Settings | None = None
        self._db: Database | None = None
        self._db_writable = False

    @property
    def cfg(self) -> Config:
        if self._cfg is None:
            from lab import config as configs   # pydantic loads only for commands that read lab.toml

            self._cfg = configs.load(self.config_path)
        return self._cfg

    @property
    def view(self) -> Settings:
        """lab.toml's settings for code that only reads them: where the lab last validated this very file (its
        supervisor does as it starts), the cached result, read without pydantic (lab.config.cache); else `cfg`."""
        if self._view is None:
            from lab.config import cache

            self._view = self._cfg or cache.load(self.config_path) or self.cfg
        return self._view

    @overload
    def db(self, write: Literal[True]) -> sqlite_utils.Database: ...

    @overload
    def db(self, write: bool = False) -> Database: ...

    def db(self, write: bool = False) -> Database:
        """The lab's database. A read-only command opens it read-only: where the state folder is missing it stops with
        NoLab, and where the folder exists without a database yet (prepared, never started) it reads an empty one in
        memory, so that nothing is created either way."""
        from lab.store import open_db

        write = write or not self.read_only
        if self._db is not None and (self._db_writable or not write):
            return self._db
        state = (self.cfg if write else self.view).state
        if write:
            self._db, self._db_writable = open_db(state.db), True
        elif state.db.is_file():
            self._db = open_db(state.db, read_only=True)
        elif state.root.is_dir():
            self._db = open_db(":memory:")
        else:
            raise NoLab(f"no lab here yet: {state.root} does not exist (`lab init` prepares one, "
                        "`lab start` starts it)")
        return self._db

    def sandbox(self) -> Sandbox:
        from lab.sandbox import make_sandbox

        return make_sandbox(self.cfg.lab.sandbox, warn=lambda line: echo(line, err=True, fg="red"))

    def scorer(self) -> Scorer:
        from lab.scorer.scorer import Scorer

        return Scorer(self.cfg, self.db(write=True), self.sandbox())


class LabGroup(click.Group):
    """A group that lists its commands in DAY_ORDER (others after, by name) and answers a mistyped command with the
    closest one."""

    group_class = type      # `lab forum` and any other subgroup behave the same

    def list_commands(self, ctx: click.Context) -> list[str]:
        rank = {name: i for i, name in enumerate(DAY_ORDER)}
        return sorted(self.commands, key=lambda name: (rank.get(name, len(rank)), name))

    def resolve_command(self, ctx: click.Context,
                        args: list[str]) -> tuple[str | None, click.Command | None, list[str]]:
        name = args[0] if args else ""
        if name and not name.startswith("-") and self.get_command(ctx, name) is None and not ctx.resilient_parsing:
            guess = closest(name, self.list_commands(ctx))
            if guess:
                ctx.fail(f"No such command {name!r}. Did you mean {guess!r}?")
        return super().resolve_command(ctx, args)


def _print_version(ctx: click.Context, _param: click.Parameter, value: bool) -> None:
    if not value or ctx.resilient_parsing:
        return
    from importlib.metadata import PackageNotFoundError, version

    from lab import DISTRIBUTION

    try:
        found = version(DISTRIBUTION)
    except PackageNotFoundError:
        found = "(version unknown: not installed, run from a source tree)"
    click.echo(f"lab {found}")
    ctx.exit()


@click.group(cls=LabGroup)
@click.option("--config", "config_path", default="lab.toml", show_default=True, metavar="FILE",
              help="The lab's configuration file.")
@click.option("--version", is_flag=True, expose_value=False, is_eager=True, callback=_print_version,
              help="Print the version and exit.")
@click.pass_context
def cli(ctx: click.Context, config_path: str) -> None:
    """An automated weak-to-strong research lab on one workstation."""
    ctx.obj = Context(config_path, read_only=ctx.invoked_subcommand in READ_ONLY_COMMANDS)
