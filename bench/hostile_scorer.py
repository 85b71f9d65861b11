"""What an agent can cost the others through the scorer: the sleeping-method and CPU-burning-method attacks, measured.

    python bench/hostile_scorer.py [--workdir DIR]

Each attacker submits the worst method of its kind three times in a row:
- the sleeper answers at once on the first dev seed (so it is not rejected there) and sleeps on every other run,
  using no CPU, to hold its run slots;
- the burner burns CPU on every run up to just under its CPU-time limit, then answers: it fails nothing and hangs
  on nothing, so nothing stops it early (`[scorer] run_cpu_s` is 30 s here, so that the bench takes minutes).
Once the attacker's first submission is being scored, two other agents submit the vanilla baseline. Each vanilla
submission's time, from its request to its result, is compared with the same two submissions on an idle scorer,
after one untimed submission that warms the scorer (the goal: within 2 x). The scorer runs in a process of its own, as `lab start` runs it, on a small
testbed that `lab init` prepares in the work folder (once, a few minutes), with the lab's default limits otherwise.
bench/bench_hostile.py imports `measure`.
"""
from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from hostile_disk import SMALL_TESTBED  # noqa: E402  (the small testbed both benches prepare)

ROOT = Path(__file__).resolve().parents[1]
ATTACKS = 3              # the attacker's submissions, queued before anyone else's
VICTIMS = ("agent-2", "agent-3")
SMALL_LAB = SMALL_TESTBED.format(sandbox="bwrap") + """
[scorer]
seeds = 2
check_seeds = 1
run_cpu_s = 30
"""
METHODS = ROOT / "tests" / "methods"
ATTACKERS = {   # agent -> (method, what it does)
    "agent-1": ("sleeper.py", "sleeping method (answers on dev seed 0, sleeps on every other run)"),
    "agent-4": ("burner.py", "CPU-burning method (burns 90% of its CPU limit on every run, then answers)"),
}


def prepared_lab(workdir: Path) -> Path:
    """A lab folder with a small testbed, prepared by the real `lab init` unless it already is."""
    folder = Path(workdir) / "lab"
    folder.mkdir(parents=True, exist_ok=True)
    if not (folder / ".lab" / "research.git").is_dir():
        (folder / "lab.toml").write_text(SMALL_LAB)
        subprocess.run([sys.executable, "-m", "lab.cli", "init"], cwd=folder, check=True, capture_output=True)
    return folder


def commit_attack(cfg, sandbox, agent: str, method: str) -> str:
    """The attacker's commit of its method, published as agents publish theirs."""
    from lab.errors import NotFound
    from lab.sandbox.workspace import Workspace
    from lab.scaffold.repo import research_repo_path

    workspace = Workspace.ensure(cfg.sandboxes_dir, research_repo_path(cfg.state_dir), agent, sandbox)
    workspace.write(method, (METHODS / method).read_text())
    env = {f"GIT_{who}_{what}": value for who in ("AUTHOR", "COMMITTER")
           for what, value in (("NAME", agent), ("EMAIL", f"{agent}@lab"))}
    try:
        return workspace.commit(f"the worst method for a queue: {method}", env=env)
    except NotFound:          # committed by an earlier run of this bench in the same work folder
        return workspace.head()


def forget_requests(cfg, agent: str) -> None:
    """Take an agent's unfinished requests out of the queue (a stopped scorer puts its running ones back)."""
    from lab.store import open_db, submissions
    from lab.store.db import transaction

    db = open_db(cfg.state_dir / "lab.db")
    try:
        with transaction(db):
            db.execute("DELETE FROM submission_queue WHERE agent = ? AND state IN (?, ?)",
                       [agent, submissions.QUEUED, submissions.RUNNING])
    finally:
        db.conn.close()


def timed_submissions(client, submissions: list[tuple[str, str, str]], start_after=None) -> dict[str, dict]:
    """Queue each (agent, commit, path) at once, then wait for all: each one's outcome and seconds from its request
    to its result. `start_after`: a request to see running before the others are queued."""
    if start_after is not None:
        while client.request(*start_after)["state"] == "queued":
            time.sleep(0.2)
    queued = {}
    for agent, commit, path in submissions:
        queued[agent] = (time.monotonic(), client.enqueue(agent, commit, path)["request"])
    outcomes = {}
    for agent, (start, request) in queued.items():
        view = client.request(agent, request, wait_s=3600)
        outcomes[agent] = {"view": view, "s": view["finished"] - view["created"]}
    return outcomes


