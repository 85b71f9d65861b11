"""The `lab` command: parses, calls the core, and turns every LabError into one line and exit code 2.

Imports stay light here and in every command module: each command imports what it needs when it runs, so that
`lab --help`, `lab status` and the other commands a person types beside busy agents start in a fraction of a
second (tests/test_cli_imports.py keeps pandas, torch, Textual and their like out of this path).
"""
from __future__ import annotations

import sqlite3
import sys

import click

from lab.cli import agent, data, reading, report, running, scoring, steering  # noqa: F401  (each registers)
from lab.cli.base import EXIT_BAD_INPUT, cli, echo
from lab.errors import LabError

__all__ = ["cli", "main"]


def main() -> None:
    try:
        code = cli.main(prog_name="lab", standalone_mode=False)
    except click.exceptions.Abort:
        echo("lab: aborted", err=True)
        sys.exit(1)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except LabError as exc:
        echo(f"lab: error: {exc}", err=True)
        sys.exit(EXIT_BAD_INPUT)
    except sqlite3.DatabaseError as exc:   # a damaged, foreign or locked database file: the person's to fix
        echo(f"lab: error: the lab's database: {exc}", err=True)
        sys.exit(EXIT_BAD_INPUT)
    if isinstance(code, int) and code:
        sys.exit(code)


if __name__ == "__main__":
    main()
