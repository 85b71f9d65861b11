"""Runs the whole lab on this machine and prints what a person would want to know about it.

    python bench/bench_lab.py [--minutes 30] [--config lab.toml] [--state .lab] [--unbudgeted] [--keep DIR]

Figures: time from `lab start --detach` to every agent working (running, its first tool call
done); the supervisor's and the runners' own CPU and memory beside the experiments they run; forum
writes per second with nine writers; experiments per hour, and how many agents spent their whole
evaluate budget (those wait, so past that point the figure measures the budget, not the speed;
--unbudgeted lifts the budgets); at checkpoints (10 and 30 minutes by default, and the end): the
lab's best dev PGR, the best dev PGR of a submission without open flags with its held-out PGRs,
and how many submissions are flagged. The lab runs in a temporary folder whose testbed is copied
from --state (prepared with `lab init` first if missing).
"""
from __future__ import annotations

import argparse
import contextlib
import json
import multiprocessing
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parents[1]
LAB = [sys.executable, "-m", "lab.cli"]


def lab(*args: str, cwd: Path) -> str:
    done = subprocess.run([*LAB, *args], cwd=cwd, capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"lab {' '.join(args)} exited {done.returncode}: {done.stderr.strip()[-2000:]}")
    return done.stdout


def ensure_testbed(config: Path, state: Path) -> None:
    """Prepare the testbed with `lab init` (of `config`) where `state` holds none yet."""
    if not (state / "private" / "testbed.json").exists():
        lab("--config", str(config), "init", cwd=ROOT)


def copy_testbed(state: Path, dest: Path) -> None:
    skip = {"lab.db", "lab.db-wal", "lab.db-shm", "run", "worktrees"}
    shutil.copytree(state, dest, ignore=lambda src, names: [n for n in names if n in skip])


def _writer(path: str, author: str, count: int) -> None:
    from lab.store import forum, open_db

    db = open_db(path)
    for i in range(count):
        forum.post(db, author, "observation", f"{author} finding {i}", "a body of a typical length " * 8,
                   None, {"pgr": 0.1})
    db.conn.close()


def forum_writes_per_second(folder: Path, writers: int = 9, each: int = 300) -> float:
    from lab.store import open_db

    path = str(folder / "forum-bench.db")
    open_db(path).conn.close()
    ctx = multiprocessing.get_context("spawn")
    procs = [ctx.Process(target=_writer, args=(path, f"agent-{i}", each)) for i in range(writers)]
    start = time.perf_counter()
    for p in procs:
        p.start()
    for p in procs:
        p.join()
    elapsed = time.perf_counter() - start
    assert all(p.exitcode == 0 for p in procs)
    return writers * each / elapsed


def lab_processes(folder: Path) -> dict[str, list[psutil.Process]]:
    marker = str(folder / "lab.toml")
    found: dict[str, list[psutil.Process]] = {"supervisor": [], "zygote": [], "runner": []}
    for p in psutil.process_iter(["cmdline"]):
        cmd = p.info["cmdline"] or []
        if marker in cmd:
            if "lab.agents.supervisor" in cmd:
                found["supervisor"].append(p)
            elif "lab.agents.zygote" in cmd:      # forks the runners; counted with the supervisor's overhead
                found["zygote"].append(p)
            elif "lab.agents.runner" in cmd:
                found["runner"].append(p)
    return found


def wait_until_working(db, names: list[str], began: float, timeout_s: float = 300) -> dict[str, float]:
    """Each agent's time (s after `began`, a wall-clock time) of its first finished tool call, from its events;
    returns once every agent has one."""
    from lab.store import events

    working: dict[str, float] = {}
    last_id: dict[str, int] = {}
    while len(working) < len(names):
        if time.time() - began > timeout_s:
            raise SystemExit(f"only {sorted(working)} of {len(names)} agents made a tool call within {timeout_s:g} s")
        time.sleep(0.05)
        for name in names:
            if name in working:
                continue
            for event in events.transcript(db, name, after_id=last_id.get(name, 0), limit=500):
                last_id[name] = event["id"]
                if event["kind"] == "tool_result":
                    working[name] = event["created"] - began
                    break
    return working


def _pgr(sub, role: str) -> tuple[float, float] | None:
    score = sub.scored(role)
    return (round(score.pgr, 3), round(score.pgr_se or 0.0, 3)) if score else None


def standing(db, top: int = 3) -> dict:
    """The best agent submissions without open flags, by private dev PGR (the leaderboard's order), each with its
    public and held-out PGRs; the elicit baseline's beside them; how many are flagged."""
    from lab.store import submissions

    board = submissions.leaderboard(db)
    agents_only = [s for s in board if s.agent not in ("baseline", "person")]
    clean = [s for s in agents_only if not s.open_flags and s.private_pgr is not None]   # best first
    flagged = [s for s in submissions.flagged(db, include_cleared=False) if s.agent not in ("baseline", "person")]
    row = lambda s: {"submission": s.id, "agent": s.agent, "private": _pgr(s, "private"),  # noqa: E731
                     "public": _pgr(s, "dev"), "heldout": {x.dataset: _pgr(s, "heldout") and round(x.pgr, 3)
                                                           for x in s.scores if x.role == "heldout"}}
    elicit = next((s for s in board if s.agent == "baseline" and s.path == "methods/elicit.py"), None)
    return {"scored": len(agents_only), "flagged": len(flagged), "best_unflagged": [row(s) for s in clean[:top]],
            "elicit": row(elicit) if elicit else None}


