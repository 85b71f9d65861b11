"""Steering the agents: `lab message`, `lab pause`, `lab resume`. Commands wait in the database until taken."""
from __future__ import annotations

import click

from lab.cli.base import Context, cli, echo


def _targets(obj: Context, names: tuple[str, ...], everyone: bool) -> list[str]:
    from lab.agents import control

    if names and everyone:
        raise click.UsageError("name agents or give --all, not both")
    return control.check_names(obj.cfg, list(names)) if names else obj.cfg.agents.names


@cli.command()
@click.argument("agent", required=False)
@click.argument("text", required=False)
@click.option("--all", "everyone", is_flag=True, help="Send to every agent.")
@click.pass_obj
def message(obj: Context, agent: str | None, text: str | None, everyone: bool) -> None:
    """Send a message to one agent (`lab message agent-3 TEXT`) or all (`lab message --all TEXT`)."""
    from lab.agents.steering import Steering

    if everyone and text is None:
        agent, text = None, agent
    if not text or not (agent or everyone):
        raise click.UsageError("expected `lab message AGENT TEXT` or `lab message --all TEXT`")
    targets = _targets(obj, (agent,) if agent else (), everyone)
    Steering(obj.cfg, obj.db(write=True)).message(targets, text)
    echo(f"message waiting for {', '.join(targets) if len(targets) < 4 else f'{len(targets)} agents'}; "
               "each reads it at its next step")


def _pause_or_resume(obj: Context, kind: str, names: tuple[str, ...], everyone: bool) -> None:
    from lab.agents.steering import Steering

    targets = _targets(obj, names, everyone)
    getattr(Steering(obj.cfg, obj.db(write=True)), kind)(targets)
    echo(f"{kind} sent to {', '.join(targets) if len(targets) < 4 else f'{len(targets)} agents'}")


@cli.command()
@click.argument("names", nargs=-1, metavar="[AGENT]...")
@click.option("--all", "everyone", is_flag=True, help="Every agent (the default without names).")
@click.pass_obj
def pause(obj: Context, names: tuple[str, ...], everyone: bool) -> None:
    """Pause agents at their next step (a running tool call finishes first)."""
    _pause_or_resume(obj, "pause", names, everyone)


@cli.command()
@click.argument("names", nargs=-1, metavar="[AGENT]...")
@click.option("--all", "everyone", is_flag=True, help="Every agent (the default without names).")
@click.pass_obj
def resume(obj: Context, names: tuple[str, ...], everyone: bool) -> None:
    """Resume paused agents."""
    _pause_or_resume(obj, "resume", names, everyone)
