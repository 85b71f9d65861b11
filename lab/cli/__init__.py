"""The `lab` command: parses, calls the core, and turns every LabError into one line and exit code 2."""
from __future__ import annotations

import sys

import click

from lab.cli import reading, report, running, scoring, steering  # noqa: F401  (each registers its commands)
from lab.cli.base import EXIT_BAD_INPUT, cli, echo
from lab.errors import LabError

__all__ = ["cli", "main"]


def main() -> None:
    try:
        cli.main(standalone_mode=False)
    except click.exceptions.Abort:
        echo("lab: aborted", err=True)
        sys.exit(1)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except LabError as exc:
        echo(f"lab: error: {exc}", err=True)
        sys.exit(EXIT_BAD_INPUT)


if __name__ == "__main__":
    main()
