"""Running the lab: `lab start`, `lab stop`, `lab status`."""
from __future__ import annotations

import json
import time
from typing import TYPE_CHECKING, Sequence

import click

from lab import score_text
from lab.cli.base import Context, cli, echo, table
from lab.errors import LabError

if TYPE_CHECKING:
    from lab.agents.backends import Choice
    from lab.config import Config
    from lab.settings import Settings


def _ago(seconds: float) -> str:
    seconds = int(seconds)
    if seconds < 60:
        return f"{seconds}s"
    if seconds < 3600:
        return f"{seconds // 60}m{seconds % 60:02d}s"
    return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"


def _limits_in_force(cfg: Settings) -> str:
    """The limits line of `lab status`: what bounds the agents' and the scorer's runs on this machine."""
    from lab.sandbox import make_sandbox
    from lab.sandbox.select import describe_limits

    scorer = cfg.scorer
    method = (f"a method run: {scorer.cpu_limit_s:g} s of CPU, {scorer.wall_limit_s:g} s wall-clock backstop"
              if scorer.cpu_limit_s is not None else f"a method run: {scorer.wall_limit_s:g} s wall clock (timeout_s)")
    try:
        return describe_limits(make_sandbox(cfg.lab.sandbox, warn=lambda line: None), cfg.agents.names) + \
            f"; {method}"
    except LabError as exc:
        return f"limits: the sandbox cannot run here: {exc}"


@cli.command()
@click.argument("names", nargs=-1, metavar="[AGENT]...")
@click.option("--detach", is_flag=True, help="Do not attach the TUI, even in a terminal.")
@click.option("--yes", is_flag=True, help='Start the Claude agents that backend = "auto" chose without asking.')
@click.option("--offline", is_flag=True, help="Run the offline researcher whatever ANTHROPIC_API_KEY holds; the lab "
                                              "never sees the key (what `make lab` runs).")
@click.pass_obj
def start(obj: Context, names: Sequence[str], detach: bool, yes: bool, offline: bool) -> None:
    """Start the lab (every agent) as a daemon and watch it in the TUI, or start the named agents again.

    With backend = "auto" and ANTHROPIC_API_KEY set, the agents would be Claude: in a terminal this says how many,
    on which models, against which budget and about what they cost an hour, and asks; with --detach or without a
    terminal it refuses, unless --yes is given or lab.toml names the backend."""
    import sys

    from lab.agents import control
    from lab.agents.backends import choose
    from lab.agents.steering import Steering
    from lab.sandbox import disk_quota

    cfg = obj.cfg
    # a missing API key, a model with no known price, spending nobody agreed to: said before anything is created
    choice = choose(cfg.agents.backend, cfg.task.kind, offline=offline)
    _, disk_warning = disk_quota.resolve_mode(cfg.agents.disk_quota)   # "loop" where it cannot be: one line
    if disk_warning:
        echo(f"warning: {disk_warning}", err=True, fg="yellow")
    names = control.check_names(cfg, list(names))
    terminal = sys.stdin.isatty() and sys.stdout.isatty()
    if choice.backend == "claude" and not control.running(cfg):
        _agree_to_spend(cfg, choice, list(names), yes=yes, can_ask=terminal and not detach)
    steering = Steering(cfg, obj.db(write=True))
    if names and control.running(cfg):
        for name in names:
            steering.start_agent(name)
        states = control.wait_for_states(obj.db(), names, ("running",), timeout=60)
        for name, state in states.items():
            echo(f"{name}: {state}")
        return
    started = steering.start_lab(obj.config_path, obj.sandbox(), list(names), choice)
    live = started.running
    if started.replaced:
        echo(started.replaced, err=True, fg="yellow")
    if started.already_running:
        echo(f"the lab is already running (supervisor pid {live.pid}, scorer {live.scorer_url}); "
                   "nothing changed. `lab status` shows it.")
    else:
        if started.prepared:
            echo(f"prepared the testbed in {cfg.state_dir}")
        echo(f"lab started: {started.count} agents ({started.backend_why}), supervisor pid {live.pid}, "
                   f"scorer {live.scorer_url}")
        echo(f"worktrees: {cfg.sandboxes_dir}/agent-N   logs: {cfg.state.run.logs} and "
                   f"{cfg.state.run.supervisor_log}")
        _say_failed_starts(obj, names or cfg.agents.names)
    if terminal and not detach:
        from lab.tui import run_tui

        run_tui(cfg, obj.config_path)
        echo("the lab goes on running; `lab tui` watches it again, `lab stop` stops it")
        return
    echo("watch: `lab tui` (or `lab status`, `lab forum`, `lab log`); steer: `lab message`, `lab pause`; "
               "stop: `lab stop`")