@contextmanager
def scorer_process(cfg, folder: Path):
    """The lab's scorer service in a process of its own, run by `lab scorer` as `lab start` runs it: its URL; killed,
    with every run it started, at the end."""
    url = cfg.state.run.scorer_url
    url.unlink(missing_ok=True)          # a scorer killed by an earlier run of this bench left its own
    proc = subprocess.Popen([sys.executable, "-m", "lab.cli", "scorer"], cwd=folder, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        deadline = time.monotonic() + 120
        while not url.is_file() and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.1)
        if not url.is_file():
            raise RuntimeError(f"`lab scorer` in {folder} did not start (exit code {proc.poll()})")
        yield url.read_text().strip()
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


def measure(workdir: Path) -> list[dict]:
    """Each attack: what the attacker got, and what it cost the other agents' vanilla submissions."""
    from lab import config
    from lab.sandbox import make_sandbox
    from lab.scaffold.repo import open_repo, research_repo_path, root_commit
    from lab.scorer.auth import AgentCredentials, KeyCredentials, load_or_make_key, token_for
    from lab.scorer.client import ScorerClient

    folder = prepared_lab(workdir)
    cfg = config.load(folder / "lab.toml")
    sandbox = make_sandbox(cfg.lab.sandbox, warn=lambda line: None)
    vanilla = root_commit(open_repo(research_repo_path(cfg.state_dir)))
    victims = [(agent, vanilla, "methods/vanilla.py") for agent in VICTIMS]
    key = load_or_make_key(cfg.state_dir)
    rows = []
    for attacker_name, (method, what) in ATTACKERS.items():
        commit = commit_attack(cfg, sandbox, attacker_name, method)
        with scorer_process(cfg, folder) as url:
            others = ScorerClient(url, KeyCredentials(key))
            attacker = ScorerClient(url, AgentCredentials(attacker_name, token_for(key, attacker_name)))
            timed_submissions(others, [("agent-0", vanilla, "methods/vanilla.py")])   # warm: the first pays for caches
            idle = timed_submissions(others, victims)
            attacks = [attacker.enqueue(attacker_name, commit, method)["request"] for _ in range(ATTACKS)]
            hostile = timed_submissions(others, victims, start_after=(attacker_name, attacks[0]))
            first = attacker.request(attacker_name, attacks[0])
            if first["state"] in ("done", "failed"):
                got = first["reason"] if first["state"] == "failed" else f"scored: {first['result']}"
                got = f"held the scorer {first['finished'] - first['started']:.0f} s, then: {got}"
            else:
                got = (f"its first submission was still being scored when the others' were done "
                       f"({time.time() - first['started']:.0f} s so far)")
        forget_requests(cfg, attacker_name)     # the next attack starts on a queue without this one's
        waits = ", ".join(f"{agent} {hostile[agent]['s']:.0f} s against {idle[agent]['s']:.0f} s idle "
                          f"({hostile[agent]['s'] / idle[agent]['s']:.2f} x)" for agent in VICTIMS)
        worst = max(hostile[agent]["s"] / idle[agent]["s"] for agent in VICTIMS)
        rows.append({"attack": f"{what}, {ATTACKS} submissions queued first",
                     "agent_got": got,
                     "cost": f"others' vanilla submissions took {waits}; worst {worst:.2f} x idle "
                             f"({'within' if worst <= 2 else 'OVER'} the 2 x goal); stall_s {cfg.scorer.stall_s:g} s, "
                             f"run_cpu_s {cfg.scorer.run_cpu_s:g} s, parallel {cfg.scorer.parallel}"})
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workdir", type=Path, default=None, help="kept between runs (the prepared testbed)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="lab-hostile-") as tmp:
        rows = measure(args.workdir or Path(tmp))
    for row in rows:
        print(f"attack:    {row['attack']}\nagent got: {row['agent_got']}\ncost:      {row['cost']}\n")


if __name__ == "__main__":
    main()
