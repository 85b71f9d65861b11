"""Times `lab tui` on a week of history in a real terminal (tmux), and its CPU at idle and under nine writers.

    python bench/bench_tui.py [--days 7] [--seconds 20] [--repeats 3] [--keep] [--lab DIR]

A temporary lab folder gets a lab.toml and a database seeded with `--days` of synthetic history of
nine agents (tests/seeding.py: events, forum, evaluations, submissions, all through the real store).
Figures: the database's size and rows; seconds from launching `lab tui` in a 160x48 tmux pane to
the first frame that shows the agents table with data and the leaderboard (and the CPU its load
line shows), and from `q` to the process's exit (median and max of --repeats); the TUI's CPU
(user + system of the pane's process tree, as % of one core) and memory over --seconds with no
writers, then with nine writer processes that write like agents through the store (an event every
0.2 s, a counter update every second, an evaluation every 3 s, a post every 5 s, a submission every
30 s), and the write rate those writers achieved.
"""
from __future__ import annotations

import argparse
import multiprocessing
import os
import random
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

import seeding  # noqa: E402  (tests/seeding.py: the synthetic history)

AGENTS = 9
COLUMNS, LINES = 160, 48
POLL_S = 0.02
TOML = """\
[lab]
sandbox = "{sandbox}"

[agents]
count = {agents}
backend = "researcher"
"""
# what one writer does, like one agent: seconds between writes of each kind
INTERVALS = {"event": 0.2, "counters": 1.0, "evaluation": 3.0, "post": 5.0, "submission": 30.0}
WRITES_PER_ROUND = {"counters": 2}     # agents.tick and agents.add_counts


class BenchError(Exception):
    pass


# ---- tmux ------------------------------------------------------------------------------------------
class Terminal:
    """A tmux server of our own (its own socket), so nothing of the user's tmux is touched."""

    def __init__(self, folder: Path):
        self.socket = f"lab-bench-{os.getpid()}"
        self.conf = folder / "tmux.conf"
        # the whole 160x48 goes to the app; a dead pane stays so that its last screen can be read
        self.conf.write_text("set -g status off\nset -g remain-on-exit on\nset -g history-limit 0\n")

    def tmux(self, *args: str, check: bool = True) -> str:
        out = subprocess.run(["tmux", "-L", self.socket, "-f", str(self.conf), *args], capture_output=True,
                             text=True)
        if check and out.returncode != 0:
            raise BenchError(f"tmux {' '.join(args)}: {out.stderr.strip()}")
        return out.stdout

    def start(self, name: str, command: str, cwd: Path) -> None:
        self.tmux("new-session", "-d", "-s", name, "-x", str(COLUMNS), "-y", str(LINES), "-c", str(cwd), command)

    def keys(self, name: str, *keys: str) -> None:
        self.tmux("send-keys", "-t", name, *keys)

    def screen(self, name: str) -> str:
        return self.tmux("capture-pane", "-p", "-t", name)

    def pane(self, name: str) -> tuple[int, bool, str]:
        parts = self.tmux("display", "-p", "-t", name, "#{pane_pid} #{pane_dead} #{pane_dead_status}").split()
        return int(parts[0]), parts[1:2] == ["1"], " ".join(parts[2:])

    def stop(self, name: str) -> None:
        try:
            tree = tree_of(self.pane(name)[0])
        except (BenchError, ValueError, IndexError):
            tree = []
        self.tmux("kill-session", "-t", name, check=False)
        _gone, alive = psutil.wait_procs(tree, timeout=5)
        for p in alive:           # only what this session started
            try:
                p.kill()
            except psutil.Error:
                pass

    def close(self) -> None:
        self.tmux("kill-server", check=False)


def tree_of(pid: int) -> list[psutil.Process]:
    try:
        root = psutil.Process(pid)
        return [root, *root.children(recursive=True)]
    except psutil.Error:
        return []


def cpu_s(pid: int) -> float:
    total = 0.0
    for p in tree_of(pid):
        try:
            t = p.cpu_times()
            total += t.user + t.system
        except psutil.Error:
            pass
    return total


