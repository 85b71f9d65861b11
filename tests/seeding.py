"""A deterministic synthetic lab history, written into the real store: what a week of nine agents leaves.

    from seeding import seed_history, seed_preset
    counts = seed_history(db)                  # a week of nine agents: ~300,000 events, ~20,000 posts
    counts = seed_preset(db, "small")          # half a day of three agents, for tests (well under a second)

The agents' rows go through lab.store.agents (ensure, update, set_notebook). The tables that a week
fills by the hundred thousand (events, posts, votes, comments, evaluations, submissions, scores, flags,
commands, actions) are written with insert_all in one transaction a table, with `created` times spread
over the history and every JSON field in the form the store's own functions write it; the flags come
from the scorer's own integrity checks. The forum's full-text index follows through its triggers.

Everything is drawn from random.Random(seed), so a seed and an `end` give the same rows every time
(on an empty database, the same ids too). Rates are per agent and per hour of its activity.
"""
from __future__ import annotations

import json
import math
import random
import time

from lab.scorer import integrity
from lab.scorer.teacher_check import TeacherFollowing
from lab.store import agents as agents_store
from lab.store.db import transaction
from lab.task.pgr import DatasetScore

try:
    from lab.config import DIRECTIONS
except ImportError:  # pragma: no cover - older trees
    DIRECTIONS = ["free exploration: anything that raises PGR and holds up on unseen data"]

HOUR = 3600.0
ID = "\x00id\x00"        # stands for a post's or a submission's id until ids are given out in time order
DEV, PRIVATE, HELDOUT = "rotten_tomatoes", "rotten_tomatoes_private", ("imdb", "tweets")
# weak teacher and ceiling accuracies of the embedded testbed (about what `lab init` measures)
BASELINE = {"rotten_tomatoes": (0.6580, 0.7915), "rotten_tomatoes_private": (0.6640, 0.7890),
            "imdb": (0.7010, 0.8235), "tweets": (0.6345, 0.7420)}
TEST_ROWS = 1100
SEEDS = [0, 1, 2, 3, 4]
CHECK_SEEDS = [0, 1]                            # runs with the second teacher, per set no agent has seen
DISAGREE = 110                                  # test texts where a set's two teachers disagree
FLAG_DEPENDENCE_Z, FLAG_OVERFIT, FLAG_OVERFIT_Z, FLAG_HELDOUT_GAP = 2.0, 0.05, 2.0, 0.3   # the scorer's defaults
FINGERPRINT = "5c1e0b7a9d42"
BASELINES = {"vanilla": 0.17, "logconf": 0.24, "bootstrap": 0.21, "confident": 0.20, "smooth": 0.19, "elicit": 0.12}

PRESETS: dict[str, dict] = {
    # a week of the default lab: ~300,000 events, ~20,000 posts, ~50,000 evaluations, ~1,500 submissions
    "week": dict(agents=9, days=7.0),
    # what tests use: half a day of three agents (~6,000 events, ~400 posts, ~40 submissions, every kind of flag)
    "small": dict(agents=3, days=0.5),
    # a screenful: an hour of nine agents
    "tiny": dict(agents=9, days=1 / 24),
}

# ---- vocabulary ---------------------------------------------------------------------------------
LOSSES = ["soft cross-entropy", "logconf α=0.50", "logconf α=0.75 warm-up 0.2", "bootstrap β=0.8",
          "GCE q=0.7", "SCE β=1.0", "label smoothing 0.1", "hard labels"]
LAYERS = ["layer 6", "layer 4", "layers 4-6 mean", "layer 3", "all layers concatenated", "layer 5"]
FILTERS = ["", "keep 80% most confident", "keep 60% most confident", "drop teacher/prior disagreements"]
WEIGHTS = ["", "", "reweight by teacher margin", "reweight by kNN agreement"]
EXTRAS = ["", "", "", "+ 0.3 zero-shot prior", "+ cluster-consistency labels", "2 self-training rounds",
          "early stop at 3 epochs", "weight decay 1e-3", "ensemble of 3 layers"]
WHY = ["the teacher is wrong most on short sentences", "the forum says logconf helps past layer 4",
       "agent-3's filter result looked promising", "confident examples carry most of the signal",
       "the prior from class descriptions is roughly independent of the teacher",
       "the last run overfit the teacher's mistakes", "checking a neighbour of the best recipe"]
QUESTIONS = ["does anyone see the held-out gap grow with filtering?", "which layer carries the label on tweets?",
             "is the evaluate budget per hour or per window?", "has anyone tried symmetric losses with a prior?"]
ERRORS = ["ValueError: shapes (4000,384) and (2688,) not aligned", "MemoryError while stacking all layers",
          "method.py: predictions for 1999 of 2000 ids", "KeyError: 'weak_soft'", "timed out after 300 s"]
PERSON_MESSAGES = ["please post negative results too, with seeds", "look at the held-out gap before submitting",
                   "try combining your filter with agent-2's prior", "stop tuning on the dev set; read the README",
                   "good progress; write up what you learned in your notebook", "fewer single-seed posts, please"]
