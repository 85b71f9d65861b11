"""The offline researcher: a real automated researcher with no language model.

It searches the space of weak-to-strong methods that the scaffold's building blocks span (recipes of
w2s/recipe.py: losses, teacher-confidence filtering and reweighting, probe layers and regularisation,
ensembles, self-training, zero-shot elicitation from the strong model; see recipes.py), through the
same tools as the claude backend:

    orient      read its notebook, the forum and the leaderboard: every posted recipe and its PGR
    choose      the best recipe known (its own or another agent's, fetched from that agent's commit),
                changed along one dimension, its direction's dimensions first; now and then the best
                recipe crossed with the best of another lineage; never a recipe tried before
    run         write recipe.json + method.py, run it on one seed in the sandbox
    evaluate    score that one predictions file (budgeted); a promising result gets a second seed
    commit      commit what ran, post the result (good or bad) with its commit and metrics, note it
    submit      only a recipe whose seeds beat its own best submission by more than the noise

Everything it knows lives in `state()` (JSON), so a restarted agent resumes mid-experiment.
"""
from __future__ import annotations

import json
import math
import re
import time
from datetime import datetime, timezone

from lab.agents.backends import recipes
from lab.agents.turns import AgentFinished, AgentWorld, Message, ToolCall, ToolResult, Turn

STATE_VERSION = 1
NOISE = 0.05            # prior for the spread of one seed's dev PGR (measured: 0.04 to 0.06)
ORIENT_EVERY = 1        # experiments between readings of the newest posts (others' runs are not repeated)
FULL_ORIENT_EVERY = 5   # experiments between readings of the top posts as well
OWN_LINEAGE = 2         # experiments on its direction's own starting recipe before building on the best
EXPLORE_EVERY = 4       # every n-th experiment changes a dimension outside the direction
CROSS_EVERY = 5         # every n-th experiment crosses the best recipe with another lineage's best
CONFIRM_SEEDS = 3       # seeds a promising recipe gets before it may be submitted (the scorer then runs 5)
MAX_FAIL_STREAK = 5     # failed experiments in a row before the researcher gives up
INSIGHT_EVERY = 10      # experiments between posts of what the experiments so far say
WAIT_S = 60             # longest single wait for a budget to free up
RUN_TIMEOUT_S = 240


