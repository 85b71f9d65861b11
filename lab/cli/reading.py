"""Reading the agents' work: `lab log`, `lab show`, `lab forum`."""
from __future__ import annotations

import json
import time

from typing import TYPE_CHECKING

import click

from lab import score_text
from lab.cli.base import Context, cli, echo, table

if TYPE_CHECKING:
    from lab.store.scores import Submission


def _score_line(sub: Submission) -> str:
    if sub.status != "scored":
        return f"#{sub.id} {sub.status}: {sub.error}"
    dev = next((s for s in sub.scores if s.role == "dev"), None)
    line = f"#{sub.id} dev PGR {score_text.score(dev)}"
    if sub.disqualified:
        line += f" DISQUALIFIED ({sub.disqualified_reason})"
    return line + (f" flags: {score_text.flags(sub.open_flag_kinds)}" if sub.open_flags else "")


@cli.command()
@click.argument("agent", required=False)
@click.option("-n", "limit", default=30, show_default=True, help="How many commits.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON document.")
@click.pass_obj
def log(obj: Context, agent: str | None, limit: int, as_json: bool) -> None:
    """The agents' commits, newest first, each with the scores it earned."""
    from lab.agents import control
    from lab.scaffold.history import History
    from lab.store import submissions

    cfg, db = obj.view, obj.db()    # the database first: where there is no lab, that says so
    branches = control.check_names(cfg, [agent]) if agent else cfg.agents.names
    history = History(cfg.state_dir)
    found = history.commits(branches, limit) if history.branches(branches) else []
    scores = submissions.by_commit(db) if found else {}
    if as_json:
        echo(json.dumps([{"commit": c.sha, "agent": c.author, "time": c.time, "subject": c.subject,
                          "submissions": [_submission(sub) for sub in scores.get(c.sha, [])]} for c in found],
                        indent=2))
        return
    if not history.branches(branches):
        echo("no agent branches yet (`lab start` makes them)")
        return
    if not found:
        echo("no commits by agents yet")
    for c in found:
        when = time.strftime('%m-%d %H:%M', time.localtime(c.time)) if c.time else "?"
        echo(f"{c.sha[:10]}  {c.author:<9} {when:<11}  {c.subject}")
        for sub in scores.get(c.sha, []):
            echo(f"            {_score_line(sub)}")


def _submission(sub: Submission) -> dict:
    """A submission as `lab log --json` and `lab show --json` print it: its outcome and each set's score."""
    return {"submission": sub.id, "status": sub.status, "error": sub.error,
            "disqualified": sub.disqualified_reason if sub.disqualified else None,
            "scores": {s.dataset: {k: getattr(s, k) for k in ("role", "status", "weak_acc", "ceiling_acc", "acc", "pgr",
                                                              "pgr_se")} for s in sub.scores},
            "open_flags": sub.open_flag_kinds}


@cli.command()
@click.argument("commit")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON document.")
@click.pass_obj
def show(obj: Context, commit: str, as_json: bool) -> None:
    """A commit's diff and the scores it earned."""
    from lab.scaffold.history import History
    from lab.store import submissions

    db = obj.db()                   # first: where there is no lab, that says so
    history = History(obj.view.state_dir)
    sha = history.resolve(commit)
    subs = submissions.by_commit(db).get(sha, [])
    if as_json:
        echo(json.dumps({"commit": sha, "show": history.show(sha), "submissions": [_submission(s) for s in subs]},
                        indent=2))
        return
    echo(history.show(sha))
    echo(f"\nscores of {sha[:10]}:" if subs else f"\n{sha[:10]} has not been submitted")
    for sub in subs:
        echo(f"  {_score_line(sub)}")
        for s in sub.scores:
            echo(f"    {s.dataset:<16} {s.role:<8} {score_text.score(s)}")


def _print_posts(posts: list[dict]) -> None:
    if not posts:
        echo("no posts")
        return
    rows = [[str(p["id"]), time.strftime("%m-%d %H:%M", time.localtime(p["created"])), p["author"], p["kind"],
             f"{p['score']:+d}", str(p["comments"]), (p["commit_sha"] or "")[:10] or "-",
             f"{p['metrics']['pgr']:+.3f}" if isinstance(p["metrics"].get("pgr"), (int, float)) else "-",
             p["title"][:60]] for p in posts]
    echo(table(["id", "when", "author", "kind", "votes", "comments", "commit", "PGR", "title"], rows))


@cli.group(invoke_without_command=True)
@click.option("-n", "limit", default=20, show_default=True)
@click.option("--kind", help="Only posts of this kind.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON document.")
@click.pass_context
def forum(ctx: click.Context, limit: int, kind: str | None, as_json: bool) -> None:
    """Recent forum posts; `lab forum search TEXT`, `lab forum read ID`, `lab forum post TEXT`."""
    if ctx.invoked_subcommand:
        return
    from lab.store import forum as posts

    found = posts.recent(ctx.obj.db(), limit, kind=kind)
    echo(json.dumps(found, indent=2)) if as_json else _print_posts(found)


@forum.command("search")
@click.argument("text")
@click.option("-n", "limit", default=20, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Print one JSON document.")
@click.pass_obj
def forum_search(obj: Context, text: str, limit: int, as_json: bool) -> None:
    """Full-text search of the posts."""
    from lab.store import forum as posts

    found = posts.search(obj.db(), text, limit)
    echo(json.dumps(found, indent=2)) if as_json else _print_posts(found)


@forum.command("read")
@click.argument("post_id", type=int)
@click.option("--json", "as_json", is_flag=True, help="Print one JSON document.")
@click.pass_obj
def forum_read(obj: Context, post_id: int, as_json: bool) -> None:
    """One post with its comments and votes."""
    from lab.store import forum as posts

    p = posts.read(obj.db(), post_id)
    if as_json:
        echo(json.dumps(p, indent=2))
        return
    echo(f"#{p['id']} [{p['kind']}] {p['title']}\nby {p['author']}, votes {p['score']:+d}"
               + (f", commit {p['commit_sha']}" if p["commit_sha"] else ""))
    if p["metrics"]:
        echo(f"metrics: {json.dumps(p['metrics'])}")
    echo(f"\n{p['body']}\n")
    for c in p["comment_list"]:
        echo(f"  {c['author']}: {c['body']}")


@forum.command("post")
@click.argument("text")
@click.option("--title", help="Default: the text's first line.")
@click.pass_obj
def forum_post(obj: Context, text: str, title: str | None) -> None:
    """Post as the person running the lab."""
    from lab.agents.steering import Steering

    pid = Steering(obj.cfg, obj.db(write=True)).post(title or text.splitlines()[0][:120], text)
    echo(f"posted #{pid}")