def _agree_to_spend(cfg: Config, choice: Choice, names: list[str], yes: bool, can_ask: bool) -> None:
    """Say what the Claude agents would cost; where "auto" chose them from a key in the environment, go on only
    with the person's yes (asked in a terminal) or --yes."""
    from lab.agents.backends import KEY, SpendNotConfirmed
    from lab.agents.backends.claude.estimate import outlook

    seen = outlook(cfg, names or None)      # a model with no known price, a setting a model refuses: one line
    if choice.asks and not yes:
        if not can_ask:
            raise SpendNotConfirmed(f'backend = "auto" and {KEY} is set, so this would start {seen.line()}; nobody '
                                    "was asked: pass --yes to start them, --offline for the offline researcher, or "
                                    'name the backend in lab.toml (agents.backend = "claude")')
        echo(f'backend = "auto" and {KEY} is set, so the agents would be Claude, and spend money:')
        for line in seen.lines():
            echo(line)
        if not click.confirm(f"Start {len(seen.plans)} Claude agents?", default=False):
            echo("nothing started: `lab start --offline` runs the offline researcher; agents.backend in lab.toml "
                 "chooses for good")
            click.get_current_context().exit(1)
        return
    echo(f"Claude agents ({choice.why}):")
    for line in seen.lines():
        echo(line)


def _say_failed_starts(obj: Context, names: Sequence[str]) -> None:
    """The supervisor makes the worktrees as it starts: an agent whose worktree it could not make is failed, why."""
    from lab.store import agents

    for row in agents.all_agents(obj.db()):
        if row["name"] in names and row["state"] == "failed":
            echo(f"{row['name']} could not start: {row['reason']}", err=True, fg="red")


@cli.command()
@click.argument("names", nargs=-1, metavar="[AGENT]...")
@click.pass_obj
def stop(obj: Context, names: Sequence[str]) -> None:
    """Stop the whole lab (agents, scorer, supervisor), or only the named agents."""
    from lab.agents import control
    from lab.agents.steering import Steering

    cfg = obj.cfg
    names = control.check_names(cfg, list(names))
    steering = Steering(cfg, obj.db(write=True))
    if names:
        if not control.running(cfg):
            raise control.LabNotRunning("the lab is not running, so no agent is either (`lab status` shows them)")
        runners = control.runner_pids(cfg, names)
        for name in names:
            steering.stop_agent(name)
        states = control.wait_for_states(obj.db(), names, ("stopped", "failed", "budget", "stuck"),
                                         timeout=cfg.agents.grace_s + 30, gone=runners)
        for name, state in states.items():
            echo(f"{name}: {state}")
        return
    was_running = control.running(cfg) is not None
    start = time.monotonic()
    killed = steering.stop_lab()
    left = control.lab_processes(cfg)
    if not was_running and not killed:
        echo("the lab is not running; nothing to stop")
    else:
        echo(f"lab stopped in {time.monotonic() - start:.1f} s"
                   + (f"; killed {len(killed)} process(es) that outlived the supervisor" if killed else ""))
    if left:
        raise LabError(f"{len(left)} process(es) of the lab are still alive: "
                               + ", ".join(str(p.pid) for p in left))