def rss_mb(pid: int) -> float:
    total = 0
    for p in tree_of(pid):
        try:
            total += p.memory_info().rss
        except psutil.Error:
            pass
    return total / 2**20


def wait_ready(term: Terminal, name: str, launched: float, markers: list[re.Pattern], top: list[str],
               timeout: float) -> tuple[float, str]:
    """Seconds from launch to the first frame with every marker; also which leaderboard value it showed."""
    polls = 0
    while True:
        screen = term.screen(name)
        if all(m.search(screen) for m in markers):
            elapsed = time.perf_counter() - launched
            seen = next((v for v in top if v in screen), "")
            return elapsed, seen
        polls += 1
        late = time.perf_counter() - launched > timeout
        if late or polls % 10 == 0:
            _pid, dead, status = term.pane(name)
            if dead or late:
                why = f"exited with status {status}" if dead else f"showed no ready frame within {timeout:.0f} s"
                raise BenchError(f"the TUI {why}; last screen:\n{term.screen(name).rstrip()}")
        time.sleep(POLL_S)


def first_cpu(screen: str) -> str | None:
    """The load line's CPU figure on a frame ("37%"), or None where the frame has none."""
    found = re.search(r"CPU\s+(\d+%)", screen)
    return found.group(1) if found else None


def wait_exit(term: Terminal, name: str, timeout: float) -> float:
    """Sends `q` and returns the seconds until the pane's process has exited."""
    sent = time.perf_counter()
    term.keys(name, "q")
    while True:
        _pid, dead, _status = term.pane(name)
        if dead:
            return time.perf_counter() - sent
        if time.perf_counter() - sent > timeout:
            raise BenchError(f"the TUI did not exit within {timeout:.0f} s of q")
        time.sleep(POLL_S)


# ---- writers ----------------------------------------------------------------------------------------
def _writer(db_path: str, agent: str, seconds: float, seed: int, results, go) -> None:
    from lab.store import agents, events, forum, open_db, submissions

    db = open_db(db_path)
    rng = random.Random(seed)
    results.put(("ready", agent))
    go.wait()
    counts = {k: 0 for k in INTERVALS}
    latencies: list[float] = []
    now = time.monotonic()
    due = {k: now + rng.uniform(0, v) for k, v in INTERVALS.items()}
    stop_at = now + seconds
    last_tick, n = now, 0
    kinds = ["turn", "tool_call", "tool_result"]
    while True:
        kind = min(due, key=due.get)
        if due[kind] >= stop_at:
            break
        time.sleep(max(0.0, due[kind] - time.monotonic()))
        begin = time.monotonic()
        if kind == "event":
            n += 1
            k = kinds[n % 3]
            events.record(db, agent, k, f"{k} {n}: trying logconf α=0.{rng.randint(1, 9)}, layer {rng.randint(1, 6)}",
                          {"id": "", "name": "shell", "arguments": {"command": f"python method.py --seed {n % 5}"}})
        elif kind == "counters":
            agents.tick(db, agent, begin - last_tick)
            last_tick = begin
            agents.add_counts(db, agent, tokens_in=rng.randint(3000, 9000), tokens_out=rng.randint(100, 400),
                              dollars=0.02)
        elif kind == "evaluation":
            pgr = rng.uniform(0.2, 0.6)
            weak, ceiling = seeding.BASELINE[seeding.DEV]
            submissions.record_evaluation(db, agent, seeding.DEV, weak + pgr * (ceiling - weak), pgr)
            agents.add_counts(db, agent, experiments=1, scorer_queries=1)
        elif kind == "post":
            pgr = rng.uniform(0.2, 0.6)
            forum.post(db, agent, "result", f"{agent} live result {counts['post']}: dev PGR {pgr:+.3f}",
                       "Recipe: logconf, layer 5. " * 6, None, {"pgr": round(pgr, 4), "seeds": 5})
        elif kind == "submission":
            plan = seeding.synthetic_submission(rng, rng.uniform(0.3, 0.7))
            submissions.record_submission(db, agent=agent, commit_sha=f"{rng.getrandbits(160):040x}",
                                          path="method.py", **plan)
        latencies.append(time.monotonic() - begin)
        counts[kind] += WRITES_PER_ROUND.get(kind, 1)
        due[kind] += INTERVALS[kind] * rng.uniform(0.8, 1.2)
    db.conn.close()
    results.put((agent, counts, latencies))


