"""Preparing the testbed and scoring: `lab init`, `lab score`, `lab scorer`."""
from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING

import click

from lab import score_text
from lab.cli.base import ROLES, Context, cli, echo, table

if TYPE_CHECKING:
    from lab.store.scores import Submission


@cli.command()
@click.option("--force", is_flag=True, help="Rebuild everything, strong features included.")
@click.pass_obj
def init(obj: Context, force: bool) -> None:
    """Prepare the testbed, the research repository and the fixed baselines (once; cached)."""
    from lab.prepare import prepare

    cfg = obj.cfg
    prepared = prepare(cfg, obj.sandbox(), force=force)
    rows = []
    for b in prepared.baselines:
        sizes = prepared.testbed.sizes(b.dataset)
        role = ROLES["dev" if b.dataset == cfg.task.dev else "private" if b.dataset == cfg.task.private else "heldout"]
        rows.append([b.dataset, role, f"{sizes.teacher}/{sizes.train}/{sizes.test}", f"{b.weak_acc:.3f}",
                     f"{b.ceiling_acc:.3f}", f"{b.gap * 100:+.1f}"])
    echo(("prepared" if prepared.rebuilt else "reused the prepared") + f" testbed in {cfg.state_dir}")
    echo(table(["dataset", "role", "teacher/train/test", "weak acc", "ceiling acc", "gap (points)"], rows))
    dev = next(b for b in prepared.baselines if b.dataset == cfg.task.dev)
    if dev.gap < cfg.task.min_gap:
        echo(f"warning: the dev gap of {dev.gap * 100:.1f} points is below task.min_gap "
                    f"({cfg.task.min_gap * 100:.0f}): PGR will be noisy", fg="yellow", err=True)
    echo(f"agents' data: {prepared.testbed.view(cfg.task.dev)}")
    echo(f"research repository: {cfg.state.research_repo}")
    echo(f"baselines over {cfg.task.seeds} seeds; next: `lab score --baselines`")


def _print_result(obj: Context, result: dict) -> None:
    """A submission just scored, read back from the store: each set's accuracies and PGR, the teacher check, flags."""
    from lab.store import submissions

    sub = submissions.get(obj.db(), result["submission"])
    rows = [[s.dataset, "", "", "", "", f"failed: {s.error}", ""] if s.failed else
            [s.dataset, ROLES[s.role], f"{s.weak_acc:.3f}", f"{s.ceiling_acc:.3f}", f"{s.acc:.3f}",
             score_text.score(s), str(len(s.seeds or []))] for s in sub.scores]
    commit = (result["commit"] or "")[:10] or "(working tree)"
    echo(f"submission {result['submission']}: {result['method']} at {commit}, {result['duration_s']:.1f} s")
    echo(table(["dataset", "role", "weak acc", "ceiling acc", "acc", "PGR ± SE", "seeds"], rows))
    if sub.following:
        echo(f"teacher check: {score_text.teacher_check(sub.following)}")
    _print_flags(result["flags"])


def _print_flags(flags: list[dict]) -> None:
    for flag in flags:
        echo(f"FLAG {flag['kind']}: {flag['message']}", fg="yellow")


@cli.command()
@click.option("--method", "method_path", type=click.Path(path_type=Path), metavar="PATH",
              help="Score a method file, or a folder holding method.py.")
