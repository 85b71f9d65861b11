"""Runs a lab of nine agents while a fault injector breaks it, and prints how it recovered and what was lost.

    python bench/bench_chaos.py [--minutes 10] [--seeds 1,7,13,29,41] [--config lab.toml] [--state .lab]
                                [--json out.json]

Each seed runs on a fresh copy of the prepared testbed, one after another; the last table has a row per seed. The
bench exits with 1, naming each fault, whenever a fault was not recovered from or anything was lost, on any seed.

Faults, at random intervals (seeded): SIGKILL of a runner, of the supervisor (the bench then runs
`lab start --detach`, as a person would: a killed supervisor is not restarted by itself), of a sandboxed
command of an agent, of a scorer's method run; SQLite's write lock held for 2-5 s; the state disk filled
(the lab's `.lab` is a tmpfs the bench mounts, so only the bench's own filesystem fills; skipped where it
cannot mount one); the supervisor killed while a submission is being scored. After each fault: the time
until every agent is `running` again (`lab status --json`). At the end, after a final wait for the
scorer's queue: submissions, forum posts, notebook entries and commits lost, counted from what the agents
were told (their tool results) against what the store and the research repository hold.
"""
from __future__ import annotations

import argparse
import json
import os
import random
import re
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import psutil

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_lab import ROOT, copy_testbed, ensure_testbed, lab, lab_processes  # noqa: E402

KILL_KINDS = ("runner", "supervisor", "sandboxed", "method_run")
KINDS = KILL_KINDS + ("db_lock", "disk_full", "scorer_mid_submission")
RECOVERY_GOAL_S = 10.0
RECOVERY_TIMEOUT_S = 90.0
TMPFS_HEADROOM_MB = 200


@dataclass
class Fault:
    kind: str
    at: float                       # wall-clock time of the injection
    detail: str
    recovered: bool = False
    recovery_s: float | None = None


@dataclass
class Outcome:
    faults: list[Fault] = field(default_factory=list)
    skipped: dict[str, str] = field(default_factory=dict)   # kind -> why it was not injected


def status(folder: Path) -> dict:
    return json.loads(lab("status", "--json", cwd=folder))


def descendants(proc: psutil.Process) -> list[psutil.Process]:
    try:
        return proc.children(recursive=True)
    except psutil.Error:
        return []


def targets(folder: Path) -> dict[str, list[psutil.Process]]:
    """The lab's live processes by kind: runners, the supervisor, the runners' sandboxed commands (every
    descendant of a runner) and the scorer's method runs (the supervisor's other descendants, but for the zygote
    that forks the runners)."""
    found = lab_processes(folder)
    runners = found["runner"]
    under_runners = [d for r in runners for d in descendants(r)]
    taken = {p.pid for p in runners} | {p.pid for p in under_runners} | {p.pid for p in found["zygote"]}
    method_runs = [d for s in found["supervisor"] for d in descendants(s) if d.pid not in taken]
    # a method run is a tree (bwrap and what it runs); its root is the one whose parent is the supervisor
    sup_pids = {s.pid for s in found["supervisor"]}
    roots = [p for p in method_runs if _ppid(p) in sup_pids]
    commands = [p for p in under_runners if _ppid(p) in {r.pid for r in runners}]
    return {"runner": runners, "supervisor": found["supervisor"], "sandboxed": commands, "method_run": roots}


def _ppid(proc: psutil.Process) -> int | None:
    try:
        return proc.ppid()
    except psutil.Error:
        return None


def sigkill(proc: psutil.Process) -> bool:
    try:
        proc.kill()
        return True
    except psutil.Error:
        return False


def read_rows(db_path: Path, sql: str) -> list[tuple]:
    """One query's rows, on a read-only connection that is closed after it."""
    conn = sqlite3.connect(f"file:{db_path}?mode=ro", uri=True, timeout=60)
    try:
        return conn.execute(sql).fetchall()
    finally:
        conn.close()


