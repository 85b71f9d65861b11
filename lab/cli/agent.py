"""One agent's work from the command line: `lab agent NAME` with its transcript, notebook or log (the TUI's agent
screen, for a terminal without it, a script, or a lab that has stopped)."""
from __future__ import annotations

import json
import time

import click

from lab import score_text
from lab.cli.base import Context, cli, echo
from lab.inert import inert_line

DEFAULT_LAST = 40


@cli.command()
@click.argument("name", metavar="AGENT")
@click.option("--transcript", is_flag=True, help="Its events: model turns, tool calls and results, messages, state "
                                                 "changes.")
@click.option("--notebook", is_flag=True, help="The notebook it keeps across restarts.")
@click.option("--log", is_flag=True, help="Its runner's log file (stdout, stderr, the lab's records).")
@click.option("-n", "last", default=DEFAULT_LAST, show_default=True, type=click.IntRange(min=0),
              help="How many of the newest events or lines.")
@click.option("--all", "everything", is_flag=True, help="All of them, however many.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON document.")
@click.pass_obj
def agent(obj: Context, name: str, transcript: bool, notebook: bool, log: bool, last: int | None, everything: bool,
          as_json: bool) -> None:
    """What an agent is doing and has done: a summary, or its --transcript, --notebook or --log (the newest -n)."""
    from lab.agents import records

    chosen = [part for part, wanted in (("transcript", transcript), ("notebook", notebook), ("log", log)) if wanted]
    if len(chosen) > 1:
        raise click.UsageError("choose one of --transcript, --notebook and --log")
    part = chosen[0] if chosen else "summary"
    cfg, db = obj.view, obj.db()    # the database first: where there is no lab, that says so
    records.check_agent(cfg, db, name)
    last = None if everything else last
    if part == "transcript":
        found = records.transcript(db, name, last)
        show = _print_transcript
    elif part == "notebook":
        found = records.notebook(db, name, last)
        show = _print_notebook
    elif part == "log":
        found = records.log(cfg, name, last)
        show = _print_log
    else:
        found = records.summary(cfg, db, name, _status_row(obj, name))
        show = _print_summary
    echo(json.dumps(found, indent=2)) if as_json else show(found)


def _status_row(obj: Context, name: str) -> dict | None:
    from lab.agents import control

    return next((a for a in control.status(obj.view, obj.db())["agents"] if a["name"] == name), None)


def _event_line(event: dict) -> str:
    when = time.strftime("%m-%d %H:%M:%S", time.localtime(event["created"]))
    return f"{when}  {event['kind']:<11} {inert_line(event['summary'])}"


def _shown(count: int, total: int, noun: str) -> str:
    return f"{total} {noun}" if count == total else f"the newest {count} of {total} {noun} (--all for every one)"


def _print_transcript(found: dict) -> None:
    if not found["events"]:
        echo(f"{found['agent']} has no transcript yet")
        return
    echo(f"{found['agent']}: {_shown(len(found['events']), found['total'], 'events')}")
    for event in found["events"]:
        echo(_event_line(event))


def _print_notebook(found: dict) -> None:
    if not found["total_lines"]:
        echo(f"{found['agent']}'s notebook is empty")
        return
    if len(found["lines"]) < found["total_lines"]:
        echo(f"[{found['agent']}'s notebook: {_shown(len(found['lines']), found['total_lines'], 'lines')}]")
    echo("\n".join(found["lines"]))


def _print_log(found: dict) -> None:
    if not found["exists"]:
        echo(f"{found['agent']} has no log yet: {found['path']} appears when it first starts")
        return
    echo(f"[{found['path']}]")
    echo("\n".join(found["lines"]))


def _print_summary(found: dict) -> None:
    name, row = found["agent"], found["status"]
    if row is None:
        echo(f"{name} has not started yet (`lab start` starts it)")
        return
    doing = row["step"] if row["state"] in ("running", "starting") else row["reason"]
    model = f" {row['model']}" + (f" ({row['effort']})" if row.get("effort") else "") if row.get("model") else ""
    best = f"best dev PGR {row['best_pgr']:+.3f}" if row["best_pgr"] is not None else "no score yet"
    echo(f"{name} {row['state']}  {row['backend'] or '-'}{model} · slice {row['slice'] or '-'} · {row['tokens']:,} "
         f"tokens · ${row['dollars']:.2f} · {row['experiments']} experiments · restarts {row['restarts']} · {best}")
    echo(f"direction: {inert_line(row['direction']) or '-'}")
    echo(f"now: {inert_line(doing) or '-'}")
    log = found["log"]
    size = f" ({log['bytes']:,} bytes)" if log["bytes"] is not None else " (none yet)"
    echo(f"worktree: {found['worktree']}   log: {log['path']}{size}")
    echo(f"notebook: {found['notebook_lines']} lines   transcript: {found['events']} events")
    if found["latest_events"]:
        echo("\nlatest events (--transcript for more):")
        for event in found["latest_events"]:
            echo(f"  {_event_line(event)}")
    if found["latest_submissions"]:
        echo("\nlatest submissions:")
        for sub in found["latest_submissions"]:
            scores = "  ".join(f"{ds} " + (score_text.pgr(s["pgr"], s["pgr_se"]) if s["pgr"] is not None
                                           else s["status"] or "-") for ds, s in sub["scores"].items())
            state = "disqualified" if sub["disqualified"] else sub["status"]
            flags = f"  flags: {score_text.flags(sub['open_flags'])}" if sub["open_flags"] else ""
            echo(f"  #{sub['id']} {state}  {scores or inert_line(sub['error'] or '')[:80]}{flags}")