def start_writers(db_path: Path, seconds: float):
    """Nine writer processes, each past its imports with the database open, waiting for `go`."""
    ctx = multiprocessing.get_context("spawn")
    results, go = ctx.Queue(), ctx.Event()
    procs = [ctx.Process(target=_writer, args=(str(db_path), f"agent-{i + 1}", seconds, i, results, go), daemon=True)
             for i in range(AGENTS)]
    for p in procs:
        p.start()
    for _ in procs:
        results.get(timeout=120)
    return procs, results, go


# ---- the bench ---------------------------------------------------------------------------------------
def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--days", type=float, default=7.0, help="days of history to seed")
    parser.add_argument("--seconds", type=float, default=20.0, help="length of each CPU measurement")
    parser.add_argument("--repeats", type=int, default=3, help="TUI launches to time")
    parser.add_argument("--timeout", type=float, default=60.0, help="give up on a launch after this long")
    parser.add_argument("--keep", action="store_true", help="keep the lab folder (and print where it is)")
    parser.add_argument("--lab", type=Path, help="reuse a lab folder that --keep kept (its seeding is skipped)")
    parser.add_argument("--command", default="tui",
                        help="the lab subcommand to time (default tui; e.g. a stand-in while there is none)")
    args = parser.parse_args()

    tmux = subprocess.run(["tmux", "-V"], capture_output=True, text=True).stdout.strip()
    print(f"machine: {psutil.cpu_count()} cores, {psutil.virtual_memory().total / 2**30:.0f} GiB; "
          f"terminal {COLUMNS}x{LINES} ({tmux})", flush=True)
    reused = args.lab is not None
    folder = args.lab.resolve() if reused else Path(tempfile.mkdtemp(prefix="lab-tui-bench-"))
    term = Terminal(folder)
    writers: list = []
    try:
        from lab.store import open_db, submissions

        config = folder / "lab.toml"
        db_path = folder / ".lab" / "lab.db"
        if reused:
            if not db_path.is_file():
                raise BenchError(f"--lab {folder}: no .lab/lab.db there (keep one with --keep)")
            db = open_db(db_path)
            print(f"reused {folder}")
        else:
            config.write_text(TOML.format(sandbox="bwrap" if shutil.which("bwrap") else "none", agents=AGENTS))
            db = open_db(db_path)
            begin = time.perf_counter()
            counts = seeding.seed_history(db, agents=AGENTS, days=args.days)
            seeded = time.perf_counter() - begin
            db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            rows = ", ".join(f"{counts[k]:,} {k}" for k in ("events", "posts", "votes", "comments", "evaluations",
                                                             "submissions", "flags"))
            print(f"seeded {args.days:g} days of {AGENTS} agents in {seeded:.1f} s: {rows}")
        size = sum(p.stat().st_size for p in db_path.parent.glob("lab.db*")) / 2**20
        print(f"database: {size:,.0f} MiB")
        top = submissions.leaderboard(db, limit=1)[0].dev_pgr
        db.conn.close()
        top_texts = [f"{top:+.4f}", f"{top:+.3f}", f"{top:.4f}", f"{top:.3f}"]
        markers = [re.compile(rf"\bagent-{AGENTS}\b"), re.compile(r"\+0\.\d")]
        command = f"exec {sys.executable} -m lab.cli --config {config} {args.command}"
        if args.command.split()[0] != "tui":   # a stand-in that prints and exits: run it in a loop
            command = f"while true; do {sys.executable} -m lab.cli --config {config} {args.command}; sleep 1; done"

        # ---- start time ------------------------------------------------------------------------------
        times, quits = [], []
        for i in range(args.repeats):
            name = f"start{i}"
            launched = time.perf_counter()
            term.start(name, command, folder)
            elapsed, seen = wait_ready(term, name, launched, markers, top_texts, args.timeout)
            cpu = first_cpu(term.screen(name))
            times.append(elapsed)
            line = f"  launch {i + 1}: ready in {elapsed:.2f} s" + (
                f" (leaderboard top {seen} on screen" if seen else " (leaderboard top not on that frame") + (
                f", load line CPU {cpu})" if cpu else ", no load line)")
            if args.command.split()[0] == "tui":
                time.sleep(1.0)                 # past the first refreshes, as a person would be
                quits.append(wait_exit(term, name, args.timeout))
                line += f"; q to exit {quits[-1]:.2f} s"
            print(line, flush=True)
            term.stop(name)
        print(f"start to agents table and leaderboard: median {statistics.median(times):.2f} s, "
              f"max {max(times):.2f} s over {len(times)} launches (goal < 2 s)")
        if quits:
            print(f"q to exit: median {statistics.median(quits):.2f} s, max {max(quits):.2f} s (goal < 1 s)")

        # ---- CPU and memory, idle then under nine writers ------------------------------------------
        name = "cpu"
        launched = time.perf_counter()
        term.start(name, command, folder)
        wait_ready(term, name, launched, markers, top_texts, args.timeout)
        pid = term.pane(name)[0]
        time.sleep(2.0)                         # past the first refreshes
        t0, c0 = time.perf_counter(), cpu_s(pid)
        time.sleep(args.seconds)
        idle = (cpu_s(pid) - c0) / (time.perf_counter() - t0) * 100
        idle_rss = rss_mb(pid)
        print(f"TUI idle: {idle:5.1f}% of one core over {args.seconds:g} s, RSS {idle_rss:,.0f} MiB", flush=True)

        writers, results, go = start_writers(db_path, args.seconds)
        time.sleep(2.0)                         # the TUI settles after the writers' start-up took the cores
        t0, c0 = time.perf_counter(), cpu_s(pid)
        go.set()
        time.sleep(args.seconds)
        busy = (cpu_s(pid) - c0) / (time.perf_counter() - t0) * 100
        busy_rss = rss_mb(pid)
        got = [results.get(timeout=60) for _ in writers]
        for p in writers:
            p.join(timeout=10)
        _pid, dead, status = term.pane(name)
        if dead:
            raise BenchError(f"the TUI exited (status {status}) under the writers; last screen:\n{term.screen(name)}")
        totals = {k: sum(c[k] for _, c, _ in got) for k in INTERVALS}
        span = args.seconds
        wanted = AGENTS * sum(WRITES_PER_ROUND.get(k, 1) / v for k, v in INTERVALS.items())
        lat = [x * 1000 for x in sorted(x for _, _, ls in got for x in ls)]
        print(f"TUI with {AGENTS} writers: {busy:5.1f}% of one core over {args.seconds:g} s, RSS {busy_rss:,.0f} MiB")
        print(f"writers: {sum(totals.values()) / span:.1f} writes/s achieved of {wanted:.1f} intended ("
              + ", ".join(f"{k} {v / span:.1f}/s" for k, v in totals.items())
              + f"); write latency p50 {lat[len(lat) // 2]:.1f} ms, p99 {lat[int(len(lat) * 0.99)]:.1f} ms, "
              f"max {lat[-1]:.0f} ms")
        if args.keep:
            screen = folder / "last-screen.txt"
            screen.write_text(term.screen(name))
            print(f"last screen: {screen}")
        term.stop(name)
    finally:
        for p in writers:
            if p.is_alive():
                p.terminate()
                p.join(timeout=5)
        term.close()
        if args.keep or reused:
            print(f"lab folder kept: {folder} (lab tui: python -m lab.cli --config {folder / 'lab.toml'} tui)")
        else:
            shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    try:
        main()
    except BenchError as exc:
        sys.exit(f"bench_tui: {exc}")