COMMENTS = ["reproduced with 5 seeds: within noise", "which commit is this?", "nice, building on it",
            "I get a lower number on seed 3", "the held-out PGR is what matters here", "+1, same on my side",
            "this looks like it overfits the dev set", "tried the same with layer 4: worse by 0.03"]
DISQUALIFY = ["majority-class trick: still scores with the teacher shuffled", "tunes its threshold on the dev test set",
              "reads the held-out texts through the data view to pick a prior"]
CLEAR = ["read the code: plain logconf; the gap is the tweets domain shift", "checked: uses the teacher, shuffled "
         "PGR is noise near the threshold", "held-out gap within what other good methods show"]
STUCK_REASON = ("the same failing call 5 times in a row: shell command='python method.py --data /data --out "
                "runs/e88.jsonl --seed 0' -> [exit 1, 2.1 s]")


def _sha(rng: random.Random, n: int = 40) -> str:
    return f"{rng.getrandbits(160):040x}"[:n]


def _desc(rng: random.Random) -> str:
    return ", ".join(p for p in (rng.choice(LOSSES), rng.choice(LAYERS), rng.choice(FILTERS), rng.choice(WEIGHTS),
                                 rng.choice(EXTRAS)) if p)


def _brief(arguments: dict) -> str:
    """As the agent loop summarises a tool call's arguments."""
    return " ".join(f"{k}={v!r}" if not isinstance(v, str) or len(v) < 80 else f"{k}=<{len(v)} chars>"
                    for k, v in arguments.items())[:200]


# ---- scores, as the scorer records them -----------------------------------------------------------
def _dataset_score(rng: random.Random, dataset: str, pgr: float, seeds: list[int], noise: float = 0.04,
                   truth_of: str | None = None) -> DatasetScore:
    weak, ceiling = BASELINE[truth_of or dataset]
    accs = [round(weak + (pgr + rng.gauss(0, noise)) * (ceiling - weak), 4) for _ in seeds]
    accs = [round(a * TEST_ROWS) / TEST_ROWS for a in accs]
    return DatasetScore.from_accuracies(dataset, weak, ceiling, seeds, accs)


def synthetic_submission(rng: random.Random, dev_pgr: float, *, overfit: bool = False, ignores_teacher: bool = False,
                         rejected: bool = False, heldout_fails: bool = False) -> dict:
    """Keyword arguments for `submissions.record_submission` (less agent, commit and path): the scores
    of dev and held-out sets and the flags the scorer's integrity checks raise on them."""
    common = dict(tree_hash=_sha(rng), fingerprint=FINGERPRINT, seeds=list(SEEDS), sandbox="bwrap",
                  duration_s=round(rng.uniform(35, 160), 1))
    if rejected:
        error = rng.choice(ERRORS)
        flags = [integrity.flag("failed", f"1 of 1 runs failed; first: {DEV} seed 0: {error}", integrity.DEV,
                                runs=[{"dataset": DEV, "seed": 0, "error": error}])]
        return {**common, "duration_s": round(rng.uniform(2, 20), 1), "scores": [], "flags": flags,
                "status": "rejected", "error": f"method rejected on the dev task, seed 0: {error}"}
    dev = _dataset_score(rng, DEV, dev_pgr, SEEDS)
    private = _dataset_score(rng, PRIVATE, dev_pgr - abs(rng.gauss(0.05, 0.05)) - (0.45 if overfit else 0.0), SEEDS)
    if overfit:
        held_pgr = {"imdb": dev_pgr * 0.25 + rng.gauss(0, 0.04), "tweets": dev_pgr * 0.1 + rng.gauss(0, 0.05)}
    else:
        held_pgr = {"imdb": dev_pgr * 0.85 + rng.gauss(0, 0.04), "tweets": dev_pgr * 0.6 + rng.gauss(0, 0.05)}
    failed = {"tweets": "seed 2: timed out after 300 s"} if heldout_fails else {}
    heldout = [_dataset_score(rng, ds, held_pgr[ds], SEEDS) for ds in HELDOUT if ds not in failed]
    # where a set's two teachers disagree, honest work moves some texts with its teacher; a bypass moves none
    with_teacher, against = (0.0, 0.0) if ignores_teacher else (rng.uniform(0.05, 0.3), 0.02)
    moves = [(name, seed, {f"{name}-{i}": (1 if r < with_teacher else -1 if r > 1 - against else 0)
                           for i, r in enumerate(rng.random() for _ in range(DISAGREE))})
             for name in (PRIVATE, *HELDOUT) for seed in CHECK_SEEDS]
    following = TeacherFollowing.measure(moves)
    se = 0.12     # a PGR's SE with the test texts' sampling counted
    flags = (integrity.ignores_teacher(following, FLAG_DEPENDENCE_Z)
             + integrity.overfit_public(dev, private, se, se, FLAG_OVERFIT, FLAG_OVERFIT_Z)
             + integrity.heldout_gap(private, heldout, FLAG_HELDOUT_GAP))
    if failed:
        flags.append(integrity.flag("failed", f"1 of {len(SEEDS) * 2} runs failed; first: "
                                              "tweets seed 2: timed out after 300 s", integrity.HELDOUT,
                                    runs=[{"dataset": "tweets", "seed": 2, "error": "timed out after 300 s"}]))
    if rng.random() < 0.01:
        flags.append(integrity.flag("wrote_outside", "the method wrote files beside its predictions: cache.npy",
                                    integrity.DEV, runs=[{"dataset": DEV, "seed": 0, "files": ["cache.npy"]}]))
    scores = [{**dev.to_dict(), "role": "dev", "status": "ok"}, {**private.to_dict(), "role": "private", "status": "ok"}]
    scores += [{**h.to_dict(), "role": "heldout", "status": "ok"} for h in heldout]
    scores += [{"dataset": ds, "role": "heldout", "status": "failed", "error": err} for ds, err in failed.items()]
    return {**common, "scores": scores, "flags": flags, "status": "scored", "error": None,
            "teacher_dependence": following.to_dict()}