def running_queue_row(db_path: Path) -> int | None:
    rows = read_rows(db_path, "SELECT id FROM submission_queue WHERE state = 'running' LIMIT 1")
    return rows[0][0] if rows else None


def mount_state_tmpfs(state: Path, dest: Path) -> str | None:
    """Mount a tmpfs the size of the testbed plus some headroom at dest; None when done, else why not."""
    used_mb = sum(f.stat().st_size for f in state.rglob("*") if f.is_file()) / 2**20
    size_mb = int(used_mb + TMPFS_HEADROOM_MB)
    dest.mkdir(parents=True, exist_ok=True)
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size_mb}m", "tmpfs", str(dest)],
                          capture_output=True, text=True)
    return None if done.returncode == 0 else f"cannot mount a tmpfs for the state: {done.stderr.strip()}"


def unmount(dest: Path) -> None:
    subprocess.run(["umount", "-l", str(dest)], capture_output=True)


class Injector:
    def __init__(self, folder: Path, rng: random.Random, state_on_tmpfs: bool, log=print):
        self.folder, self.rng, self.log = folder, rng, log
        self.db_path = folder / ".lab" / "lab.db"
        self.state_on_tmpfs = state_on_tmpfs

    def inject(self, kind: str) -> Fault | str:
        """Inject one fault and wait for the lab to recover; a string says why it could not be injected now."""
        before = status(self.folder)
        old_runner_pids = {a["pid"] for a in before["agents"] if a["pid"]}
        killed: set[int] = set()
        restart_supervisor = False
        at = ended = time.time()
        if kind in KILL_KINDS:
            candidates = targets(self.folder)[kind]
            # a sandboxed command comes and goes; a method run exists only while a submission is scored
            deadline = time.monotonic() + (60 if kind == "method_run" else 15)
            while not candidates and time.monotonic() < deadline:
                time.sleep(0.1)
                candidates = targets(self.folder)[kind]
            if not candidates:
                return f"no {kind} process alive"
            victim = self.rng.choice(candidates)
            at = ended = time.time()
            if not sigkill(victim):
                return f"{kind} {victim.pid} ended before the kill"
            killed.add(victim.pid)
            detail = f"SIGKILL {kind} pid {victim.pid}"
            restart_supervisor = kind == "supervisor"
        elif kind == "scorer_mid_submission":
            deadline = time.monotonic() + 60
            row = running_queue_row(self.db_path)
            while row is None and time.monotonic() < deadline:
                time.sleep(0.2)
                row = running_queue_row(self.db_path)
            supervisors = targets(self.folder)["supervisor"]
            if row is None or not supervisors:
                return "no submission was being scored within 60 s"
            at = ended = time.time()
            sigkill(supervisors[0])
            killed.add(supervisors[0].pid)
            detail = f"SIGKILL supervisor pid {supervisors[0].pid} while submission request {row} was running"
            restart_supervisor = True
        elif kind == "db_lock":
            hold = self.rng.uniform(2, 5)
            conn = sqlite3.connect(self.db_path, timeout=60, isolation_level=None)
            conn.execute("BEGIN IMMEDIATE")
            at = time.time()
            time.sleep(hold)
            conn.execute("ROLLBACK")
            conn.close()
            ended = time.time()
            detail = f"write lock held {hold:.1f} s"
        elif kind == "disk_full":
            if not self.state_on_tmpfs:
                return "the state folder is not on a filesystem the bench mounted"
            hold = self.rng.uniform(2, 5)
            filler = self.folder / ".lab" / "chaos-filler"
            at = time.time()
            with open(filler, "wb", buffering=0) as out:
                try:
                    while True:
                        out.write(b"\0" * 2**20)
                except OSError:
                    pass
                time.sleep(hold)
            filler.unlink()
            ended = time.time()
            detail = f"state disk full for {hold:.1f} s"
        else:
            raise ValueError(kind)
        if restart_supervisor:
            self.await_gone(killed)
            lab("start", "--detach", cwd=self.folder)
        # a held lock or a full disk is timed from its end: its own length is not the lab's recovery
        dead = killed | (old_runner_pids if restart_supervisor else set())
        recovered_at = self.await_recovery(dead, ended)
        fault = Fault(kind, at, detail, recovered_at is not None,
                      None if recovered_at is None else round(recovered_at - ended, 2))
        if fault.recovered:
            outcome = f"every agent running again after {fault.recovery_s} s"
        else:
            report = status(self.folder)
            stuck = [f"{a['name']} {a['state']} (pid {a['pid']}): {a['reason']}" for a in report["agents"]
                     if a["state"] != "running" or a["pid"] in dead]
            outcome = (f"NOT recovered within {RECOVERY_TIMEOUT_S:g} s (supervisor "
                       f"{report['supervisor_pid']}; {'; '.join(stuck) or 'every agent running'})")
            if not report["running"]:   # the fault took the lab down: start it again, as a person would
                lab("start", "--detach", cwd=self.folder)
                outcome += "; the bench ran `lab start --detach`"
        self.log(f"{time.strftime('%H:%M:%S')} {detail}: {outcome}")
        return fault

    def await_gone(self, pids: set[int], timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and any(_alive(p) for p in pids):
            time.sleep(0.05)

    def await_recovery(self, dead_pids: set[int], since: float) -> float | None:
        """The wall-clock time at which every agent is running under a live supervisor, none of them on a
        process that was killed; None past the timeout."""
        while time.time() - since < RECOVERY_TIMEOUT_S:
            report = status(self.folder)
            now = time.time()
            if report["running"] and report["supervisor_pid"] not in dead_pids and all(
                    a["state"] == "running" and a["pid"] not in dead_pids and _alive(a["pid"])
                    for a in report["agents"]):
                return now
            time.sleep(0.2)
        return None


def _alive(pid: int | None) -> bool:
    try:
        return pid is not None and psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


def run_chaos(folder: Path, kinds, seconds: float, gap_s: tuple[float, float], rng: random.Random,
              state_on_tmpfs: bool, log=print) -> Outcome:
    """Inject faults of the given kinds (a list, taken in order, or a callable drawing the next one) until
    `seconds` have passed or the list is done."""
    injector = Injector(folder, rng, state_on_tmpfs, log)
    outcome = Outcome()
    if not state_on_tmpfs:
        outcome.skipped["disk_full"] = "the state folder is not on a tmpfs the bench mounted"
    plan = list(kinds) if not callable(kinds) else None
    end = time.monotonic() + seconds
    while time.monotonic() < end and (plan is None or plan):
        time.sleep(rng.uniform(*gap_s))
        kind = plan.pop(0) if plan is not None else kinds()
        if kind in outcome.skipped and kind == "disk_full":
            continue
        result = injector.inject(kind)
        if isinstance(result, str):
            log(f"{time.strftime('%H:%M:%S')} {kind}: not injected: {result}")
            outcome.skipped.setdefault(kind, result)
        else:
            outcome.faults.append(result)
    return outcome


# ---- what was lost ---------------------------------------------------------------------------------
def reported_writes(db_path: Path) -> list[dict]:
    """Every forum post, notebook write and commit an agent was told succeeded, with what it wrote."""
    rows = read_rows(db_path, "SELECT id, agent, created, kind, data FROM events WHERE kind IN ('tool_call', "
                              "'tool_result') ORDER BY id")
    last_call: dict[tuple[str, str], dict] = {}
    found = []
    for _, agent, created, kind, data in rows:
        data = json.loads(data) if data else {}
        if data.get("name") not in ("forum_post", "notebook", "git_commit"):
            continue
        if kind == "tool_call":
            last_call[(agent, data.get("id"))] = data.get("arguments") or {}
            continue
        if data.get("is_error"):
            continue
        arguments = last_call.get((agent, data.get("id")), {})
        output = data.get("output", "")
        write = {"agent": agent, "created": created, "tool": data["name"], "output": output}
        if data["name"] == "forum_post" and (m := re.search(r"posted #(\d+)", output)):
            write["post_id"] = int(m.group(1))
        elif data["name"] == "git_commit" and (m := re.search(r"committed ([0-9a-f]{7,40})", output)):
            write["commit"] = m.group(1)
        elif data["name"] == "notebook" and arguments.get("action") in ("append", "replace"):
            write.update(action=arguments["action"], text=arguments.get("text", ""))
        else:
            continue
        found.append(write)
    return found


def lost_writes(folder: Path) -> dict[str, list[dict]]:
    """Reported writes missing from the store or the research repository, by kind."""
    state = folder / ".lab"
    posts = {r[0] for r in read_rows(state / "lab.db", "SELECT id FROM posts")}
    notebooks = dict(read_rows(state / "lab.db", "SELECT agent, notebook FROM agent_memory"))
    lost: dict[str, list[dict]] = {"posts": [], "notebook": [], "commits": []}
    since_replace: dict[str, list[dict]] = {}   # per agent: the notebook writes that must still be there
    for write in reported_writes(state / "lab.db"):
        if "post_id" in write and write["post_id"] not in posts:
            lost["posts"].append(write)
        elif "commit" in write and subprocess.run(
                ["git", "-C", str(state / "research.git"), "cat-file", "-e", write["commit"] + "^{commit}"],
                capture_output=True).returncode != 0:
            lost["commits"].append(write)
        elif "action" in write:
            if write["action"] == "replace":
                since_replace[write["agent"]] = []
            since_replace.setdefault(write["agent"], []).append(write)
    for agent, writes in since_replace.items():
        text = notebooks.get(agent) or ""
        lost["notebook"] += [w for w in writes if w["text"] not in text]
    return lost


def unfinished_submissions(db_path: Path) -> list[dict]:
    """Queued submissions neither done nor failed with a reason."""
    rows = read_rows(db_path, "SELECT id, agent, state, reason, created FROM submission_queue WHERE NOT "
                              "(state = 'done' OR (state = 'failed' AND coalesce(reason, '') != ''))")
    return [{"id": r[0], "agent": r[1], "state": r[2], "reason": r[3], "created": r[4]} for r in rows]


def await_queue(db_path: Path, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not read_rows(db_path, "SELECT 1 FROM submission_queue WHERE state IN ('queued', 'running') LIMIT 1"):
            return
        time.sleep(1)


def summarize(outcome: Outcome, lost: dict[str, list[dict]], unfinished: list[dict]) -> dict:
    """Per fault kind: injected, recovered, recovery times, and the losses that followed it (each loss is
    laid at the door of the latest fault before the write or submission)."""
    faults = sorted(outcome.faults, key=lambda f: f.at)

    def blame(when: float) -> str:
        earlier = [f for f in faults if f.at <= when]
        return earlier[-1].kind if earlier else "before any fault"

    figures: dict = {"kinds": {}, "skipped": outcome.skipped}
    for kind in KINDS:
        mine = [f for f in faults if f.kind == kind]
        times = [f.recovery_s for f in mine if f.recovered]
        figures["kinds"][kind] = {
            "injected": len(mine), "recovered": len(times),
            "median_recovery_s": round(statistics.median(times), 2) if times else None,
            "max_recovery_s": max(times) if times else None,
            "lost": {"submissions": 0, "posts": 0, "notebook": 0, "commits": 0}}
    figures["kinds"]["before any fault"] = {"lost": {"submissions": 0, "posts": 0, "notebook": 0, "commits": 0}}
    figures["faults"] = [{"kind": f.kind, "at": f.at, "detail": f.detail, "recovered": f.recovered,
                          "recovery_s": f.recovery_s} for f in faults]
    for row in unfinished:
        figures["kinds"][blame(row["created"])]["lost"]["submissions"] += 1
    for what, writes in lost.items():
        for write in writes:
            figures["kinds"][blame(write["created"])]["lost"][what] += 1
    kills = [f for f in faults if f.kind in KILL_KINDS + ("scorer_mid_submission",)]
    figures["totals"] = {
        "faults": len(faults), "recovered": sum(f.recovered for f in faults),
        "kills": len(kills), "kills_recovered": sum(f.recovered for f in kills),
        "max_recovery_s": max((f.recovery_s for f in faults if f.recovered), default=None),
        "lost": {"submissions": len(unfinished), **{k: len(v) for k, v in lost.items()}},
        "lost_detail": {"submissions": unfinished, **lost}}
    return figures


def problems(figures: dict) -> list[str]:
    """What went wrong, a line each: every fault not recovered from (which, and when), and every loss by the fault
    it followed; empty when every fault was recovered from and nothing was lost."""
    out = [f"NOT recovered: {f['kind']} at {time.strftime('%H:%M:%S', time.localtime(f['at']))} ({f['detail']})"
           for f in figures["faults"] if not f["recovered"]]
    for kind, row in figures["kinds"].items():
        lost = {what: n for what, n in row["lost"].items() if n}
        if lost:
            out.append(f"LOST after {kind}: " + ", ".join(f"{n} {what}" for what, n in lost.items()))
    return out


def over_goal(figures: dict) -> list[str]:
    return [f"{f['kind']} recovered in {f['recovery_s']} s ({f['detail']})" for f in figures["faults"]
            if f["recovered"] and f["recovery_s"] > RECOVERY_GOAL_S]


def print_summary(figures: dict) -> None:
    print(f"\n{'fault':24} {'injected':>8} {'recovered':>9} {'median s':>9} {'max s':>7}  lost (subm/posts/notes/commits)")
    for kind, row in figures["kinds"].items():
        lost = row["lost"]
        lost_text = f"{lost['submissions']}/{lost['posts']}/{lost['notebook']}/{lost['commits']}"
        if "injected" not in row:
            print(f"{kind:24} {'':8} {'':9} {'':9} {'':7}  {lost_text}")
            continue
        fmt = (lambda v: "-" if v is None else f"{v:.2f}")
        print(f"{kind:24} {row['injected']:8} {row['recovered']:9} {fmt(row['median_recovery_s']):>9} "
              f"{fmt(row['max_recovery_s']):>7}  {lost_text}")
    for kind, why in figures["skipped"].items():
        print(f"skipped: {kind}: {why}")
    t = figures["totals"]
    lost = t["lost"]
    print(f"\nfaults recovered: {t['recovered']} of {t['faults']} (kills: {t['kills_recovered']} of {t['kills']}); "
          f"longest recovery {t['max_recovery_s']} s (goal: {RECOVERY_GOAL_S:g} s); lost: {lost['submissions']} "
          f"submissions, {lost['posts']} posts, {lost['notebook']} notebook entries, {lost['commits']} commits "
          "(goal: 0)")
    for line in over_goal(figures):
        print(f"over the {RECOVERY_GOAL_S:g} s goal: {line}")
    for line in problems(figures):
        print(line)


def print_seeds(runs: list[tuple[int, dict]]) -> None:
    """A row per seed: its faults, recoveries, longest recovery and losses, and whether it held."""
    print(f"\n{'seed':>6} {'faults':>6} {'recovered':>9} {'kills':>7} {'max s':>7} {'over goal':>9}  "
          f"{'lost (subm/posts/notes/commits)':31} verdict")
    for seed, figures in runs:
        t, lost = figures["totals"], figures["totals"]["lost"]
        bad = problems(figures)
        print(f"{seed:>6} {t['faults']:>6} {t['recovered']:>9} {t['kills_recovered']:>3}/{t['kills']:<3} "
              f"{t['max_recovery_s'] if t['max_recovery_s'] is not None else '-':>7} {len(over_goal(figures)):>9}  "
              f"{lost['submissions']}/{lost['posts']}/{lost['notebook']}/{lost['commits']:<25} "
              f"{'FAILED: ' + '; '.join(bad) if bad else 'held'}")


def draw_kind(rng: random.Random, kinds: list[str]):
    return lambda: rng.choice(kinds)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=10, help="of faults, per seed")
    parser.add_argument("--seeds", default="1", help="comma-separated; a fresh lab for each")
    parser.add_argument("--seed", type=int, help="one seed (the same as --seeds N)")
    parser.add_argument("--config", type=Path, default=ROOT / "lab.toml")
    parser.add_argument("--state", type=Path, default=ROOT / ".lab")
    parser.add_argument("--gap", default="5,20", help="seconds between faults: the bounds of a uniform draw")
    parser.add_argument("--kinds", default=",".join(KINDS), help="the fault kinds to draw from")
    parser.add_argument("--final-wait", type=float, default=600, help="seconds to wait for the scorer's queue")
    parser.add_argument("--json", type=Path, help="also write the figures here (a list, a run per seed)")
    args = parser.parse_args()
    os.environ.pop("ANTHROPIC_API_KEY", None)   # backend "auto" is then the researcher, as the bench means
    seeds = [args.seed] if args.seed is not None else [int(x) for x in args.seeds.split(",") if x]
    gap = tuple(float(x) for x in args.gap.split(","))
    kinds = [k for k in args.kinds.split(",") if k]
    assert all(k in KINDS for k in kinds), f"kinds are {KINDS}"

    ensure_testbed(args.config, args.state)
    runs = []
    for seed in seeds:
        figures = one_seed(args, random.Random(seed), seed, gap, kinds)
        print(f"\n== seed {seed}")
        print_summary(figures)
        runs.append((seed, figures))
        if args.json:
            args.json.write_text(json.dumps([{"seed": s, **f} for s, f in runs], indent=2, default=str) + "\n")
    print_seeds(runs)
    failed = [seed for seed, figures in runs if problems(figures)]
    if failed:
        print(f"\nFAILED on seed{'s' if len(failed) > 1 else ''} {', '.join(map(str, failed))}: a fault was not "
              "recovered from, or something was lost (above)")
        sys.exit(1)


def one_seed(args, rng: random.Random, seed: int, gap, kinds: list[str]) -> dict:
    """One lab, on a fresh copy of the testbed, broken for args.minutes; its figures."""
    with tempfile.TemporaryDirectory(prefix="lab-chaos-") as tmp:
        folder = Path(tmp)
        why_not = mount_state_tmpfs(args.state, folder / ".lab") if "disk_full" in kinds else "not asked for"
        try:
            return _run(folder, args, rng, seed, gap, kinds, why_not)
        finally:
            if why_not is None:
                unmount(folder / ".lab")


def _run(folder: Path, args, rng: random.Random, seed: int, gap, kinds: list[str], why_not: str | None) -> dict:
    if why_not is None:
        shutil.copytree(args.state, folder / ".lab", dirs_exist_ok=True,
                        ignore=lambda src, names: [n for n in names if n in
                                                   {"lab.db", "lab.db-wal", "lab.db-shm", "run", "worktrees"}])
    else:
        copy_testbed(args.state, folder / ".lab")
    shutil.copy(args.config, folder / "lab.toml")
    lab("start", "--detach", cwd=folder)
    try:
        db_path = folder / ".lab" / "lab.db"
        names = [a["name"] for a in status(folder)["agents"]]
        print(f"{len(names)} agents; faults from {kinds} every {gap[0]:g}-{gap[1]:g} s for {args.minutes:g} min "
              f"(seed {seed})", flush=True)
        outcome = run_chaos(folder, draw_kind(rng, kinds), args.minutes * 60, gap, rng, why_not is None)
        if why_not is not None and "disk_full" in kinds:
            outcome.skipped["disk_full"] = why_not
        lab("start", "--detach", cwd=folder)   # nothing changes where it runs; the queue needs a scorer
        lab("stop", *names, cwd=folder)         # no new submissions: what is queued is scored, then counted
        await_queue(db_path, args.final_wait)
    finally:
        lab("stop", cwd=folder)
    return summarize(outcome, lost_writes(folder), unfinished_submissions(db_path))


if __name__ == "__main__":
    main()