def lift_budgets(path: Path) -> None:
    """Raise the per-agent evaluate and submit budgets of a lab.toml out of reach (in its [scorer] section)."""
    lines, section = [], None
    for line in path.read_text().splitlines():
        stripped = line.strip()
        if stripped.startswith("["):
            section = stripped.split("#")[0].strip()
        if section == "[scorer]" and stripped.split("=")[0].strip() in ("evaluate_budget", "submit_budget"):
            continue
        lines.append(line)
        if section == "[scorer]" and stripped.startswith("[scorer]"):
            lines += ["evaluate_budget = 1000000", "submit_budget = 1000000"]
    if "[scorer]" not in [ln.split("#")[0].strip() for ln in lines]:
        lines += ["[scorer]", "evaluate_budget = 1000000", "submit_budget = 1000000"]
    path.write_text("\n".join(lines) + "\n")


def agents_at_budget(db, cfg) -> int:
    """How many agents have used their whole evaluate budget in the scorer's window, as of now."""
    from lab.store import submissions

    since = time.time() - cfg.scorer.budget_window_hours * 3600
    return sum(len(submissions.recent(db, "evaluations", name, since)) >= cfg.scorer.evaluate_budget
               for name in cfg.agents.names)


def describe_standing(st: dict) -> str:
    fmt = lambda v: "failed" if v is None else f"{v[0]:+.3f} ± {v[1]:.3f}"   # noqa: E731
    lines = []
    for i, best in enumerate(st["best_unflagged"], start=1):
        heldout = ", ".join(f"{k} {v:+.3f}" if v is not None else f"{k} failed" for k, v in best["heldout"].items())
        lines.append(f"  {i}. #{best['submission']} {best['agent']}: private {fmt(best['private'])}, public "
                     f"{fmt(best['public'])}; {heldout}")
    if st["elicit"]:
        e = st["elicit"]
        lines.append(f"  elicit baseline: private {fmt(e['private'])}, public {fmt(e['public'])}")
    head = "no unflagged submission" if not st["best_unflagged"] else "best unflagged, by private dev PGR:"
    return "\n".join([f"{head} ({st['flagged']} of {st['scored']} agent submissions flagged)", *lines])


def stored_rows(db) -> int:
    """Rows in the store's tables (the full-text index's own tables left out): what the lab has written."""
    names = [r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE "
                                      "'sqlite_%' AND name NOT LIKE '%_fts%'").fetchall()]
    return sum(db.execute(f'SELECT count(*) FROM "{name}"').fetchone()[0] for name in names)


def busy_cpu_s() -> float:
    """CPU seconds the whole machine has spent busy since boot."""
    t = psutil.cpu_times()
    return t.user + t.nice + t.system + getattr(t, "irq", 0) + getattr(t, "softirq", 0)