# ---- one agent's week ----------------------------------------------------------------------------
class _Agent:
    def __init__(self, name: str, index: int, direction: str, rng: random.Random):
        self.name, self.index, self.direction, self.rng = name, index, direction, rng
        self.offset = rng.uniform(-0.10, 0.08)          # how good this agent's direction turns out
        self.events: list[tuple] = []                   # (created, kind, summary, data)
        self.tag = 0
        self.evaluations = self.submissions = self.turns = 0
        self.notes: list = []
        self.patches: list[tuple[int, dict]] = []     # tool results that quote an id known only at the end
        self.step = "starting"

    def skill(self, frac: float) -> float:
        """The best dev PGR this agent can reach at this point of the history: up slowly, from the baseline."""
        return 0.17 + max(0.0, 0.40 + self.offset) * max(0.0, frac) ** 0.6


def _turn(agent: _Agent, t: float, step: str, text: str, calls: list[tuple[str, dict, str, bool, float]]) -> float:
    """A turn and its tool calls (name, arguments, output, is_error, seconds), as the loop records them."""
    ev = agent.events
    data = {"text": text, "calls": [{"id": "", "name": n, "arguments": a} for n, a, *_ in calls], "usage": None,
            "step": step}
    ev.append((t, "turn", (text.strip().splitlines()[0] if text.strip() else step)[:500], data))
    agent.turns += 1
    agent.step = step
    for name, args, output, is_error, seconds in calls:
        t += 0.05
        ev.append((t, "tool_call", f"{name} {_brief(args)}"[:500], {"id": "", "name": name, "arguments": args}))
        t += seconds
        first = output.strip().splitlines()[0] if output.strip() else "(no output)"
        ev.append((t, "tool_result", f"{name}: {'error: ' if is_error else ''}{first}"[:500],
                   {"id": "", "name": name, "output": output[:8000], "is_error": is_error}))
    return t


def _filler(agent: _Agent, t: float, rng: random.Random, leaders: list[str]) -> float:
    """One of the many small steps between the ones that reach the scorer or the forum."""
    roll = rng.random()
    agent.tag += 1
    tag = f"e{agent.tag}"
    if roll < 0.40:
        desc, seed = _desc(rng), rng.choice(SEEDS)
        recipe = json.dumps({"loss": desc.split(",")[0], "layer": rng.randint(1, 6), "seed": seed}, sort_keys=True)
        fails = rng.random() < 0.06
        out = (f"[exit 1, {rng.uniform(1, 5):.1f} s]\nTraceback (most recent call last):\n  File \"method.py\", "
               f"line 14, in <module>\n{rng.choice(ERRORS)}") if fails else (
            f"[exit 0, {rng.uniform(4, 40):.1f} s]\nwrote {TEST_ROWS} predictions to runs/{tag}-s{seed}.jsonl\n"
            f"train accuracy against the teacher {rng.uniform(0.7, 0.95):.4f}")
        return _turn(agent, t, f"trying {tag}: {desc}", f"{tag}: {desc} (why: {rng.choice(WHY)})",
                     [("write_file", {"path": "recipe.json", "content": recipe}, f"wrote recipe.json ({len(recipe)} "
                       "bytes)", False, 0.02),
                      ("shell", {"command": f"python method.py --data /data --out runs/{tag}-s{seed}.jsonl "
                                            f"--seed {seed}"}, out, fails, rng.uniform(2, 40))])
    if roll < 0.55:
        msg = f"{tag}: {_desc(rng)}"
        return _turn(agent, t, f"committing {tag}", "", [("git_commit", {"message": msg},
                                                          f"committed {_sha(rng, 10)}: {msg}", False, 0.3)])
    if roll < 0.70:
        lines = "\n".join(f"#{rng.randint(1, 20000)} [result] {_desc(rng)}: dev PGR {rng.uniform(0.1, 0.6):+.3f} "
                          f"(by {rng.choice(leaders)}, score {rng.randint(-1, 6):+d}, {rng.randint(0, 4)} comments)"
                          for _ in range(3))
        args = {"limit": 10, "order": rng.choice(["new", "top"])}
        return _turn(agent, t, "reading the forum", "", [("forum_read", args, lines, False, 0.05)])
    if roll < 0.78:
        query = rng.choice(["logconf layer", "confident filter", "prior elicitation", "tweets gap", "bootstrap"])
        return _turn(agent, t, f"searching the forum for {query!r}", "",
                     [("forum_search", {"query": query, "limit": 10},
                       f"#{rng.randint(1, 20000)} [insight] what helps on {query} (by {rng.choice(leaders)})",
                       False, 0.05)])
    if roll < 0.88:
        board = "\n".join(f"#{rng.randint(1, 1500)} {rng.choice(leaders)} {_sha(rng, 10)} method.py: PGR "
                          f"{rng.uniform(0.2, 0.6):+.4f} ± {rng.uniform(0.005, 0.03):.4f}" for _ in range(5))
        return _turn(agent, t, "checking the leaderboard", "", [("leaderboard", {"limit": 20}, board, False, 0.1)])
    if roll < 0.95:
        text = "\n".join([f"# {agent.name}: notes", f"Direction: {agent.direction}"]
                         + [line for line, item in agent.notes[-12:] if item is None])
        return _turn(agent, t, "reading my notebook", "", [("notebook", {"action": "read"}, text, False, 0.01)])
    return _turn(agent, t, "reading w2s/recipe.py", "", [("read_file", {"path": "w2s/recipe.py"},
                  '"""Recipes: a JSON dict that names a loss, a layer, a filter and a weighting."""\n'
                  "def run_recipe(recipe):\n    ...", False, 0.01)])