@cli.command()
@click.option("--json", "as_json", is_flag=True, help="Print one JSON document.")
@click.pass_obj
def status(obj: Context, as_json: bool) -> None:
    """Each agent's state, model, step, slice, spend and best dev PGR; the lab's best, spend and spend rate."""
    from lab.agents import control
    from lab.store import agents

    report = control.status(obj.view, obj.db())
    report["limits"] = _limits_in_force(obj.view)
    if as_json:
        echo(json.dumps(report, indent=2))
        return
    lab = report["lab"]
    running = f"running, supervisor pid {report['supervisor_pid']}" if report["running"] else "not running"
    best = f"best dev PGR {lab['best_pgr']:+.3f}" if lab["best_pgr"] is not None else "no agent submission scored yet"
    echo(f"lab {running}; {best}; {_spend(lab['dollars'], lab['dollars_left'], lab['dollars_per_hour'])}, "
         f"{lab['tokens']} tokens, {lab['experiments']} experiments, {lab['submissions']} submissions, "
         f"{lab['forum_posts']} forum posts")
    for warning in report["warnings"]:
        echo(f"warning: {warning}", fg="red")
    echo(report["limits"])
    gpu_rows = (report.get("gpus") or {}).get("gpus", {})
    for gpu, row in gpu_rows.items():
        # one FIFO queue feeds every GPU (a waiting run takes the first GPU that frees a slot)
        runs = f" ({', '.join(row['running'])})" if row["running"] else ""
        shared = f" (shared by {len(gpu_rows)} GPUs)" if len(gpu_rows) > 1 else ""
        echo(f"scorer GPU {gpu}: {len(row['running'])}/{row['slots']} runs{runs}; queue {row['queue']}{shared}")
    if report.get("cluster"):
        from lab.scorer.cluster_view import describe_cluster

        for line in describe_cluster(report["cluster"]):
            echo(line)
    if not report["agents"]:
        echo("no agents yet: `lab start` starts them")
        return
    rows = [[a["name"], a["state"], a["backend"] or "-", agents.model_of(a) or "-", (a["direction"] or "")[:28],
             a["slice"] or "-",
             _ago(a["uptime_s"]) if a["uptime_s"] else "-", str(a["tokens"]), f"${a['dollars']:.2f}",
             f"${a['dollars_per_hour']:.2f}", f"${a['dollars_left']:.2f}" if a["dollars_left"] is not None else "-",
             str(a["experiments"]), _disk(a["disk"]), score_text.pgr(a["best_pgr"]),
             ((a["step"] if a["state"] in ("running", "starting") else a["reason"]) or "")[:60]]
            for a in report["agents"]]
    echo(table(["agent", "state", "backend", "model", "direction", "slice", "uptime", "tokens", "$", "$/h", "$ left",
                "exps", "disk MB", "best PGR", "step / reason"], rows))


def _disk(disk: dict | None) -> str:
    """An agent's disk use of its quota, e.g. `312/2048` (`>312/2048` where a measuring walk ran out of time;
    `~` marks a quota only measured, after the fact)."""
    if disk is None:
        return "-"
    mark = "~" if disk["mode"] == "measured" else ""
    return f"{mark}{'' if disk['complete'] else '>'}{disk['used_mb']:.0f}/{disk['quota_mb']}"


def _spend(dollars: float, left: float | None, per_hour: float) -> str:
    """What the lab has spent, what is left of its budget, and what it spends an hour now."""
    budget = f" (${left:.2f} left of the budget)" if left is not None else ""
    return f"${dollars:.2f} spent{budget}, ${per_hour:.2f} an hour now"



@cli.command()
@click.option("--refresh", default=1.0, show_default=True, type=click.FloatRange(0.1, 60), metavar="SECONDS",
              help="How often the screens read the lab.")
@click.pass_obj
def tui(obj: Context, refresh: float) -> None:
    """Watch and steer the lab in the terminal; quitting leaves the lab running."""
    from lab.tui import run_tui

    obj.db()   # create or migrate the database before the TUI's own connections open it
    run_tui(obj.cfg, obj.config_path, refresh)