class ResearcherBackend:
    name = "researcher"

    def __init__(self, cfg, world: AgentWorld, saved: dict | None):
        self.cfg, self.world = cfg, world
        s = saved if saved and saved.get("version") == STATE_VERSION else {}
        self.direction: str = s.get("direction", world.direction)
        self.turns: int = s.get("turns", 0)
        self.experiments: int = s.get("experiments", 0)
        self.known: dict[str, dict] = s.get("known", {})      # recipe key -> what is known of it
        self.tried: list[str] = s.get("tried", [])             # keys this agent ran (or tried to)
        self.current: dict | None = s.get("current")           # the experiment in flight
        self.pending: dict | None = None                       # what the last turn asked for
        self.submissions: list[dict] = s.get("submissions", [])
        self.board_best: float | None = s.get("board_best")
        self.diffs: list[float] = s.get("diffs", [])           # seed-0 minus seed-1 PGR of confirmed runs
        self.effects: dict[str, list[float]] = s.get("effects", {})   # dimension -> child minus parent PGR
        self.focus_pos: int = s.get("focus_pos", 0)
        self.last_orient: int | None = s.get("last_orient")
        self.read_notebook: bool = s.get("read_notebook", False)
        self.eval_times: list[float] = s.get("eval_times", [])
        self.submit_times: list[float] = s.get("submit_times", [])
        self.eval_free_at: float = s.get("eval_free_at", 0.0)
        self.submit_free_at: float = s.get("submit_free_at", 0.0)
        self.fail_streak: int = s.get("fail_streak", 0)
        self.last_error: str = s.get("last_error", "")
        self.fetched: dict[str, dict] = s.get("fetched", {})   # commit -> recipe read from it
        self.notes: list[str] = s.get("notes", [])             # notebook lines waiting to be written
        self.messages: list[dict] = s.get("messages", [])
        self.planned: dict | None = s.get("planned")             # the experiment chosen before a fetch
        self._set_focus()

    # ---- the protocol --------------------------------------------------------------------------
    def step(self, inbox: list[Message]) -> Turn:
        for message in inbox:
            self._hear(message)
        self.turns += 1
        turn = self._next_turn()
        for i, call in enumerate(turn.calls):
            call.id = f"r{self.turns}-{i}"
        return turn

    def observe(self, results: list[ToolResult]) -> None:
        pending, self.pending = self.pending, None
        if not pending:
            return
        handler = getattr(self, f"_after_{pending['action']}")
        handler(pending, results)

    def state(self) -> dict:
        return {"version": STATE_VERSION, "direction": self.direction, "turns": self.turns,
                "experiments": self.experiments, "known": self.known, "tried": self.tried[-2000:],
                "current": self.current, "submissions": self.submissions, "board_best": self.board_best,
                "diffs": self.diffs[-50:], "effects": self.effects, "focus_pos": self.focus_pos,
                "last_orient": self.last_orient, "read_notebook": self.read_notebook,
                "eval_times": self.eval_times[-500:], "submit_times": self.submit_times[-100:],
                "eval_free_at": self.eval_free_at, "submit_free_at": self.submit_free_at,
                "fail_streak": self.fail_streak, "last_error": self.last_error, "fetched": self.fetched,
                "notes": self.notes[-50:], "messages": self.messages[-20:], "planned": self.planned}

    # ---- planning ------------------------------------------------------------------------------
    def _next_turn(self) -> Turn:
        if self.last_orient is None:
            return self._orient(first=not self.read_notebook)
        if self.current:
            return self._continue()
        if self.fail_streak >= MAX_FAIL_STREAK:
            raise AgentFinished(f"{self.fail_streak} experiments in a row failed; the last: {self.last_error}")
        if self.experiments - self.last_orient >= ORIENT_EVERY:
            return self._orient(first=False)
        return self._start_experiment()

    def _turn(self, step: str, calls: list[tuple[str, dict]], action: str, text: str = "", **pending) -> Turn:
        self.pending = {"action": action, **pending}
        return Turn(text=text or step, step=step, calls=[ToolCall("", name, args) for name, args in calls])

    # ---- orienting -----------------------------------------------------------------------------
    def _orient(self, first: bool) -> Turn:
        calls = []
        if first:
            calls.append(("notebook", {"action": "read"}))
        full = first or self.last_orient is None or self.experiments % FULL_ORIENT_EVERY == 0
        if full:
            calls.append(("forum_read", {"order": "top", "limit": 30}))
        calls += [("forum_read", {"order": "new", "limit": 30}), ("leaderboard", {"limit": 50})]
        step = (f"reading notebook, forum and leaderboard before trying {self.focus.label}" if first
                else "reading the newest forum posts and the leaderboard")
        text = f"Direction: {self.direction}" if first else step
        return self._turn(step, calls, "orient", text)

    def _after_orient(self, pending: dict, results: list[ToolResult]) -> None:
        for result in results:
            if result.is_error or not result.data:
                continue
            if result.name == "notebook":
                self.read_notebook = True
            elif result.name in ("forum_read", "forum_search"):
                posts = result.data.get("posts") or ([result.data["post"]] if result.data.get("post") else [])
                for post in posts:
                    self._learn_post(post)
            elif result.name == "leaderboard":
                self._learn_board(result.data.get("leaderboard") or [])
        self.last_orient = self.experiments

    def _learn_post(self, post: dict) -> None:
        recipe = recipes.recipe_of_post(post)
        metrics = post.get("metrics") or {}
        if recipe is None or not isinstance(metrics.get("pgr"), (int, float)):
            return
        seeds = metrics.get("seeds")
        seeds = int(seeds) if isinstance(seeds, (int, float)) and seeds >= 1 else 1
        entry = self._entry(recipe, author=post.get("author"))
        if seeds >= (entry.get("seeds") or 0):
            se = metrics.get("pgr_se")
            entry.update(pgr=float(metrics["pgr"]), seeds=seeds,
                         se=float(se) if isinstance(se, (int, float)) and se > 0 else None,
                         commit=post.get("commit_sha") or entry.get("commit"), post=post.get("id"),
                         author=post.get("author"))

    def _learn_board(self, rows: list[dict]) -> None:
        by_commit = {e.get("commit"): e for e in self.known.values() if e.get("commit")}
        best = None
        for row in rows:
            pgr = row.get("pgr")
            if not isinstance(pgr, (int, float)):
                continue
            best = pgr if best is None else max(best, pgr)
            entry = by_commit.get(row.get("commit"))
            if entry is None and row.get("agent") == "baseline" and row.get("method") in recipes.BASELINE_RECIPES:
                entry = self._entry(recipes.BASELINE_RECIPES[row["method"]], author="baseline")
                entry["commit"] = row.get("commit")
            if entry is not None:
                entry.update(pgr=float(pgr), se=row.get("pgr_se"), seeds=self.cfg.scorer.seeds, scored=True)
        if best is not None:
            self.board_best = best

    def _entry(self, recipe: dict, author: str | None = None) -> dict:
        k = recipes.key(recipe)
        if k not in self.known:
            self.known[k] = {"recipe": recipes.canonical(recipe), "author": author, "pgr": None, "seeds": 0}
        return self.known[k]

    # ---- choosing the next recipe --------------------------------------------------------------
    @property
    def noise(self) -> float:
        """The spread of one seed's dev PGR: measured from confirmations, the prior until there are some."""
        if len(self.diffs) < 3:
            return NOISE
        return min(0.15, max(0.02, math.sqrt(sum(d * d for d in self.diffs) / (2 * len(self.diffs)))))

    def _se(self, entry: dict) -> float:
        if entry.get("se"):
            return float(entry["se"])
        return self.noise / math.sqrt(max(1, entry.get("seeds") or 1))

    def _value(self, entry: dict) -> float:
        """What a recipe is believed to score, a little below its mean where few seeds back it."""
        return entry["pgr"] - 0.5 * self._se(entry)

    def _ranked(self) -> list[dict]:
        scored = [e for e in self.known.values() if isinstance(e.get("pgr"), (int, float))]
        return sorted(scored, key=self._value, reverse=True)

    def _is_tried(self, recipe: dict) -> bool:
        k = recipes.key(recipe)
        return k in self.tried or k in self.known

    def _set_focus(self) -> None:
        self.focus = recipes.focus_for(self.direction, self.world.name)
        # the other dimensions in an order of this agent's own (agents that share a parent then try
        # different things), those that helped before first
        self.others_base = recipes.stable_order([d for d in recipes.DIMENSIONS if d not in self.focus.dims],
                                                self.world.name)

    @property
    def others(self) -> list[str]:
        def mean_effect(dim: str) -> float:
            deltas = self.effects.get(dim) or [0.0]
            return sum(deltas) / len(deltas)
        return sorted(self.others_base, key=lambda d: -mean_effect(d))

    def _choose(self) -> tuple[dict, dict | None, str] | None:
        """(recipe, parent entry, why) for the next experiment, or None when nothing new is left."""
        n = self.experiments
        start = self.focus.start
        if not self._is_tried(start):
            return start, None, f"the starting point of {self.focus.label}"
        ranked = self._ranked()
        own_start = self.known.get(recipes.key(start))
        parents = ranked
        if n < OWN_LINEAGE + 1 and own_start and own_start.get("pgr") is not None:
            parents = [own_start] + [e for e in ranked if e is not own_start]
        if not parents:
            parents = [self._entry(start)]
        if n % CROSS_EVERY == CROSS_EVERY - 1 and len(ranked) > 1:
            best = parents[0]
            for other in ranked[1:6]:
                if other.get("author") == best.get("author") and other.get("author") == self.world.name:
                    continue
                for child in recipes.crossovers(best["recipe"], other["recipe"]):
                    if not self._is_tried(child):
                        return child, best, f"combining with {self._who(other)} (PGR {other['pgr']:+.2f})"
        explore = n % EXPLORE_EVERY == EXPLORE_EVERY - 1
        counts = recipes.setting_counts([e["recipe"] for e in self.known.values()])
        for parent in parents[:5]:
            for name in self._dims(explore):
                dim = recipes.DIMENSIONS[name]
                for child in recipes.neighbours(parent["recipe"], dim, counts[name]):
                    if not self._is_tried(child):
                        if name in self.focus.dims:
                            self.focus_pos += 1
                        return child, parent, f"changing {dim.words}"
        return None

    def _dims(self, explore: bool) -> list[str]:
        focus = list(self.focus.dims)
        i = self.focus_pos % len(focus)
        rotated = focus[i:] + focus[:i]
        return self.others + rotated if explore else rotated + self.others

    def _who(self, entry: dict) -> str:
        author = entry.get("author") or "?"
        commit = entry.get("commit")
        return f"{author}'s {commit[:10]}" if commit else author

    # ---- one experiment ------------------------------------------------------------------------
    def _start_experiment(self) -> Turn:
        planned, self.planned = self.planned, None
        choice = None
        if planned and planned["parent"] in self.known and not self._is_tried(planned["recipe"]):
            choice = planned["recipe"], self.known[planned["parent"]], planned["why"]
        choice = choice or self._choose()
        if choice is None:
            raise AgentFinished("every recipe within reach of the best known ones has been tried")
        recipe, parent, why = choice
        parent_commit = (parent or {}).get("commit")
        if parent and parent.get("author") not in (self.world.name, "baseline", None) and parent_commit \
                and parent_commit not in self.fetched:
            # build on another agent's result from its commit: read the recipe it committed
            self.planned = {"recipe": recipe, "parent": recipes.key(parent["recipe"]), "why": why}
            self.pending = {"action": "fetch", "commit": parent_commit}
            step = f"reading the recipe of {self._who(parent)} (PGR {parent['pgr']:+.2f}) to build on it"
            return Turn(text=step, step=step, calls=[ToolCall("", "shell", {
                "command": f"git show {parent_commit}:recipe.json", "timeout_s": 30})])
        self.experiments += 1
        tag = f"e{self.experiments:03d}"
        self.current = {"tag": tag, "recipe": recipe, "key": recipes.key(recipe), "seed": 0, "pgrs": [],
                        "accs": [], "stage": "run", "why": why, "commit": None,
                        "parent": None if parent is None else {
                            "key": recipes.key(parent["recipe"]), "pgr": parent.get("pgr"),
                            "commit": parent.get("commit"), "author": parent.get("author"),
                            "post": parent.get("post")}}
        self.tried.append(self.current["key"])
        return self._continue()

    def _after_fetch(self, pending: dict, results: list[ToolResult]) -> None:
        commit = pending["commit"]
        result = results[0] if results else None
        recipe = None
        if result is not None and not result.is_error and result.data:
            try:
                recipe = recipes.valid(json.loads(result.data.get("stdout") or ""))
            except ValueError:
                recipe = None
        # what the commit holds is what its author ran; where it holds no recipe, trust the post
        self.fetched[commit] = recipe or {}
        if recipe is None:
            return
        for old_key, entry in list(self.known.items()):
            if entry.get("commit") == commit and old_key != recipes.key(recipe):
                # the post described it differently: file the result under what the commit runs, and
                # plan afresh from there
                del self.known[old_key]
                self.known.setdefault(recipes.key(recipe), {**entry, "recipe": recipe})
                self.planned = None

    def _continue(self) -> Turn:
        c = self.current
        stage = c["stage"]
        desc = recipes.describe(c["recipe"])
        if stage == "run":
            out = self._out(c)
            command = (f"mkdir -p runs && python method.py --data \"${{LAB_DATA:-/data}}\" --out {out} "
                       f"--seed {c['seed']}")
            calls = [("write_file", {"path": "recipe.json", "content": recipes.recipe_json(c["recipe"])}),
                     ("write_file", {"path": "method.py", "content": recipes.METHOD_PY}),
                     ("shell", {"command": command, "timeout_s": RUN_TIMEOUT_S})]
            if c["seed"] == 0:
                step = f"trying {desc} ({c['tag']}, seed 0)"
                text = f"{c['tag']}: {c['why']}. Recipe: {json.dumps(c['recipe'], sort_keys=True)}"
            else:
                n = len(c["pgrs"])
                step = (f"confirming {c['tag']} with seed {c['seed']} (PGR {self._mean(c['pgrs']):+.2f} on "
                        f"{n} seed{'s' if n > 1 else ''} so far)")
                text = step
            return self._turn(step, calls, "run", text)
        if stage == "evaluate":
            wait = self._budget_wait("evaluate")
            if wait:
                return wait
            return self._turn(f"evaluating {c['tag']} seed {c['seed']}",
                              [("evaluate", {"predictions": self._out(c)})], "evaluate")
        if stage == "commit":
            mean = self._mean(c["pgrs"])
            message = (f"{c['tag']}: {desc}\n\ndev PGR {mean:+.4f} over {len(c['pgrs'])} seed(s); "
                       f"{c['why']}\nrecipe: {json.dumps(c['recipe'], sort_keys=True)}")
            return self._turn(f"committing {c['tag']} ({desc})", [("git_commit", {"message": message})], "commit")
        if stage == "revparse":
            return self._turn(f"finding the commit of {c['tag']}",
                              [("shell", {"command": "git rev-parse HEAD", "timeout_s": 30})], "revparse")
        if stage == "post":
            return self._post_result(c)
        if stage == "check":
            return self._turn(f"checking the leaderboard before submitting {c['tag']}",
                              [("leaderboard", {"limit": 50}), ("forum_read", {"order": "new", "limit": 30})],
                              "check")
        if stage == "submit":
            wait = self._budget_wait("submit")
            if wait:
                return wait
            mean = self._mean(c["pgrs"])
            step = (f"submitting {c['commit'][:10]} (dev PGR {mean:+.2f} on {len(c['pgrs'])} seeds, "
                    f"{desc})")
            return self._turn(step, [("submit", {"commit": c["commit"]})], "submit")
        if stage == "post_submission":
            return self._post_submission(c)
        raise AssertionError(f"unknown stage {stage!r}")

    def _out(self, c: dict) -> str:
        return f"runs/{c['tag']}-s{c['seed']}.jsonl"

    @staticmethod
    def _mean(values: list[float]) -> float:
        return sum(values) / len(values) if values else float("nan")

    def _after_run(self, pending: dict, results: list[ToolResult]) -> None:
        c = self.current
        failed = next((r for r in results if r.is_error), None)
        if failed is None:
            c["stage"] = "evaluate"
            return
        self._fail(f"{failed.name} failed: {_first_line(failed)}")

    def _fail(self, why: str) -> None:
        c = self.current
        self.fail_streak += 1
        self.last_error = why
        self.notes.append(f"- {c['tag']} {recipes.describe(c['recipe'])}: FAILED ({why[:200]})")
        self._entry(c["recipe"], author=self.world.name)["failed"] = why[:200]
        if c["pgrs"]:   # a later seed failed: keep what the first ones showed
            c["stage"] = "commit"
            return
        self.current = None

    def _after_evaluate(self, pending: dict, results: list[ToolResult]) -> None:
        c = self.current
        result = results[0] if results else None
        if result is None:
            return
        if result.is_error:
            kind = (result.data or {}).get("kind")
            if kind == "BudgetExceeded":   # wait at least a little, whatever clock the scorer keeps
                self.eval_free_at = max(_free_at(result, time.time() + WAIT_S), time.time() + 10)
                return   # the stage stays: evaluate once the budget frees up
            self._fail(f"evaluate failed: {_first_line(result)}")
            return
        self.eval_times.append(time.time())
        self.fail_streak = 0
        data = result.data or {}
        c["pgrs"].append(float(data["pgr"]))
        c["accs"].append(float(data["acc"]))
        if len(c["pgrs"]) == 2:
            self.diffs.append(c["pgrs"][0] - c["pgrs"][1])
        if len(c["pgrs"]) < CONFIRM_SEEDS and self._promising(c) and self._evals_left() >= 2:
            c["seed"], c["stage"] = len(c["pgrs"]), "run"
            return
        c["stage"] = "commit"

    def _promising(self, c: dict) -> bool:
        """Worth another seed: the seeds so far are within reach of the best recipe known."""
        ranked = [e for e in self._ranked() if recipes.key(e["recipe"]) != c["key"]]
        if not ranked:
            return True
        n = len(c["pgrs"])
        return self._mean(c["pgrs"]) >= self._value(ranked[0]) - 0.5 * self.noise / math.sqrt(n)

    def _after_commit(self, pending: dict, results: list[ToolResult]) -> None:
        c = self.current
        result = results[0] if results else None
        if result is not None and not result.is_error and result.data and result.data.get("commit"):
            c["commit"] = result.data["commit"]
            c["stage"] = "post"
        elif result is not None and "nothing to commit" in result.output:
            c["stage"] = "revparse"     # the worktree already holds exactly this recipe: HEAD is its commit
        else:
            self.notes.append(f"- {c['tag']}: commit failed ({_first_line(result) if result else 'no result'})")
            c["stage"] = "post"

    def _after_revparse(self, pending: dict, results: list[ToolResult]) -> None:
        c = self.current
        result = results[0] if results else None
        sha = ((result.data or {}).get("stdout") or "").strip() if result and not result.is_error else ""
        c["commit"] = sha if re.fullmatch(r"[0-9a-f]{40}", sha) else None
        c["stage"] = "post"

    def _record(self, c: dict) -> dict:
        """Write the experiment into what is known; returns its entry."""
        entry = self._entry(c["recipe"], author=self.world.name)
        if not entry.get("scored") and len(c["pgrs"]) >= (entry.get("seeds") or 0):
            entry.update(pgr=self._mean(c["pgrs"]), seeds=len(c["pgrs"]), se=None, author=self.world.name,
                         commit=c["commit"] or entry.get("commit"))
        entry.pop("failed", None)
        parent = c.get("parent")
        if parent and parent.get("pgr") is not None:
            child = recipes.canonical(c["recipe"])
            parent_recipe = self.known.get(parent["key"], {}).get("recipe")
            if parent_recipe is not None:
                for dim in recipes.changed_dims(parent_recipe, child):
                    self.effects.setdefault(dim, []).append(round(self._mean(c["pgrs"]) - parent["pgr"], 4))
        return entry

    def _post_result(self, c: dict) -> Turn:
        self._record(c)
        mean, n = self._mean(c["pgrs"]), len(c["pgrs"])
        acc = self._mean(c["accs"])
        desc = recipes.describe(c["recipe"])
        parent = c.get("parent")
        lines = [f"Recipe: {desc}.", f"Why: {c['why']}."]
        verdict = ""
        if parent and parent.get("pgr") is not None:
            delta = mean - parent["pgr"]
            who = parent.get("author") or "?"
            src = f"{who}'s {parent['commit'][:10]}" if parent.get("commit") else who
            verdict = "better than" if delta > self.noise / math.sqrt(n) else (
                "worse than" if delta < -self.noise / math.sqrt(n) else "within noise of")
            lines.append(f"Builds on {src} (PGR {parent['pgr']:+.3f}): {verdict} it by {delta:+.3f}.")
        spread = f" (seeds: {', '.join(f'{p:+.3f}' for p in c['pgrs'])})" if n > 1 else ""
        lines.append(f"Dev accuracy {acc:.4f}, PGR {mean:+.4f} over {n} seed(s){spread}; one seed's noise is "
                     f"about ±{self.noise:.2f}.")
        lines.append(f"Run it: python method.py --data /data --out runs/x.jsonl --seed 0 (commit "
                     f"{(c['commit'] or 'uncommitted')[:10]}).")
        lines.append(f"recipe: {json.dumps(recipes.canonical(c['recipe']), sort_keys=True)}")
        metrics = {"pgr": round(mean, 4), "acc": round(acc, 4), "seeds": n, "recipe": recipes.canonical(c["recipe"])}
        if n > 1:
            metrics["pgr_se"] = round(self.noise / math.sqrt(n), 4)
        if parent and parent.get("commit"):
            metrics["parent_commit"] = parent["commit"]
        args = {"kind": "result", "title": f"{desc}: dev PGR {mean:+.3f} ({n} seed{'s' if n > 1 else ''})",
                "body": "\n".join(lines), "metrics": metrics}
        if c["commit"]:
            args["commit"] = c["commit"]
        note = f"- {c['tag']} {desc}: PGR {mean:+.3f} ({n} seed{'s' if n > 1 else ''})" + (
            f", {verdict} parent {parent['pgr']:+.3f}" if verdict else "") + (
            f" [{c['commit'][:10]}]" if c["commit"] else "")
        calls = [("forum_post", args), ("notebook", {"action": "append", "text": self._notebook_text(note)})]
        if parent and parent.get("post") and parent.get("author") not in (self.world.name, None) and \
                verdict == "better than":
            calls.append(("forum_vote", {"post_id": int(parent["post"]), "value": 1}))
        if self.experiments % INSIGHT_EVERY == 0 and self.effects:
            calls.append(("forum_post", {"kind": "insight", "title": f"{self.world.name}: what "
                                         f"{self.experiments} experiments on {self.focus.label} say",
                                         "body": self._lessons()}))
        return self._turn(f"posting {c['tag']}: {desc}, dev PGR {mean:+.2f}", calls, "post")

    def _notebook_text(self, line: str) -> str:
        lines, self.notes = self.notes + [line], []
        if self.experiments % 5 == 0:
            lines.append(self._lessons())
        return "\n".join(lines)

    def _lessons(self) -> str:
        """What the experiments so far say about each dimension, and the best recipe known."""
        parts = []
        for dim, deltas in sorted(self.effects.items(), key=lambda kv: -sum(kv[1]) / len(kv[1])):
            mean = sum(deltas) / len(deltas)
            parts.append(f"{dim} {'helped' if mean > 0 else 'hurt'} ({mean:+.3f} over {len(deltas)})")
        ranked = self._ranked()
        best = (f" Best known: {recipes.describe(ranked[0]['recipe'])} at {ranked[0]['pgr']:+.3f} "
                f"({ranked[0].get('seeds')} seeds, {self._who(ranked[0])}).") if ranked else ""
        return f"Lessons after {self.experiments} experiments: {'; '.join(parts) or 'none yet'}.{best}"

    def _after_post(self, pending: dict, results: list[ToolResult]) -> None:
        c = self.current
        if self._should_submit(c):
            c["stage"] = "check"        # first a fresh look at the leaderboard: others may have got there
        else:
            self.current = None

    def _after_check(self, pending: dict, results: list[ToolResult]) -> None:
        self._after_orient({"action": "orient"}, results)
        c = self.current
        c["stage"] = "submit" if self._should_submit(c) else None
        if c["stage"] is None:
            self.notes.append(f"- not submitting {c['tag']}: the leaderboard moved past it")
            self.current = None

    def _should_submit(self, c: dict) -> bool:
        """Submit only what beats this agent's best submission by more than the noise (and is not far
        below the lab's best); one seed is never enough."""
        if not c["commit"] or len(c["pgrs"]) < 2 or self._submits_left() < 1:
            return False
        entry = self.known.get(c["key"], {})
        if entry.get("scored"):
            return False
        mean, se = self._mean(c["pgrs"]), self.noise / math.sqrt(len(c["pgrs"]))
        return beats(mean, se, self.own_best(), self.board_best)

    def own_best(self) -> dict | None:
        scored = [s for s in self.submissions if isinstance(s.get("pgr"), (int, float))]
        return max(scored, key=lambda s: s["pgr"]) if scored else None

    def _after_submit(self, pending: dict, results: list[ToolResult]) -> None:
        c = self.current
        result = results[0] if results else None
        if result is None:
            return
        if result.is_error:
            if (result.data or {}).get("kind") == "BudgetExceeded":
                self.submit_free_at = max(_free_at(result, time.time() + 600), time.time() + 60)
            self.notes.append(f"- submitting {c['commit'][:10]} failed: {_first_line(result)[:200]}")
            self.current = None
            return
        self.submit_times.append(time.time())
        data = result.data or {}
        sub = {"submission": data.get("submission"), "commit": c["commit"], "key": c["key"],
               "pgr": data.get("pgr"), "se": data.get("pgr_se"), "acc": data.get("acc"),
               "seeds": data.get("seeds")}
        self.submissions.append(sub)
        entry = self._entry(c["recipe"], author=self.world.name)
        if isinstance(sub["pgr"], (int, float)):
            entry.update(pgr=float(sub["pgr"]), se=sub["se"], seeds=len(sub["seeds"] or []) or self.cfg.scorer.seeds,
                         scored=True, commit=c["commit"])
            self.board_best = max(self.board_best if self.board_best is not None else -1e9, float(sub["pgr"]))
        c["submitted"] = sub
        c["stage"] = "post_submission"

    def _post_submission(self, c: dict) -> Turn:
        sub = c["submitted"]
        desc = recipes.describe(c["recipe"])
        seeds = sub.get("seeds") or []
        n = len(seeds) if isinstance(seeds, list) else seeds
        title = f"submitted {c['commit'][:10]} ({desc}): dev PGR {sub['pgr']:+.3f} ± {sub['se']:.3f} over {n} seeds"
        body = (f"The scorer re-ran {c['tag']} ({desc}) from commit {c['commit'][:10]} over seeds {seeds}: dev PGR "
                f"{sub['pgr']:+.4f} ± {sub['se']:.4f}, accuracy {sub['acc']:.4f} (my own {len(c['pgrs'])} seeds: "
                f"{self._mean(c['pgrs']):+.4f}).\nrecipe: {json.dumps(recipes.canonical(c['recipe']), sort_keys=True)}")
        metrics = {"pgr": sub["pgr"], "pgr_se": sub["se"], "acc": sub["acc"], "seeds": n,
                   "submission": sub["submission"], "recipe": recipes.canonical(c["recipe"])}
        note = f"- submitted {c['commit'][:10]} ({desc}): {sub['pgr']:+.3f} ± {sub['se']:.3f} (#{sub['submission']})"
        return self._turn(f"posting submission {sub['submission']}: dev PGR {sub['pgr']:+.2f}",
                          [("forum_post", {"kind": "result", "title": title, "body": body, "commit": c["commit"],
                                           "metrics": metrics}),
                           ("notebook", {"action": "append", "text": self._notebook_text(note)})],
                          "post_submission")

    def _after_post_submission(self, pending: dict, results: list[ToolResult]) -> None:
        self.current = None

    # ---- budgets -------------------------------------------------------------------------------
    def _window(self) -> float:
        return self.cfg.scorer.budget_window_hours * 3600

    def _evals_left(self) -> int:
        now = time.time()
        return self.cfg.scorer.evaluate_budget - sum(1 for t in self.eval_times if t > now - self._window())

    def _submits_left(self) -> int:
        now = time.time()
        if now < self.submit_free_at:
            return 0
        return self.cfg.scorer.submit_budget - sum(1 for t in self.submit_times if t > now - self._window())

    def _budget_wait(self, what: str) -> Turn | None:
        """A turn that waits (a short sleep in the sandbox) while a budget is spent, else None."""
        now = time.time()
        if what == "evaluate":
            free = self.eval_free_at
            if self._evals_left() <= 0 and self.eval_times:
                used = sorted(t for t in self.eval_times if t > now - self._window())
                free = max(free, used[0] + self._window()) if used else free
        else:
            free = self.submit_free_at
        if free <= now:
            return None
        seconds = int(min(WAIT_S, max(1, free - now)))
        at = datetime.fromtimestamp(free, timezone.utc).strftime("%H:%M:%S")
        step = f"waiting for the {what} budget (free again at {at} UTC)"
        return self._turn(step, [("shell", {"command": f"sleep {seconds}", "timeout_s": seconds + 30})], "wait")

    def _after_wait(self, pending: dict, results: list[ToolResult]) -> None:
        pass

    # ---- the person ----------------------------------------------------------------------------
    def _hear(self, message: Message) -> None:
        self.messages.append({"author": message.author, "text": message.text})
        match = re.search(r"direction\s*[:=]\s*(.+)", message.text, re.I | re.S)
        if match:
            self.direction = match.group(1).strip()
            self._set_focus()
            self.notes.append(f"- new direction from {message.author}: {self.direction} (focus: {self.focus.label})")
        else:
            self.notes.append(f"- message from {message.author}: {message.text.strip()[:300]}")