@click.option("--baselines", is_flag=True, help="Score the scaffold's baseline methods.")
@click.option("--disqualify", type=int, metavar="ID", help="Take a submission off the leaderboard.")
@click.option("--reason", help="Why (with --disqualify).")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON document.")
@click.pass_obj
def score(obj: Context, method_path: Path | None, baselines: bool, disqualify: int | None, reason: str | None,
          as_json: bool) -> None:
    """Print the leaderboard, or score a method, the baselines, or disqualify a submission."""
    chosen = [x for x in (method_path, baselines or None, disqualify) if x is not None]
    if len(chosen) > 1:
        raise click.UsageError("choose one of --method, --baselines and --disqualify")
    if disqualify is not None:
        if not reason:
            raise click.UsageError("--disqualify needs --reason TEXT")
        from lab.agents.steering import Steering

        Steering(obj.cfg, obj.db(write=True)).disqualify(disqualify, reason)
        echo(json.dumps({"disqualified": disqualify, "reason": reason}) if as_json
                   else f"submission {disqualify} disqualified: {reason}")
        return
    if method_path is not None:
        result = obj.scorer().score_path(method_path).to_dict()
        echo(json.dumps(result, indent=2)) if as_json else _print_result(obj, result)
        return
    if baselines:
        results = {r.entry: r.to_dict() for r in obj.scorer().score_baselines()}
        if as_json:
            echo(json.dumps({"baselines": results}, indent=2))
            return
        _print_baselines(obj, results)
        return
    _print_leaderboard(obj, as_json)


def _print_baselines(obj: Context, results: dict) -> None:
    """The baselines just scored, read back from the store, in the leaderboard's columns."""
    from lab.store import submissions
    from lab.task.testbed import Testbed

    task = obj.cfg.task
    testbed = Testbed(obj.cfg.state_dir, task)
    for ds in task.scored:
        b = testbed.baseline(ds)
        echo(f"{ds}: weak {b.weak_acc:.3f}, ceiling {b.ceiling_acc:.3f} (mean of {len(b.seeds)} seeds)")
    rows = [[entry, *score_text.board_row(submissions.get(obj.db(), r["submission"]), task.private, task.dev,
                                           task.heldout)] for entry, r in results.items()]
    echo(table(["method", "private PGR", "public PGR", *[f"{ds} PGR" for ds in task.heldout],
                "follows teacher", "flags"], rows))


def _as_json(sub: Submission) -> dict:
    """A leaderboard row as `lab score --json` prints it."""
    return {"submission": sub.id, "agent": sub.agent, "commit": sub.commit_sha, "method": sub.path,
            "created": sub.created,
            "datasets": {s.dataset: {k: getattr(s, k) for k in ("role", "status", "weak_acc", "ceiling_acc", "acc",
                                                                 "pgr", "pgr_se", "seeds")} for s in sub.scores},
            "teacher_following": sub.teacher_dependence, "flags": [asdict(f) for f in sub.open_flags]}


def _print_leaderboard(obj: Context, as_json: bool) -> None:
    from lab.store import submissions

    board = submissions.leaderboard(obj.db())
    if as_json:
        echo(json.dumps([_as_json(s) for s in board], indent=2))
        return
    if not board:
        echo("no scored submissions yet (try `lab score --baselines`)")
        return
    task = obj.view.task
    rows = [[str(s.id), s.agent, (s.commit_sha or "")[:10] or "-", s.path or "-",
             *score_text.board_row(s, task.private, task.dev, task.heldout)] for s in board]
    echo(table(["id", "agent", "commit", "method", "private PGR", "public PGR", *[f"{ds} PGR" for ds in task.heldout],
                "follows teacher", "flags"], rows))


@cli.command("scorer")
@click.pass_obj
def scorer_service(obj: Context) -> None:
    """Run the scorer service on loopback in the foreground (the supervisor starts it for agents)."""
    from lab.scorer import auth, engines
    from lab.scorer.scorer import Scorer
    from lab.scorer.service import ScorerService
    from lab.task.testbed import Testbed

    cfg, sandbox = obj.cfg, obj.sandbox()
    testbed = Testbed.load(cfg)
    engines.shared(cfg, sandbox)      # here, in the main thread: on a cluster, Ray connects once, now
    service = ScorerService(cfg, lambda db: Scorer(cfg, db, sandbox, testbed, progress=False))
    url = cfg.state.run.scorer_url
    url.parent.mkdir(parents=True, exist_ok=True)
    url.write_text(service.url + "\n")
    echo(f"scorer listening on {service.url}; every call carries a token (lab/scorer/auth.py) made with the key in "
         f"{auth.key_path(cfg.state_dir)}, which only the lab's user reads", err=True)
    try:
        service.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        url.unlink(missing_ok=True)
