"""Sharing a lab run: `lab report`."""
from __future__ import annotations

import json
from pathlib import Path

import click

from lab.cli.base import Context, cli, echo
from lab.score_text import pgr


@cli.command()
@click.option("--out", "out_dir", type=click.Path(path_type=Path), metavar="DIR",
              help="The folder to write (default: report/ beside lab.toml); a previous report there is replaced.")
@click.option("--json", "as_json", is_flag=True, help="Print where it was written and its summary as one JSON document.")
@click.pass_obj
def report(obj: Context, out_dir: Path | None, as_json: bool) -> None:
    """Write a shareable report of the lab run: Markdown plus PNG figures in one folder."""
    from lab.report import check_destination, write
    from lab.report.gather import gather

    cfg = obj.cfg
    out_dir = (out_dir or cfg.root / "report").absolute()
    check_destination(out_dir)  # before reading anything, so a wrong path fails at once
    gathered = gather(cfg, obj.db())
    path = write(gathered, out_dir)
    if as_json:
        echo(json.dumps({"path": str(path), **_summary_data(gathered)}, indent=2))
        return
    echo(f"wrote {path} (figures beside it)")
    echo(_summary(gathered))
    for warning in gathered.warnings:
        echo(f"warning: {warning}", fg="red")


def _summary(r) -> str:
    best = r.best
    open_flags = sum(f.resolution == "open" for f in r.flags)
    line = (f"{_count(len(r.agents), 'agent')}, {_count(r.submissions, 'submission')} ({r.scored} on the "
            f"leaderboard), {_count(open_flags, 'open flag')}, {_count(r.post_count, 'post')}, "
            f"${r.totals['dollars']:,.2f}")
    if best:
        line += f"; best private dev PGR {pgr(best.ranked_pgr)} by {best.agent} (#{best.id})"
    return line


def _summary_data(r) -> dict:
    best = r.best
    return {"agents": len(r.agents), "submissions": r.submissions, "scored": r.scored,
            "open_flags": sum(f.resolution == "open" for f in r.flags), "posts": r.post_count,
            "dollars": r.totals["dollars"],
            "best": {"agent": best.agent, "submission": best.id, "private_dev_pgr": best.ranked_pgr}
            if best else None,
            "warnings": list(r.warnings)}


def _count(n: int, noun: str) -> str:
    return f"{n:,} {noun}{'' if n == 1 else 's'}"