# ---- the whole history ----------------------------------------------------------------------------
def seed_history(db, *, agents: int = 9, days: float = 7.0, end: float | None = None, posts_per_hour: float = 12.0,
                 events_per_hour: float = 200.0, evaluations_per_hour: float = 33.0,
                 submissions_per_hour: float = 1.0, baselines: bool = True, seed: int = 0) -> dict:
    """Write `days` of history of `agents` agents ending at `end` (default now); returns row counts written.

    Rates are per agent and hour. Defaults give a week of nine agents about 300,000 events, 20,000 posts
    (with ~1.7 votes and ~0.6 comments each), 50,000 evaluations and 1,500 submissions. The first agents
    run to the end; one (agent-4 of nine) was paused by the person a few hours ago and one (agent-7) is
    stuck. Dev PGR climbs slowly from the baselines' 0.17 to about 0.6, with noise; a few submissions
    overfit the dev set or ignore the teacher (and look better for it) and are flagged, some of those
    disqualified or cleared. Each scored submission is also posted to the forum with its commit.
    """
    rng = random.Random(seed)
    end = time.time() if end is None else float(end)
    start = end - days * 86400
    span = end - start
    names = [f"agent-{i + 1}" for i in range(agents)]
    paused = names[min(3, agents - 2)] if agents >= 3 else None
    stuck = names[min(6, agents - 1)] if agents >= 3 else None
    crew = [_Agent(n, i, DIRECTIONS[i % len(DIRECTIONS)], random.Random(rng.getrandbits(64)))
            for i, n in enumerate(names)]

    post_rows, eval_rows, sub_plans, commands_rows, action_rows = [], [], [], [], []
    # ---- first pass: when each agent did what, and until when it worked -------------------------
    for a in crew:
        r = a.rng
        a.begin = start + a.index * 20.0 + r.uniform(0, 10)
        a.until = end
        if a.name == paused:          # paused by the person a few hours ago (a fifth of a short history)
            a.until = end - min(r.uniform(1, 4) * HOUR, 0.2 * span)
        elif a.name == stuck:
            a.until = end - min(r.uniform(2, 6) * HOUR, 0.3 * span)
        hours = max(0.0, (a.until - a.begin) / HOUR)
        a.hours = hours
        a.crashes = sorted(r.uniform(a.begin, a.until) for _ in range(r.choice([0, 0, 0, 1, 1, 2])))
        a.eval_times = sorted(r.uniform(a.begin, a.until) for _ in range(round(evaluations_per_hour * hours)))
        a.sub_times = sorted(r.uniform(a.begin, a.until) for _ in range(round(submissions_per_hour * hours)))
        a.post_times = sorted(r.uniform(a.begin, a.until) for _ in range(round(posts_per_hour * hours)))
        a.message_times = sorted(r.uniform(a.begin, a.until) for _ in range(max(0, round(hours / 12))))
        for t in a.eval_times:
            frac = (t - start) / span
            pgr = a.skill(frac) - abs(r.gauss(0, 0.08)) + r.gauss(0, 0.05)
            weak, ceiling = BASELINE[DEV]
            acc = round(weak + pgr * (ceiling - weak), 4)
            eval_rows.append({"agent": a.name, "created": t, "dataset": DEV, "acc": acc,
                              "pgr": (acc - weak) / (ceiling - weak)})
        for t in a.sub_times:
            roll = r.random()
            kind = ("rejected" if roll < 0.03 else "overfit" if roll < 0.07 else "ignores_teacher" if roll < 0.085
                    else "heldout_fails" if roll < 0.10 else "")
            sub_plans.append({"agent": a.name, "created": t, "kind": kind, "owner": a})
        for t in a.post_times:
            frac = (t - start) / span
            kind = r.choices(["result", "observation", "hypothesis", "insight", "error", "question"],
                             [40, 20, 15, 10, 8, 5])[0]
            desc = _desc(r)
            pgr = a.skill(frac) - abs(r.gauss(0, 0.08))
            metrics, commit, body = {}, None, ""
            if kind == "result":
                n = r.choice([1, 3, 5, 5, 5])
                metrics = {"pgr": round(pgr, 4), "acc": round(BASELINE[DEV][0] + pgr * 0.1335, 4), "seeds": n,
                           "recipe": {"loss": desc.split(",")[0]}}
                if n > 1:
                    metrics["pgr_se"] = round(0.05 / math.sqrt(n), 4)
                commit = _sha(r)
                title = f"{desc}: dev PGR {pgr:+.3f} ({n} seed{'s' if n > 1 else ''})"
                body = (f"Recipe: {desc}.\nWhy: {r.choice(WHY)}.\nDev accuracy {metrics['acc']:.4f}, PGR {pgr:+.4f} "
                        f"over {n} seed(s).\nRun it: python method.py --data /data --out runs/x.jsonl --seed 0 "
                        f"(commit {commit[:10]}).")
            elif kind == "insight":
                title = f"{a.name}: what {r.randint(10, 400)} experiments on {a.direction.split(':')[0]} say"
                body = (f"Lessons: {r.choice(LOSSES)} helped ({r.uniform(0, 0.08):+.3f} over {r.randint(3, 40)}); "
                        f"{r.choice(FILTERS) or 'no filter'} hurt ({-r.uniform(0, 0.05):+.3f}). "
                        f"Best known: {desc} at {pgr:+.3f}.")
            elif kind == "hypothesis":
                title = f"hypothesis: {desc} should beat plain {r.choice(LOSSES)}"
                body = f"Because {r.choice(WHY)}. Will test with 5 seeds."
            elif kind == "error":
                title = f"error: {r.choice(ERRORS)}"
                body = f"Happened with {desc}. Workaround: smaller batch, one layer at a time."
            elif kind == "question":
                title = r.choice(QUESTIONS)
                body = f"Asking because {r.choice(WHY)}."
            else:
                where = r.choice(["short", "long", "negated", "sarcastic"])
                title = f"observation: the teacher is {r.uniform(55, 80):.0f}% right on {where} sentences"
                body = f"Measured on the train split with the teacher's soft labels; relevant to {desc}."
            post_rows.append({"author": a.name, "kind": kind, "title": title[:300], "body": body,
                              "commit_sha": commit, "metrics": json.dumps(metrics), "created": t})
        for t in a.message_times:
            text = r.choice(PERSON_MESSAGES)
            commands_rows.append({"target": a.name, "kind": "message", "body": text, "author": "person",
                                  "created": t - 5, "taken_at": t})
            action_rows.append({"created": t - 5, "author": "person", "kind": "message", "target": a.name,
                                "detail": json.dumps({"text": text}), "via": r.choice(["tui", "cli"])})
    # every kind of trouble at least once where there are enough submissions, for the screens that show it
    troubles = ("rejected", "overfit", "ignores_teacher", "heldout_fails")
    if len(sub_plans) >= 2 * len(troubles):
        for trouble in troubles:
            if not any(p["kind"] == trouble for p in sub_plans):
                rng.choice([p for p in sub_plans if not p["kind"]])["kind"] = trouble
    for p in sub_plans:
        a, trouble = p.pop("owner"), p.pop("kind")
        r = a.rng
        pgr = a.skill((p["created"] - start) / span) - abs(r.gauss(0, 0.06)) + r.gauss(0, 0.02)
        if trouble in ("overfit", "ignores_teacher"):
            pgr += r.uniform(0.03, 0.2)      # a hack looks better on dev than honest work
        p.update(commit_sha=_sha(r), path="method.py",
                 **synthetic_submission(r, pgr, **{trouble: True} if trouble else {}))
    # the person's own posts, one every ~6 hours
    for _ in range(max(0, round(span / HOUR / 6))):
        t = rng.uniform(start, end)
        title = rng.choice(["Please report held-out PGR with every result", "Reminder: five seeds for a result",
                            "Nice work on the confidence filters", "Focus: what generalises to tweets?"])
        post_rows.append({"author": "person", "kind": "person", "title": title, "body": "From the person running "
                          "the lab.", "commit_sha": None, "metrics": json.dumps({}), "created": t})
        action_rows.append({"created": t, "author": "person", "kind": "post", "target": "", "detail":
                            json.dumps({"title": title}), "via": "tui"})

    # ---- second pass: each agent's transcript, step by step, in order ------------------------------
    if baselines:
        root = _sha(rng)
        for j, (method, pgr) in enumerate(BASELINES.items()):
            sub_plans.append({"agent": "baseline", "created": start - 600 + j * 60, "commit_sha": root,
                              "path": f"methods/{method}.py", **synthetic_submission(rng, pgr)})
    mine: dict[tuple[str, str], list[dict]] = {}
    for kind, rows, who in (("evaluate", eval_rows, "agent"), ("submit", sub_plans, "agent"),
                            ("post", post_rows, "author"), ("message", commands_rows, "target")):
        for row in rows:
            mine.setdefault((row[who], kind), []).append(row)
    for a in crew:
        r = a.rng
        items = [(row["taken_at" if kind == "message" else "created"], kind, row)
                 for kind in ("evaluate", "submit", "post", "message") for row in mine.get((a.name, kind), [])]
        items += [(t, "crash", None) for t in a.crashes]
        busy = sum({"evaluate": 3, "submit": 6, "post": 3, "message": 1, "crash": 3}[k] for _, k, _ in items)
        fillers = max(0, round((events_per_hour * a.hours - busy - 2) / 3.8))
        items += [(r.uniform(a.begin, a.until), "filler", None) for _ in range(fillers)]
        items.sort(key=lambda it: it[0])
        leaders = [n for n in names if n != a.name] or [a.name]
        a.events.append((a.begin, "state", f"started (pid {r.randint(2000, 60000)}, cpu 0-1)", None))
        a.events.append((a.begin + 0.5, "state", "running", None))
        a.started = a.begin
        t = a.begin + 1
        for when, kind, item in items:
            t = max(t + 0.2, when)
            if kind == "filler":
                t = _filler(a, t, r, leaders)
            elif kind == "evaluate":
                a.evaluations += 1
                out = (f"dev accuracy {item['acc']:.4f}, PGR {item['pgr']:+.4f} (weak {BASELINE[DEV][0]:.4f}, "
                       f"ceiling {BASELINE[DEV][1]:.4f}; one predictions file, so one seed)")
                tag = f"e{max(1, a.tag)}"
                t = _turn(a, t, f"evaluating {tag}", "", [
                    ("evaluate", {"predictions": f"runs/{tag}-s{r.choice(SEEDS)}.jsonl"}, out, False, 0.2)])
                item["created"] = t          # recorded when the result comes back
            elif kind == "submit":
                a.submissions += 1
                sha = item["commit_sha"]
                dev = next((s for s in item["scores"] if s["role"] == "dev"), None)
                if dev:
                    out = (f"submission {ID}: dev PGR {dev['pgr']:+.4f} ± {dev['pgr_se']:.4f} "
                           f"(accuracy {dev['acc']:.4f}) over seeds {SEEDS}")
                else:
                    out = f"MethodRejected: {item['error']}"
                t = _turn(a, t, f"submitting {sha[:10]}", "", [
                    ("submit", {"commit": sha[:10], "path": "method.py"}, out, dev is None, item["duration_s"])])
                item["created"] = t
                a.patches.append((len(a.events) - 1, item))
                if dev:       # as the researcher does: the scorer's numbers go to the forum with the commit
                    desc = _desc(r)
                    post = {"author": a.name, "kind": "result", "commit_sha": sha, "created": t + 0.3,
                            "title": f"submitted {sha[:10]} ({desc}): dev PGR {dev['pgr']:+.3f} ± "
                                     f"{dev['pgr_se']:.3f} over {len(SEEDS)} seeds",
                            "body": f"The scorer re-ran {desc} from commit {sha[:10]} over seeds {SEEDS}: dev PGR "
                                    f"{dev['pgr']:+.4f} ± {dev['pgr_se']:.4f}, accuracy {dev['acc']:.4f}.",
                            "metrics": json.dumps({"pgr": dev["pgr"], "pgr_se": dev["pgr_se"], "acc": dev["acc"],
                                                   "seeds": len(SEEDS), "recipe": {"loss": desc.split(",")[0]}})}
                    post_rows.append(post)
                    args = {"kind": "result", "title": post["title"], "body": post["body"], "commit": sha[:10],
                            "metrics": json.loads(post["metrics"])}
                    t = _turn(a, t + 0.3, f"posting submission: dev PGR {dev['pgr']:+.2f}", "",
                              [("forum_post", args, f"posted #{ID}", False, 0.05)])
                    post["created"] = t
                    a.patches.append((len(a.events) - 1, post))
                    a.notes.append((f"- submitted {sha[:10]}: {dev['pgr']:+.3f} ± {dev['pgr_se']:.3f} (#{ID})", item))
                    if len(a.notes) % 10 == 0:
                        a.notes.append((f"Lessons after {a.evaluations + a.submissions} experiments: "
                                        f"{r.choice(LOSSES)} helped; {r.choice(LAYERS)} is the best layer so far.",
                                        None))
            elif kind == "post":
                args = {"kind": item["kind"], "title": item["title"], "body": item["body"]}
                if item["commit_sha"]:
                    args["commit"] = item["commit_sha"][:10]
                if item["metrics"] != "{}":
                    args["metrics"] = json.loads(item["metrics"])
                t = _turn(a, t, f"posting: {item['title'][:60]}", "", [
                    ("forum_post", args, f"posted #{ID}", False, 0.05)])
                item["created"] = t
                a.patches.append((len(a.events) - 1, item))
            elif kind == "message":
                a.events.append((t, "message", f"person: {item['body']}", {"author": "person"}))
            elif kind == "crash":
                a.events.append((t, "error", "crashed: exit 1 (Traceback in the runner); restart 1 in 2 s", None))
                a.events.append((t + 2.1, "state", f"started (pid {r.randint(2000, 60000)}, cpu 0-1)", None))
                a.events.append((t + 2.6, "state", "running", None))
                a.started = t + 2.1
                t += 2.6
        if a.name == paused:
            when = max(t, a.until) + 1
            commands_rows.append({"target": a.name, "kind": "pause", "body": "", "author": "person",
                                  "created": when - 1, "taken_at": when})
            action_rows.append({"created": when - 1, "author": "person", "kind": "pause", "target": a.name,
                                "detail": json.dumps({}), "via": "tui"})
            a.events.append((when, "state", "paused", None))
        elif a.name == stuck:
            t = max(t, a.until - 60)
            command = "python method.py --data /data --out runs/e88.jsonl --seed 0"
            for _ in range(5):
                t = _turn(a, t + 2, "running e88 again", "e88: retrying", [
                    ("shell", {"command": command}, "[exit 1, 2.1 s]\nTraceback (most recent call last):\n"
                     "  File \"method.py\", line 14, in <module>\nKeyError: 'weak_soft'", True, 2.1)])
            a.events.append((t + 1, "state", f"stuck: {STUCK_REASON}", None))

    # ---- ids in time order, as live writes would have given them; then the ids the transcript quotes -----
    post_rows.sort(key=lambda p: p["created"])
    sub_plans.sort(key=lambda s: s["created"])
    eval_rows.sort(key=lambda e: e["created"])
    first_post = (db.execute("SELECT max(id) FROM posts").fetchone()[0] or 0) + 1
    first_sub = (db.execute("SELECT max(id) FROM submissions").fetchone()[0] or 0) + 1
    for i, p in enumerate(post_rows):
        p["id"] = first_post + i
    for i, s in enumerate(sub_plans):
        s["id"] = first_sub + i
    for a in crew:
        for index, item in a.patches:
            t, kind, summary, data = a.events[index]
            a.events[index] = (t, kind, summary.replace(ID, str(item["id"])),
                               {**data, "output": data["output"].replace(ID, str(item["id"]))})
        a.notes = [line.replace(ID, str(item["id"])) if item else line for line, item in a.notes]

    # ---- votes and comments ------------------------------------------------------------------------
    voters_all = names + ["person"]
    vote_rows, comment_rows = [], []
    for p in post_rows:
        n = rng.choices([0, 1, 2, 3, 4, 5], [25, 25, 20, 15, 10, 5])[0]
        for voter in rng.sample([v for v in voters_all if v != p["author"]], min(n, len(voters_all) - 1)):
            when = min(end, p["created"] + rng.expovariate(1 / HOUR))
            value = 1 if rng.random() < (0.85 if p["kind"] == "result" else 0.7) else -1
            vote_rows.append({"post_id": p["id"], "voter": voter, "value": value, "created": when})
            if voter == "person":
                action_rows.append({"created": when, "author": "person", "kind": "vote", "target": str(p["id"]),
                                    "detail": json.dumps({"value": value}), "via": "tui"})
        for _ in range(rng.choices([0, 1, 2, 3], [60, 25, 10, 5])[0]):
            author = rng.choice([v for v in voters_all if v != p["author"]] or voters_all)
            when = min(end, p["created"] + rng.expovariate(1 / (2 * HOUR)))
            body = rng.choice(COMMENTS)
            comment_rows.append({"post_id": p["id"], "author": author, "body": body, "created": when})
            if author == "person":
                action_rows.append({"created": when, "author": "person", "kind": "comment", "target": str(p["id"]),
                                    "detail": json.dumps({"body": body}), "via": "tui"})
    vote_rows.sort(key=lambda v: v["created"])
    comment_rows.sort(key=lambda c: c["created"])

    # ---- submissions, scores, flags, review decisions ----------------------------------------------
    sub_rows, score_rows, flag_rows = [], [], []
    # the person's review: some flagged submissions disqualified (< 0.15), some flags cleared (< 0.33)
    reviewed = [s["id"] for s in sub_plans if any(f["kind"] in ("ignores_teacher", "heldout_gap") for f in s["flags"])]
    decisions = {sid: rng.random() for sid in reviewed}
    if reviewed and not any(d < 0.15 for d in decisions.values()):
        decisions[reviewed[0]] = 0.0
    if len(reviewed) > 1 and not any(0.15 <= d < 0.33 for d in decisions.values()):
        decisions[reviewed[-1]] = 0.2
    for s in sub_plans:
        sub_rows.append({"id": s["id"], "agent": s["agent"], "commit_sha": s["commit_sha"], "path": s["path"],
                         "tree_hash": s["tree_hash"], "fingerprint": s["fingerprint"], "seeds": json.dumps(s["seeds"]),
                         "status": s["status"], "error": s["error"], "sandbox": s["sandbox"], "created": s["created"],
                         "duration_s": s["duration_s"], "disqualified_reason": None, "disqualified_at": None,
                         "teacher_dependence": json.dumps(s["teacher_dependence"]) if s.get("teacher_dependence")
                         else None})
        for score in s["scores"]:
            score_rows.append({"weak_acc": None, "ceiling_acc": None, "acc": None, "pgr": None, "pgr_se": None,
                               "error": None, **score, "submission_id": s["id"],
                               "seeds": json.dumps(score.get("seeds", [])),
                               "per_seed_acc": json.dumps(score.get("per_seed_acc", []))})
        integrity_flags = [f for f in s["flags"] if f["kind"] in ("ignores_teacher", "heldout_gap")]
        decision = decisions.get(s["id"], 1.0)
        review_at = min(end, s["created"] + rng.uniform(0.5, 10) * HOUR)
        for f in s["flags"]:
            row = {"submission_id": s["id"], "kind": f["kind"], "message": f["message"], "scope": f["scope"],
                   "evidence": json.dumps(f.get("evidence", {})), "created": s["created"],
                   "cleared_at": None, "cleared_reason": None}
            if 0.15 <= decision < 0.33 and f in integrity_flags:
                row.update(cleared_at=review_at, cleared_reason=rng.choice(CLEAR))
            flag_rows.append(row)
        if decision < 0.15:
            reason = rng.choice(DISQUALIFY)
            sub_rows[-1].update(disqualified_reason=reason, disqualified_at=review_at)
            action_rows.append({"created": review_at, "author": "person", "kind": "disqualify",
                                "target": str(s["id"]), "detail": json.dumps({"reason": reason}), "via": "tui"})
    first_flag = (db.execute("SELECT max(id) FROM flags").fetchone()[0] or 0) + 1
    for i, f in enumerate(flag_rows):
        f["id"] = first_flag + i
        if f["cleared_at"] is not None:
            action_rows.append({"created": f["cleared_at"], "author": "person", "kind": "clear_flag",
                                "target": str(f["id"]), "detail": json.dumps({"reason": f["cleared_reason"]}),
                                "via": "tui"})
    eval_rows.sort(key=lambda e: e["created"])
    action_rows.sort(key=lambda x: x["created"])
    commands_rows.sort(key=lambda c: c["created"])

    # ---- events of all agents, in time order ---------------------------------------------------------
    event_rows = [{"agent": a.name, "created": t, "kind": kind, "summary": summary,
                   "data": json.dumps(data) if data is not None else None}
                  for a in crew for t, kind, summary, data in a.events]
    event_rows.sort(key=lambda e: e["created"])

    # ---- write ---------------------------------------------------------------------------------------
    def put(table: str, rows: list[dict], batch: int = 5000) -> None:
        if rows:
            with transaction(db):
                db[table].insert_all(rows, batch_size=batch)

    for a in crew:
        agents_store.ensure(db, a.name, "researcher", a.direction, "cpu 0-1")
    put("events", event_rows)
    put("posts", post_rows)
    put("votes", vote_rows)
    put("comments", comment_rows)
    put("evaluations", eval_rows)
    put("submissions", sub_rows)
    put("scores", score_rows)
    put("flags", flag_rows)
    put("commands", commands_rows)
    if db["actions"].exists():
        put("actions", action_rows)

    for a in crew:
        state, reason, heartbeat = "running", None, end - a.rng.uniform(0, 3)
        if a.name == paused:
            state, reason = "paused", "paused by person"
        elif a.name == stuck:
            state, reason, heartbeat = "stuck", STUCK_REASON, a.until
        queries = a.evaluations + a.submissions
        agents_store.update(db, a.name, state=state, reason=reason, step=a.step[:200], pid=None,
                            started=a.started, heartbeat=heartbeat, created=start + a.index * 0.001,
                            restarts=len(a.crashes), tokens_in=a.turns * a.rng.randint(6000, 11000),
                            tokens_out=a.turns * a.rng.randint(250, 450), dollars=round(a.turns * 0.021, 2),
                            experiments=queries, scorer_queries=queries,
                            active_s=round(min(heartbeat, a.until) - a.begin - 3 * len(a.crashes), 1))
        notebook = (f"# {a.name}: notes\nDirection: {a.direction}\n\n" + "\n".join(a.notes[-200:]))
        agents_store.set_notebook(db, a.name, notebook)
        db["agent_memory"].update(a.name, {"updated": min(end, a.until)})

    return {"agents": len(crew), "events": len(event_rows), "posts": len(post_rows), "votes": len(vote_rows),
            "comments": len(comment_rows), "evaluations": len(eval_rows), "submissions": len(sub_rows),
            "scores": len(score_rows), "flags": len(flag_rows), "commands": len(commands_rows),
            "actions": len(action_rows) if db["actions"].exists() else 0,
            "disqualified": sum(1 for s in sub_rows if s["disqualified_at"] is not None),
            "cleared_flags": sum(1 for f in flag_rows if f["cleared_at"] is not None),
            "start": start, "end": end}


def seed_preset(db, name: str = "small", **overrides) -> dict:
    """seed_history with one of PRESETS ("week", "small", "tiny"), any argument overridden."""
    if name not in PRESETS:
        raise KeyError(f"no seeding preset {name!r} (expected one of: {', '.join(PRESETS)})")
    return seed_history(db, **{**PRESETS[name], **overrides})