def overhead(folder: Path) -> dict[str, float]:
    """Own CPU seconds and memory of the lab's processes (supervisor and runners) now."""
    out = {"supervisor_cpu_s": 0.0, "supervisor_rss_mb": 0.0, "runners_cpu_s": 0.0, "runners_rss_mb": 0.0}
    for kind, procs in lab_processes(folder).items():
        name = "runners" if kind == "runner" else "supervisor"
        for p in procs:
            try:
                t, rss = p.cpu_times(), p.memory_info().rss / 2**20
            except psutil.Error:
                continue
            out[f"{name}_cpu_s"] += t.user + t.system
            out[f"{name}_rss_mb"] += rss
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=30)
    parser.add_argument("--checkpoints", default="10,30", help="minutes at which to read the best PGR")
    parser.add_argument("--config", type=Path, default=ROOT / "lab.toml")
    parser.add_argument("--state", type=Path, default=ROOT / ".lab")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    parser.add_argument("--keep", type=Path, help="run the lab in this new folder and keep it (its logs, database "
                                                  "and research repository) instead of a temporary one; with loop "
                                                  "disk quotas it keeps the agents' disk images too ([agents] disk_mb "
                                                  "each, 18 GB for nine): remove it when read")
    parser.add_argument("--no-baselines", action="store_true", help="start without the baselines scored")
    parser.add_argument("--unbudgeted", action="store_true",
                        help="lift the per-agent evaluate and submit budgets: measure speed, not the budgets")
    args = parser.parse_args()
    checkpoints = sorted(float(c) for c in args.checkpoints.split(",") if float(c) <= args.minutes)

    ensure_testbed(args.config, args.state)
    figures: dict = {"machine": f"{psutil.cpu_count()} cores, {psutil.virtual_memory().total / 2**30:.0f} GiB"}
    if args.keep:
        args.keep.mkdir(parents=True)     # a new folder: the lab's state is copied into it whole
    with (contextlib.nullcontext(str(args.keep)) if args.keep else tempfile.TemporaryDirectory(prefix="lab-bench-")) \
            as tmp:
        folder = Path(tmp)
        copy_testbed(args.state, folder / ".lab")
        shutil.copy(args.config, folder / "lab.toml")
        if args.unbudgeted:
            lift_budgets(folder / "lab.toml")
        figures["forum_writes_per_s_nine_writers"] = round(forum_writes_per_second(folder), 1)
        print(f"forum writes per second, nine writers: {figures['forum_writes_per_s_nine_writers']}", flush=True)
        if not args.no_baselines:  # as `make lab` does: the baselines are on the leaderboard when agents start
            begin = time.monotonic()
            lab("score", "--baselines", cwd=folder)
            figures["baselines_s"] = round(time.monotonic() - begin, 1)
            print(f"lab score --baselines: {figures['baselines_s']} s", flush=True)

        from lab import config
        from lab.store import open_db

        cfg = config.load(folder / "lab.toml")
        names = cfg.agents.names
        start, busy_start, began = time.monotonic(), busy_cpu_s(), time.time()
        lab("start", "--detach", cwd=folder)
        figures["start_returned_s"] = round(time.monotonic() - start, 2)
        db = open_db(folder / ".lab" / "lab.db")
        working = wait_until_working(db, names, began)
        count = len(names)
        figures["start_to_all_working_s"] = round(max(working.values()), 2)
        print(f"lab start --detach: returned after {figures['start_returned_s']} s (supervisor ready); "
              f"{count} agents working (first tool call done) after {figures['start_to_all_working_s']} s "
              f"(first {min(working.values()):.2f} s)", flush=True)

        rows_at_start = stored_rows(db)
        best_at: dict[str, float | None] = {}
        standing_at: dict[str, dict] = {}
        samples = []
        for minute in sorted(set(checkpoints + [args.minutes])):
            while time.monotonic() - start < minute * 60:
                time.sleep(min(30.0, max(0.1, minute * 60 - (time.monotonic() - start))))
                samples.append(overhead(folder))
            report = json.loads(lab("status", "--json", cwd=folder))
            best_at[f"{minute:g}"] = report["lab"]["best_pgr"]
            standing_at[f"{minute:g}"] = standing(db)
            print(f"after {minute:g} min: best private dev PGR {report['lab']['best_pgr']}, "
                  f"{report['lab']['experiments']} experiments, {report['lab']['submissions']} submissions, "
                  f"{report['lab']['forum_posts']} posts; {describe_standing(standing_at[f'{minute:g}'])}",
                  flush=True)
        elapsed_h = (time.monotonic() - start) / 3600
        final = overhead(folder)
        busy = busy_cpu_s() - busy_start
        report = json.loads(lab("status", "--json", cwd=folder))
        # an agent that spent its evaluate budget waits: past that, experiments per hour measures the budget
        figures["agents_at_evaluate_budget"] = agents_at_budget(db, cfg)
        print(f"{figures['agents_at_evaluate_budget']} of {count} agents have used their whole evaluate budget "
              f"({cfg.scorer.evaluate_budget} per {cfg.scorer.budget_window_hours:g} h)", flush=True)
        figures.update({
            "agents": count, "minutes": args.minutes, "best_dev_pgr_at_minutes": best_at,
            "standing_at_minutes": standing_at,
            "experiments_per_hour": round(report["lab"]["experiments"] / elapsed_h, 1),
            "submissions": report["lab"]["submissions"], "forum_posts": report["lab"]["forum_posts"],
            "states": {a["name"]: a["state"] for a in report["agents"]},
            "machine_busy_cpu_s": round(busy, 1),
            "supervisor_cpu_s": round(final["supervisor_cpu_s"], 1),
            "runners_cpu_s": round(final["runners_cpu_s"], 1),
            # everything else the machine did: the sandboxed experiments and the scorer's method runs
            "experiments_and_scoring_cpu_s": round(busy - final["supervisor_cpu_s"] - final["runners_cpu_s"], 1),
            "lab_overhead_share": round((final["supervisor_cpu_s"] + final["runners_cpu_s"]) / max(busy, 1e-9), 3),
            # what each agent costs the head: its share of the lab's own CPU, and rows it adds to the store
            "store_rows_per_agent_minute": round((stored_rows(db) - rows_at_start) / count / (elapsed_h * 60), 1),
            "supervisor_rss_mb": round(sum(s["supervisor_rss_mb"] for s in samples) / max(1, len(samples)), 1),
            "runners_rss_mb_total": round(sum(s["runners_rss_mb"] for s in samples) / max(1, len(samples)), 1),
        })
        board = lab("score", cwd=folder)
        db.conn.close()
        stop_start = time.monotonic()
        lab("stop", cwd=folder)
        figures["stop_s"] = round(time.monotonic() - stop_start, 1)
        figures["processes_left"] = sum(len(v) for v in lab_processes(folder).values())
    print(json.dumps(figures, indent=2))
    print(board)
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2) + "\n")


if __name__ == "__main__":
    main()
