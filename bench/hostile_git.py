"""A git compression bomb: what the agent that publishes it gets, and what it costs the person's readers.

    python bench/hostile_git.py [--subject-mb 200] [--file-mb 300] [--workdir DIR]

A temporary lab (a seeded database of nine agents and the real research repository) meets the attack of issue
20: one commit with a one-line subject of --subject-mb and a file of --file-mb, both of one repeated character,
so that git packs them into about a megabyte. The agent's publish goes through the lab's own acceptance of a
bundle (lab.scaffold.repo.accept_bundle, what the git_commit, submit and forum_post tools call once the bundle
is out of the sandbox): what it answers is what the agent reads. Then the same bomb is planted straight into
research.git with plain git, as if it had got in, on agent-1; agent-2 gets one within git's reach (a subject of
--readable-mb, the same file). `lab log`, `lab show` of each bomb, `lab report` (whose diffs are of these two
commits) and the TUI's agent screen then run against it; each one's wall time and the peak memory (RSS summed
over its process tree, polled every 5 ms) are the cost. measure() returns the rows; main() prints them.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parents[1]
PYTHON = sys.executable
MB = 1 << 20
CHUNK = 16 * MB
POLL_S = 0.005
PLAIN_GIT_ENV = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": "/nonexistent", "GIT_CONFIG_NOSYSTEM": "1",
                 "GIT_CONFIG_GLOBAL": "/dev/null", "GIT_AUTHOR_NAME": "agent-1", "GIT_AUTHOR_EMAIL": "agent-1@lab",
                 "GIT_COMMITTER_NAME": "agent-1", "GIT_COMMITTER_EMAIL": "agent-1@lab"}


class BenchError(Exception):
    pass


def git(git_dir: Path, *args: str) -> str:
    proc = subprocess.run(["git", f"--git-dir={git_dir}", *args], env=PLAIN_GIT_ENV, capture_output=True)
    if proc.returncode:
        raise BenchError(f"git {' '.join(args[:3])} failed: {proc.stderr.decode(errors='replace')[-500:]}")
    return proc.stdout.decode().strip()


def _repeated(path: Path, byte: bytes, size: int, newline: bool = False) -> Path:
    with open(path, "wb") as out:
        left = size
        while left:
            out.write(byte * min(CHUNK, left))
            left -= min(CHUNK, left)
        if newline:
            out.write(b"\n")
    return path


def bomb_blob(git_dir: Path, scratch: Path, size: int) -> str:
    """A file of `size` bytes of one character, written into the repository (git packs it ~1000:1)."""
    path = _repeated(scratch / "bomb.txt", b"a", size, newline=True)
    try:
        return git(git_dir, "hash-object", "-w", str(path))
    finally:
        path.unlink()


def bomb_commit(git_dir: Path, scratch: Path, parent: str, blob: str, subject_bytes: int) -> str:
    """A commit on `parent` that adds the blob as bomb.txt, with a one-line subject of `subject_bytes`."""
    listing = subprocess.run(["git", f"--git-dir={git_dir}", "ls-tree", parent], env=PLAIN_GIT_ENV,
                             capture_output=True, check=True).stdout
    tree = subprocess.run(["git", f"--git-dir={git_dir}", "mktree"], env=PLAIN_GIT_ENV, capture_output=True,
                          check=True, input=listing + f"100644 blob {blob}\tbomb.txt\n".encode()).stdout.decode().strip()
    message = _repeated(scratch / "subject.txt", b"s", subject_bytes)
    try:
        return git(git_dir, "commit-tree", tree, "-p", parent, "-F", str(message))
    finally:
        message.unlink()


# ---- measuring a reader ------------------------------------------------------------------------------
def run_measured(argv: list[str], cwd: Path, timeout_s: float = 600) -> dict:
    """Run argv; its wall time, the peak RSS of its process tree (summed, polled), the largest RSS any one of its
    processes reached (the kernel's count, which polling cannot miss), and what it printed (bytes, the start)."""
    out_path = cwd / ".bench-out"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    with open(out_path, "wb") as out:
        started = time.monotonic()
        proc = subprocess.Popen(argv, cwd=cwd, stdout=out, stderr=subprocess.STDOUT, env=env)
        watched, peak = psutil.Process(proc.pid), 0
        while True:
            pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
            if pid:
                break
            if time.monotonic() - started > timeout_s:
                proc.kill()
            peak = max(peak, _tree_rss(watched))
            time.sleep(POLL_S)
        wall = time.monotonic() - started
    proc.returncode = os.waitstatus_to_exitcode(status)
    printed = out_path.read_bytes()
    out_path.unlink()
    return {"wall_s": wall, "peak_mb": peak / MB, "largest_mb": usage.ru_maxrss / 1024, "returncode": proc.returncode,
            "printed": len(printed), "text": printed[:20000].decode(errors="replace")}


def _tree_rss(proc: psutil.Process) -> int:
    total = 0
    try:
        for p in [proc, *proc.children(recursive=True)]:
            try:
                total += p.memory_info().rss
            except psutil.Error:
                pass
    except psutil.Error:
        pass
    return total


def lab(*args: str, folder: Path) -> dict:
    return run_measured([PYTHON, "-m", "lab.cli", *args], folder)


def _cost(got: dict, note: str = "") -> str:
    ended = "finished" if got["returncode"] == 0 else f"exit {got['returncode']}"
    return (f"{got['wall_s']:.2f} s, {got['peak_mb']:.0f} MB peak (largest process {got['largest_mb']:.0f} MB), printed {got['printed']:,} bytes, {ended}"
            + (f"; {note}" if note else ""))


# ---- the TUI, in a process of its own ----------------------------------------------------------------
def tui_open(folder: Path, agent: str) -> dict:
    """Open the agent's screen in a Textual test run: seconds to its first frame, and to its commits and diff."""
    import asyncio

    from lab import config
    from lab.tui.app import LabApp
    from lab.tui.screens.agent import AgentScreen

    cfg = config.load(folder / "lab.toml")
    timings: dict = {}

    async def scenario():
        app = LabApp(cfg, folder / "lab.toml")
        async with app.run_test(size=(140, 40)) as pilot:
            await pilot.pause(0.2)
            started = time.monotonic()
            app.open_agent(agent)
            await _until(pilot, lambda: isinstance(app.screen, AgentScreen) and app.screen.last_event > 0)
            timings["screen_s"] = time.monotonic() - started
            started = time.monotonic()
            await pilot.press("3")
            screen = app.screen
            await _until(pilot, lambda: screen.query_one("#commit-list").row_count >= 1 and screen.diff_text)
            timings["commits_and_diff_s"] = time.monotonic() - started
            timings["diff_chars"] = len(screen.diff_text)
            timings["diff_end"] = screen.diff_text[-120:]

    asyncio.run(scenario())
    return timings


async def _until(pilot, predicate, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if predicate():
                return
        except Exception:      # a widget not mounted yet
            pass
        await pilot.pause(0.02)
    raise BenchError(f"the TUI did not show it within {timeout} s")


# ---- the attack ---------------------------------------------------------------------------------------
def make_lab(folder: Path) -> object:
    sys.path.insert(0, str(ROOT / "tests"))
    from tui_helpers import seeded_lab

    from lab.scaffold import repo as research

    folder.mkdir(parents=True, exist_ok=True)
    cfg = seeded_lab(folder, "tiny")
    research.create(cfg.state_dir)
    return cfg


def publish_as_agent(cfg, scratch: Path, blob_size: int, subject_bytes: int) -> tuple[str, str, float]:
    """The agent's repository gets the bomb commit, its bundle goes through the lab's acceptance; what the agent
    reads, the research repository's growth, the seconds the check took."""
    from lab.errors import Blocked
    from lab.scaffold import repo as research
    from lab.scaffold.publish_check import PublishLimits

    repo_path = research.research_repo_path(cfg.state_dir)
    own = scratch / "agent.git"
    git(own, "init", "-q", "--bare")
    git(own, "fetch", "-q", str(repo_path), "refs/heads/main:refs/heads/main")
    main = git(own, "rev-parse", "refs/heads/main")
    head = bomb_commit(own, scratch, main, bomb_blob(own, scratch, blob_size), subject_bytes)
    git(own, "update-ref", "refs/heads/bomb", head)
    bundle = scratch / "out.bundle"
    git(own, "bundle", "create", "-q", str(bundle), "refs/heads/bomb", "^refs/heads/main")
    before = _bytes_under(repo_path)
    started = time.monotonic()
    try:
        research.accept_bundle(research.open_repo(repo_path), bundle, "agent-1", head, PublishLimits.of(cfg.agents))
        got = "accepted"
    except Blocked as exc:
        got = f"error: refused: {exc}"
    took = time.monotonic() - started
    grew = _bytes_under(repo_path) - before
    return got, f"bundle of {bundle.stat().st_size / MB:.1f} MB checked in {took:.2f} s; research.git grew " \
                f"{grew:,} bytes", took


def plant(cfg, scratch: Path, blob_size: int, subject_bytes: int, readable_bytes: int) -> dict[str, str]:
    """The bombs put straight into research.git with plain git, past the lab: agent-1's as published, agent-2's
    with a subject git can still read. Their commit ids."""
    from lab.scaffold import repo as research

    repo_path = research.research_repo_path(cfg.state_dir)
    main = git(repo_path, "rev-parse", "refs/heads/main")
    blob = bomb_blob(repo_path, scratch, blob_size)
    planted = {"agent-1": bomb_commit(repo_path, scratch, main, blob, subject_bytes),
               "agent-2": bomb_commit(repo_path, scratch, main, blob, readable_bytes)}
    for branch, sha in planted.items():
        git(repo_path, "update-ref", f"refs/heads/{branch}", sha)
    return planted


def plant_ordinary(cfg, branch: str) -> str:
    """An ordinary commit (a small file, a short subject) on the branch, for the readers' baseline."""
    from lab.scaffold import repo as research

    repo_path = research.research_repo_path(cfg.state_dir)
    main = git(repo_path, "rev-parse", "refs/heads/main")
    blob = subprocess.run(["git", f"--git-dir={repo_path}", "hash-object", "-w", "--stdin"], env=PLAIN_GIT_ENV,
                          input=b"".join(b"line %d\n" % i for i in range(200)), capture_output=True,
                          check=True).stdout.decode().strip()
    listing = git(repo_path, "ls-tree", main) + f"\n100644 blob {blob}\tnotes.txt\n"
    tree = subprocess.run(["git", f"--git-dir={repo_path}", "mktree"], env=PLAIN_GIT_ENV, input=listing.encode(),
                          capture_output=True, check=True).stdout.decode().strip()
    sha = git(repo_path, "commit-tree", tree, "-p", main, "-m", "an ordinary step")
    git(repo_path, "update-ref", f"refs/heads/{branch}", sha)
    return sha


def point_submissions_at(cfg, planted: dict[str, str]) -> None:
    """Every submission with a commit names one of the bombs, so that `lab report`'s diffs are of them."""
    from lab.store import open_db

    first, second = planted.values()
    db = open_db(cfg.state_dir / "lab.db")
    try:
        db.execute("UPDATE submissions SET commit_sha = CASE WHEN id % 2 THEN ? ELSE ? END "
                   "WHERE commit_sha IS NOT NULL", [first, second])
        db.conn.commit()
    finally:
        db.conn.close()


def _bytes_under(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def measure(workdir: Path, subject_mb: float = 200, file_mb: float = 300, readable_mb: float = 8) -> list[dict]:
    """The git bomb's rows: what the agent got, and each reader's cost against a research repository holding it."""
    folder, scratch = Path(workdir) / "lab", Path(workdir) / "scratch"
    scratch.mkdir(parents=True, exist_ok=True)
    cfg = make_lab(folder)
    subject, size, readable = int(subject_mb * MB), int(file_mb * MB), int(readable_mb * MB)
    title = f"git bomb ({subject_mb:g} MB subject, {file_mb:g} MB file)"
    ordinary = plant_ordinary(cfg, "agent-3")
    rows = [{"attack": "baseline, no bomb: lab log", "agent_got": "-", "cost": _cost(lab("log", folder=folder))},
            {"attack": "baseline, no bomb: lab show", "agent_got": "-",
             "cost": _cost(lab("show", ordinary, folder=folder))}]
    got, publish_cost, _ = publish_as_agent(cfg, scratch, size, subject)
    rows.append({"attack": f"{title}: publish", "agent_got": got, "cost": publish_cost})
    planted = plant(cfg, scratch, size, subject, readable)
    point_submissions_at(cfg, planted)
    behind = "(planted in research.git with plain git)"

    logged = lab("log", folder=folder)
    rows.append({"attack": f"{title}: lab log", "agent_got": behind, "cost": _cost(logged)})
    for agent, sha in planted.items():
        shown = lab("show", sha, folder=folder)
        what = f"{subject_mb:g} MB" if agent == "agent-1" else f"{readable_mb:g} MB"
        rows.append({"attack": f"{title}: lab show (subject {what})", "agent_got": behind, "cost": _cost(shown)})
    reported = lab("report", folder=folder)
    report_md = folder / "report" / "report.md"
    rows.append({"attack": f"{title}: lab report", "agent_got": behind,
                 "cost": _cost(reported, f"report.md {report_md.stat().st_size:,} bytes" if report_md.exists()
                               else "no report.md")})
    for agent in planted:
        opened = run_measured([PYTHON, str(Path(__file__).resolve()), "--tui-open", str(folder), agent], folder)
        timings = _last_json(opened["text"])
        rows.append({"attack": f"{title}: TUI agent screen of {agent}", "agent_got": behind,
                     "cost": f"screen in {timings.get('screen_s', float('nan')):.2f} s, commits and diff in "
                             f"{timings.get('commits_and_diff_s', float('nan')):.2f} s; "
                             f"{opened['peak_mb']:.0f} MB peak (largest process {opened['largest_mb']:.0f} MB)"})
    return rows


def _last_json(text: str) -> dict:
    for line in reversed(text.splitlines()):
        if line.startswith("{"):
            return json.loads(line)
    return {}


def table(rows: list[dict]) -> str:
    widths = [max(len(r[k]) for r in rows) for k in ("attack", "agent_got", "cost")]
    widths = [min(w, 70) for w in widths]
    lines = []
    for r in rows:
        lines.append(f"{r['attack']:<{widths[0]}}  {r['agent_got'][:300]}\n{'':<{widths[0]}}  cost: {r['cost']}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--subject-mb", type=float, default=200)
    parser.add_argument("--file-mb", type=float, default=300)
    parser.add_argument("--readable-mb", type=float, default=8)
    parser.add_argument("--workdir", type=Path, help="kept afterwards (default: a temporary folder, removed)")
    parser.add_argument("--tui-open", nargs=2, metavar=("FOLDER", "AGENT"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.tui_open:
        print(json.dumps(tui_open(Path(args.tui_open[0]), args.tui_open[1])))
        return 0
    if args.workdir:
        rows = measure(args.workdir, args.subject_mb, args.file_mb, args.readable_mb)
    else:
        with tempfile.TemporaryDirectory(prefix="hostile-git-") as work:
            rows = measure(Path(work), args.subject_mb, args.file_mb, args.readable_mb)
    print(table(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