def beats(mean: float, se: float, own_best: dict | None, board_best: float | None) -> bool:
    """Whether a candidate (mean dev PGR over a few seeds, its standard error) is worth a submission:
    above this agent's best submission by more than the combined noise, and above the lab's best by
    more than its own noise (anything less would only cost the scorer time)."""
    if own_best is not None:
        margin = math.sqrt(se ** 2 + float(own_best.get("se") or 0.0) ** 2)
        if mean <= float(own_best["pgr"]) + margin:
            return False
    if board_best is not None and mean <= board_best + se:
        return False
    return True


def _first_line(result: ToolResult) -> str:
    text = (result.data or {}).get("error") or result.output or ""
    lines = [line for line in text.strip().splitlines() if line.strip() and not line.startswith("[")]
    return (lines[-1] if result.name == "shell" and lines else text.strip().splitlines()[0] if text.strip() else "")


def _free_at(result: ToolResult, fallback: float) -> float:
    """When a budget frees up, from BudgetExceeded's "the next one is allowed at ... UTC"."""
    match = re.search(r"allowed at (\d{4}-\d\d-\d\d \d\d:\d\d:\d\d) UTC", result.output or "")
    if not match:
        return fallback
    return datetime.strptime(match.group(1), "%Y-%m-%d %H:%M:%S").replace(tzinfo=timezone.utc).timestamp()
