"""The offline researcher: recipes that run as real methods, and a backend that plans, adapts, reads
the forum, submits sparingly, resumes (from older saved states too) and heeds what the scorer flagged;
last, a short run through the real tools and scorer."""
from __future__ import annotations

import json
import math
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import make_lab, requires_bwrap
from lab import config
from lab.agents.backends import recipes
from lab.agents.backends.researcher import CONFIRM_SEEDS, MAX_FAIL_STREAK, STATE_VERSION, ResearcherBackend, beats
from lab.agents.backends.researcher import knowledge
from lab.agents.backends.researcher.choice import choose
from lab.agents.backends.researcher.context import Context
from lab.agents.backends.researcher.forum import read_flags
from lab.agents.backends.researcher.state import ResearcherState
from lab.agents.turns import AgentFinished, AgentWorld, Message, ToolResult, Turn
from lab.config import DIRECTIONS
from lab.scaffold import TEMPLATE
from lab.task.predictions import read_predictions


# ---- recipes as methods ------------------------------------------------------------------------
def method_folder(tmp_path: Path, recipe: dict) -> Path:
    folder = tmp_path / "repo"
    shutil.copytree(TEMPLATE, folder, ignore=shutil.ignore_patterns("__pycache__"))
    (folder / "recipe.json").write_text(recipes.recipe_json(recipe))
    (folder / "method.py").write_text(recipes.METHOD_PY)
    return folder


def run_method(folder: Path, data: Path, out: Path, seed: int = 0) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(folder / "method.py"), "--data", str(data), "--out", str(out),
                           "--seed", str(seed)], capture_output=True, text=True, timeout=300, cwd=folder)


def test_recipe_runs_as_a_method_and_writes_valid_deterministic_predictions(lab_dir, tmp_path):
    data = lab_dir / ".lab" / "data" / "rotten_tomatoes"
    test_ids = [json.loads(line)["id"] for line in (data / "test.jsonl").read_text().splitlines() if line.strip()]
    recipe = {"layers": [2, 3, 4, 5, 6], "loss": "sce", "sce_beta": 0.3, "keep": 0.8, "weight_power": 1.0,
              "self_train_rounds": 1, "transductive_rounds": 1, "ensemble": 2, "threshold": "prior", "pc_weight": 0.1,
              "epochs": 5, "l2": 0.1}
    folder = method_folder(tmp_path, recipe)
    first, second = tmp_path / "a.jsonl", tmp_path / "b.jsonl"
    for out in (first, second):
        done = run_method(folder, data, out)
        assert done.returncode == 0, done.stderr
    labels = read_predictions(first, test_ids, max_bytes=4 << 20)
    assert set(labels) == set(test_ids) and set(labels.values()) <= {0, 1}
    assert first.read_text() == second.read_text()      # deterministic for a seed


def test_elicitation_recipe_loads_the_strong_model_and_runs(lab_dir, tmp_path):
    data = lab_dir / ".lab" / "data" / "rotten_tomatoes"
    recipe = {"elicit_weight": 0.3, "elicit_layers": [3, 4, 5, 6], "elicit_descriptions": "mixed", "prior": "soft",
              "elicit_combine": "logit", "transductive_rounds": 1, "transductive_elicit": 0.3}
    folder = method_folder(tmp_path, recipe)
    out = tmp_path / "p.jsonl"
    done = run_method(folder, data, out, seed=3)
    assert done.returncode == 0, done.stderr
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert rows and all(0.0 <= r["p1"] <= 1.0 and r["label"] == int(r["p1"] > 0.5) for r in rows)


def test_a_bad_recipe_fails_with_a_clear_message(lab_dir, tmp_path):
    folder = method_folder(tmp_path, {})
    (folder / "recipe.json").write_text(json.dumps({"loss": "hinge", "colour": "blue"}))
    done = run_method(folder, lab_dir / ".lab" / "data" / "rotten_tomatoes", tmp_path / "p.jsonl")
    assert done.returncode != 0 and "unknown recipe keys ['colour']" in done.stderr


def test_canonical_forms_ignore_what_does_not_matter():
    assert recipes.key({"sce_beta": 0.9}) == recipes.key({})          # a parameter of a loss not in use
    assert recipes.key({"elicit_layers": [5, 6]}) == recipes.key({})  # elicitation is off
    assert recipes.key({"layers": [6, 5, 4]}) == recipes.key({})      # the default layers, in another order
    assert recipes.key({"elicit_weight": 0.3}) != recipes.key({"elicit_weight": 0.3, "elicit_layers": [5, 6]})
    assert recipes.describe({"loss": "gce", "gce_q": 0.3, "elicit_weight": 0.3}).startswith("gce q=0.3, elicit 0.3")


def test_setting_counts_are_each_dimensions_settings_among_the_known_recipes():
    known = [{}, {"keep": 0.8}, {"keep": 0.8, "loss": "gce", "gce_q": 0.3}, {"elicit_weight": 0.5, "epochs": 5}]
    counts = recipes.setting_counts(recipes.key(r) for r in known)
    assert counts["keep"] == {0: 2, 2: 2}                       # keep 1.0 (the default) twice, 0.8 twice
    assert counts["robust_loss"] == {0: 3, 7: 1} and counts["confidence_loss"] == {0: 3}   # gce: no confidence loss
    assert counts["elicit"] == {0: 3, 6: 1} and counts["epochs"] == {1: 1, 2: 3}   # 10 epochs by default
    for name, dim in recipes.DIMENSIONS.items():
        expected: dict[int, int] = {}
        for r in known:
            i = recipes.setting_of(r, dim)
            if i is not None:
                expected[i] = expected.get(i, 0) + 1
        assert counts[name] == expected


# ---- the backend against results shaped as the tools return them ---------------------------------
def make_cfg(**scorer):
    cfg = config.parse({}, root=Path("."))
    if scorer:
        cfg = cfg.model_copy(update={"scorer": cfg.scorer.model_copy(update=scorer)})
    return cfg


def world(direction: str, name: str = "agent-1") -> AgentWorld:
    return AgentWorld(name=name, direction=direction, readme="", tools=[], notebook=lambda: "")


class Lab:
    """Answers tool calls with results in the shapes of lab.agents.tools (a world in miniature: a forum,
    a leaderboard, commits), and a PGR for each recipe from `score` (deterministic)."""

    def __init__(self, score=lambda recipe, seed: 0.2, posts=(), board=(), fail_shell=False, budget_after=None,
                 flags=lambda recipe: (), scoring_steps=0, scorer_down=0, lab_faults=(), score_b=None):
        self.score, self.posts, self.board = score, list(posts), list(board)
        self.score_b = score_b or score      # the PGR a recipe's seed gets on the confirmation half (part "b")
        self.fail_shell, self.budget_after, self.flags = fail_shell, budget_after, flags
        self.files, self.commits, self.calls, self.evaluations, self.submitted = {}, {}, [], 0, []
        self.runs = 0
        self.notebook = ""
        # the scorer's queue: a submission is scored `scoring_steps` agent steps after it is queued, and the
        # agent then finds a note from the scorer in its inbox; the scorer answers no call `scorer_down` times
        self.scoring_steps, self.scorer_down = scoring_steps, scorer_down
        self.requests: dict[int, dict] = {}
        self.inbox: list[Message] = []
        self.lab_faults = list(lab_faults)     # kinds of the lab's own failure the next `run`s meet, in order

    def tick(self) -> None:
        """An agent step passes: requests being scored get closer to done."""
        for rid, request in self.requests.items():
            if request["steps_left"] > 0:
                request["steps_left"] -= 1
                if request["steps_left"] == 0:
                    self.inbox.append(Message("scorer", f"request {rid} is done"))

    def take_inbox(self) -> list[Message]:
        inbox, self.inbox = self.inbox, []
        return inbox

    def down(self, call):
        if self.scorer_down > 0:
            self.scorer_down -= 1
            return self.error(call, "the scorer at http://127.0.0.1:1 did not answer /evaluate (URLError: "
                                    "Connection refused)", kind="ScorerUnavailable")
        return None

    def ok(self, call, output, data):
        return ToolResult(call.id, call.name, output, data=data)

    def error(self, call, message, kind="ToolError"):
        return ToolResult(call.id, call.name, f"error: {message}", is_error=True, data={"error": message, "kind": kind})

    def answer(self, turn: Turn) -> list[ToolResult]:
        return [self.execute(call) for call in turn.calls]

    def execute(self, call):
        self.calls.append(call)
        a = call.arguments
        if call.name == "write_file":
            self.files[a["path"]] = a["content"]
            return self.ok(call, "wrote", {})
        if call.name == "shell":
            command = a["command"]
            if "method.py" in command:
                if self.fail_shell:
                    return self.error(call, "[exit 1, 2.1 s]\n\n[stderr]\nTraceback ...\nValueError: boom")
                out = command.split("--out ")[1].split()[0]
                self.files[out] = json.dumps({"recipe": json.loads(self.files["recipe.json"]),
                                              "seed": int(command.split("--seed ")[1].split()[0])})
                return self.ok(call, "[exit 0, 2.0 s]", {"returncode": 0, "duration_s": 2.0, "stdout": ""})
            if command.startswith("git show"):
                sha = command.split()[2].split(":")[0]
                if sha not in self.commits:
                    return self.error(call, f"[exit 128, 0.1 s]\nfatal: invalid object name '{sha}'")
                return self.ok(call, self.commits[sha], {"returncode": 0, "duration_s": 0.1,
                                                         "stdout": self.commits[sha]})
            if command.startswith("sleep"):
                return self.ok(call, "[exit 0]", {"returncode": 0, "duration_s": 1.0, "stdout": ""})
            if command.startswith("git rev-parse"):
                sha = list(self.commits)[-1]
                return self.ok(call, sha, {"returncode": 0, "duration_s": 0.1, "stdout": sha + "\n"})
            return self.error(call, f"[exit 127]\nunknown command {command}")
        if call.name == "run":
            if self.lab_faults:
                kind = self.lab_faults.pop(0)
                return self.error(call, f"run {self.runs + 1} of abc method.py seed 0 failed: the lab's own "
                                        f"failure ({kind})", kind=kind)
            if self.fail_shell:
                return self.error(call, "run 1 of abc method.py seed 0 failed on node local: exited with code 1: "
                                        "ValueError: boom")
            sha = list(self.commits)[-1] if a.get("commit", "HEAD") == "HEAD" else a["commit"]
            self.runs += 1
            out = f"runs/run-{self.runs}/predictions.jsonl"
            self.files[out] = json.dumps({"recipe": json.loads(self.commits[sha]), "seed": a.get("seed", 0)})
            return self.ok(call, f"run {self.runs} finished", {"run": self.runs, "state": "done", "commit_sha": sha,
                                                                 "seed": a.get("seed", 0), "predictions": out})
        refused = self.down(call) if call.name in ("evaluate", "submit", "submission") else None
        if refused:
            return refused
        if call.name == "evaluate":
            if self.budget_after is not None and self.evaluations >= self.budget_after:
                return self.error(call, "agent-1 has used its 3 evaluations per 1 h; the next one is allowed at "
                                        "2000-01-01 00:00:00 UTC", kind="BudgetExceeded")
            self.evaluations += 1
            run = json.loads(self.files[a["predictions"]])
            pgr = (self.score_b if a.get("part") == "b" else self.score)(run["recipe"], run["seed"])
            return self.ok(call, f"PGR {pgr}", {"dataset": "rotten_tomatoes", "acc": 0.66 + 0.1 * pgr, "pgr": pgr,
                                                "weak_acc": 0.66, "ceiling_acc": 0.76})
        if call.name == "git_commit":
            content = self.files.get("recipe.json")
            if self.commits and list(self.commits.values())[-1] == content:
                return self.error(call, "nothing to commit: the worktree has no changes since the last commit")
            sha = f"{len(self.commits) + 1:040x}"
            self.commits[sha] = content
            return self.ok(call, f"committed {sha}", {"commit": sha})
        if call.name == "forum_post":
            post = {"id": len(self.posts) + 1, "author": "agent-1", "kind": a["kind"], "title": a["title"],
                    "body": a["body"], "commit_sha": a.get("commit"), "metrics": a.get("metrics") or {},
                    "created": 0.0, "score": 0, "comments": 0}
            self.posts.append(post)
            return self.ok(call, f"posted #{post['id']}", {"post_id": post["id"]})
        if call.name == "forum_vote":
            return self.ok(call, "voted", {})
        if call.name == "forum_read":
            return self.ok(call, "posts", {"posts": list(reversed(self.posts))[: a.get("limit", 10)]})
        if call.name == "leaderboard":
            return self.ok(call, "board", {"leaderboard": self.board})
        if call.name == "notebook":
            if a["action"] == "append":
                self.notebook += "\n" + a["text"]
                return self.ok(call, "notebook appended", {})
            return self.ok(call, self.notebook, {"notebook": self.notebook})
        if call.name == "submit":
            recipe = json.loads(self.commits[a["commit"]])
            pgr = sum(self.score(recipe, s) for s in range(5)) / 5
            self.submitted.append(a["commit"])
            data = {"submission": len(self.submitted), "commit": a["commit"], "dataset": "rotten_tomatoes",
                    "acc": 0.7, "pgr": pgr, "pgr_se": 0.01, "seeds": [0, 1, 2, 3, 4]}
            flags = list(self.flags(recipe))
            if flags:      # as the scorer reports them: flags computed on the dev task, the teacher dependence
                data["flags"] = flags
                data["teacher_dependence"] = {"pgr": pgr, "counterfactual_pgr": pgr - 0.02, "difference": 0.02,
                                              "difference_se": 0.03, "seeds": [0, 1]}
            rid = len(self.requests) + 1
            self.requests[rid] = {"result": data, "steps_left": self.scoring_steps}
            if not self.scoring_steps:
                self.inbox.append(Message("scorer", f"request {rid} is done"))
            return self.ok(call, f"request {rid} is queued", {"request": rid, "state": "queued", "ahead": 0,
                                                              "commit_sha": a["commit"], "path": "method.py"})
        if call.name == "submission":
            request = self.requests.get(a["request"])
            if request is None:
                return self.error(call, f"no queued submission with request id {a['request']}", kind="NotFound")
            if request["steps_left"] > 0:
                return self.ok(call, "running", {"request": a["request"], "state": "running"})
            return self.ok(call, "done", {"request": a["request"], "state": "done", **request["result"]})
        return self.error(call, f"unknown tool {call.name!r}")


def drive(backend, lab: Lab, turns: int, inbox=()) -> list[Turn]:
    out = []
    for i in range(turns):
        lab.tick()
        turn = backend.step((list(inbox) if i == 0 else []) + lab.take_inbox())
        out.append(turn)
        backend.observe(lab.answer(turn))
    return out


def tried(lab: Lab) -> list[dict]:
    """The recipes the researcher ran (seed 0 runs), in order."""
    runs = []
    for call in lab.calls:
        if call.name == "write_file" and call.arguments["path"] == "recipe.json":
            runs.append(json.loads(call.arguments["content"]))
    unique = []
    for r in runs:
        if not unique or unique[-1] != r:
            unique.append(r)
    return unique


def test_first_turn_orients_then_directions_lead_to_different_experiments():
    first_recipes = {}
    for direction in (DIRECTIONS[0], DIRECTIONS[2], DIRECTIONS[5]):
        lab = Lab()
        backend = ResearcherBackend(make_cfg(), world(direction), None)
        turns = drive(backend, lab, 3)
        assert [c.name for c in turns[0].calls] == ["notebook", "forum_read", "forum_read", "leaderboard"]
        # the recipe committed, then run once through the lab's scheduler
        assert turns[1].step.startswith("trying ") and [c.name for c in turns[1].calls][-2:] == ["git_commit", "run"]
        assert lab.files["method.py"] == recipes.METHOD_PY
        first_recipes[direction] = json.loads(lab.files["recipe.json"])
    assert len({json.dumps(r, sort_keys=True) for r in first_recipes.values()}) == 3
    assert first_recipes[DIRECTIONS[2]].get("elicit_weight")      # elicitation starts by eliciting
    assert first_recipes[DIRECTIONS[0]].get("keep")               # reweighting starts by filtering


def test_elicitation_starts_from_class_descriptions_that_presume_no_domain():
    """The held-out texts are not reviews: a recipe's zero-shot guess compares texts with descriptions of any
    text's sentiment unless it names others, and every agent can reach the review ones as a setting."""
    module = recipes.recipe_module()
    general = module.DESCRIPTIONS["general"]
    assert not re.search(r"review|film|movie|actor|plot", " ".join(general[0] + general[1]), re.I)
    assert len(general[0]) == len(general[1])
    assert module.DEFAULTS["elicit_descriptions"] == "general"
    assert recipes.focus_for(DIRECTIONS[2]).start == {"elicit_weight": 0.5, "elicit_combine": "logit"}
    assert {"elicit_descriptions": "reviews"} in recipes.DIMENSIONS["descriptions"].settings
    assert recipes.describe({"elicit_weight": 0.3}).startswith("elicit 0.3,")
    assert recipes.describe({"elicit_weight": 0.3, "elicit_descriptions": "reviews"}).startswith("elicit 0.3 (reviews)")


def test_the_researcher_never_tunes_the_zero_shot_prompt_on_the_dev_score():
    """Descriptions and the layers they are read at, chosen by the dev score, fit the dev set: no direction searches
    them, and a crossover with a recipe that tuned them keeps the parent's prompt."""
    assert {"descriptions", "elicit_layers"} == set(recipes.DIMENSIONS) - set(recipes.SEARCHED)
    for direction in [*DIRECTIONS, "prompts and zero-shot elicitation", "anything at all"]:
        assert not {"descriptions", "elicit_layers"} & set(recipes.focus_for(direction, "agent-4").dims)
    parent = {"elicit_weight": 0.5, "elicit_combine": "logit"}
    tuned = {"elicit_weight": 0.5, "elicit_combine": "logit", "elicit_layers": [2, 3, 4, 5, 6],
             "elicit_descriptions": "reviews", "loss": "gce"}
    children = recipes.crossovers(parent, tuned)
    assert children and all(recipes.recipe_module().complete(c)["elicit_layers"] == [6] and
                            recipes.recipe_module().complete(c)["elicit_descriptions"] == "general" for c in children)
    assert {"loss": "gce", "elicit_weight": 0.5, "elicit_combine": "logit"} in children


def test_free_text_direction_maps_keywords_to_dimensions():
    assert recipes.focus_for("try symmetric losses, they are robust to noise").dims[0] == "robust_loss"
    assert recipes.focus_for("ask the model zero-shot").dims[0] == "elicit"
    unknown = recipes.focus_for("something nobody planned", "agent-4")
    assert set(unknown.dims) == set(recipes.SEARCHED) and unknown.label == "free exploration"


def test_a_full_experiment_commits_posts_and_keeps_the_notebook():
    lab = Lab(score=lambda recipe, seed: 0.3 if recipe.get("keep") else 0.1)
    backend = ResearcherBackend(make_cfg(), world(DIRECTIONS[0]), None)
    steps = [t.step for t in drive(backend, lab, 10)]
    names = [c.name for c in lab.calls]
    assert names.index("git_commit") < names.index("run") < names.index("evaluate") < names.index("forum_post")
    post = lab.posts[0]
    assert post["commit_sha"] == list(lab.commits)[0] and post["metrics"]["recipe"] == {"keep": 0.7}
    assert post["metrics"]["seeds"] >= 1 and "pgr" in post["metrics"] and "recipe: {" in post["body"]
    assert "keep 0.7" in lab.notebook and "PGR" in lab.notebook
    assert any(s.startswith("evaluating e001") for s in steps) and any(s.startswith("posting e001") for s in steps)


def test_failures_and_spent_budgets_change_course_instead_of_repeating():
    lab = Lab(fail_shell=True)
    backend = ResearcherBackend(make_cfg(), world(DIRECTIONS[1]), None)
    with pytest.raises(AgentFinished, match=f"{MAX_FAIL_STREAK} experiments in a row failed.*boom"):
        drive(backend, lab, 60)
    runs = tried(lab)
    assert len(runs) == MAX_FAIL_STREAK and len({json.dumps(r, sort_keys=True) for r in runs}) == len(runs)
    assert all("FAILED" in note and "boom" in note for note in backend.ctx.state.notes[-MAX_FAIL_STREAK:])

    lab = Lab(budget_after=1)
    backend = ResearcherBackend(make_cfg(), world(DIRECTIONS[1]), None)
    turns = drive(backend, lab, 14)
    evaluate_turns = [t for t in turns if t.calls and t.calls[0].name == "evaluate"]
    assert len(evaluate_turns) >= 2
    after_refusal = turns[turns.index(evaluate_turns[1]) + 1]
    assert after_refusal.step.startswith("waiting for the evaluate budget")
    assert after_refusal.calls[0].name == "shell" and after_refusal.calls[0].arguments["command"].startswith("sleep")
    # never two refused evaluations in a row without a wait between them
    names = [t.calls[0].name if t.calls else "" for t in turns[turns.index(evaluate_turns[1]):]]
    assert all(not (a == "evaluate" and b == "evaluate") for a, b in zip(names, names[1:]))


def test_recipes_on_the_forum_are_not_tried_again_and_the_best_is_built_on():
    start = recipes.focus_for(DIRECTIONS[0]).start
    theirs = {"elicit_weight": 0.3, "layers": [3, 4, 5, 6]}
    lab = Lab(posts=[
        {"id": 1, "author": "agent-2", "kind": "result", "title": "keep 0.7", "body": "", "commit_sha": "a" * 40,
         "metrics": {"pgr": 0.21, "seeds": 1, "recipe": start}, "score": 0, "comments": 0},
        {"id": 2, "author": "agent-3", "kind": "result", "title": "elicit", "commit_sha": "b" * 40,
         "body": f"good one\nrecipe: {json.dumps(theirs)}\n", "metrics": {"pgr": 0.6, "seeds": 2},
         "score": 0, "comments": 0}])
    lab.commits["b" * 40] = recipes.recipe_json(theirs)
    backend = ResearcherBackend(make_cfg(), world(DIRECTIONS[0]), None)
    drive(backend, lab, 40)
    runs = [recipes.key(r) for r in tried(lab)]
    assert recipes.key(start) not in runs and recipes.key(theirs) not in runs
    assert len(runs) == len(set(runs)) >= 3
    assert any(c.name == "shell" and c.arguments["command"] == f"git show {'b' * 40}:recipe.json" for c in lab.calls)
    built = [r for r in tried(lab) if r.get("elicit_weight") == 0.3 and r.get("layers") == [3, 4, 5, 6]]
    assert built, "it builds on agent-3's better recipe"
    assert any(p["metrics"].get("parent_commit") == "b" * 40 for p in lab.posts if p["author"] == "agent-1")


def test_where_every_step_from_the_best_is_tried_the_next_best_is_built_on_before_it_stops():
    """Nine agents try every step from the best five recipes in about half an hour: a researcher at such a local
    optimum goes on from the next known recipe, and stops only where every step from every known one is tried."""
    ctx = Context(ResearcherState(direction=DIRECTIONS[1], experiments=10), make_cfg(), "agent-1",
                  recipes.focus_for(DIRECTIONS[1], "agent-1"))
    parents = [{"keep": keep} for keep in (0.9, 0.8, 0.7, 0.6, 0.5)] + [{"epochs": 5}]
    for rank, recipe in enumerate([ctx.focus.start] + parents):
        knowledge.entry(ctx.state, recipe).pgr = 0.6 - 0.05 * rank

    def every_step(recipe: dict) -> list[str]:
        return [recipes.key(child) for name in recipes.SEARCHED
                for child in recipes.neighbours(recipe, recipes.DIMENSIONS[name])]
    for recipe in [ctx.focus.start] + parents[:5]:
        ctx.state.tried.extend(every_step(recipe))
    choice = choose(ctx)
    assert choice is not None and choice.parent is ctx.state.known[recipes.key(parents[5])]
    assert recipes.key(choice.recipe) in every_step(parents[5])
    ctx.state.tried.extend(every_step(parents[5]))
    assert choose(ctx) is None


def test_the_noise_of_which_texts_a_half_holds_is_learnt_from_an_evaluation():
    state = ResearcherState(direction="anything")
    assert knowledge.text_noise(state) == knowledge.TEXT_NOISE
    knowledge.texts_seen(state, {"texts": 550, "weak_acc": 0.641, "ceiling_acc": 0.759})
    assert abs(knowledge.text_noise(state) - math.sqrt(knowledge.DISAGREEMENT / 550) / 0.118) < 1e-9
    knowledge.texts_seen(state, {"acc": 0.7})     # an answer without them changes nothing
    assert abs(knowledge.text_noise(state) - 0.0626) < 0.001


def test_submits_only_what_beats_its_best_by_more_than_noise():
    assert beats(0.70, 0.03, None, None, 0.1)
    assert not beats(0.70, 0.03, {"pgr": 0.68, "se": 0.02}, None, 0.1)      # within the noise of its best
    assert beats(0.76, 0.03, {"pgr": 0.68, "se": 0.02}, None, 0.1)
    # the lab's best is ranked on texts no agent sees: within the public texts' noise of it is worth a submission
    assert beats(0.65, 0.03, None, 0.72, 0.1) and not beats(0.60, 0.03, None, 0.72, 0.1)

    great = {"keep": 0.7}
    lab = Lab(score=lambda recipe, seed: 0.8 if recipe == great else 0.1)
    backend = ResearcherBackend(make_cfg(), world(DIRECTIONS[0]), None)
    turns = drive(backend, lab, 17)
    assert lab.submitted == [list(lab.commits)[0]]
    names = [c.name for c in lab.calls]
    assert names[names.index("submit") - 2:names.index("submit")] == ["leaderboard", "forum_read"]
    seeds = [c.arguments["seed"] for c in lab.calls if c.name == "run"]
    assert seeds[:CONFIRM_SEEDS] == list(range(CONFIRM_SEEDS))    # more seeds before submitting
    evaluations = [c.arguments for c in lab.calls if c.name == "evaluate"]
    chosen_on = [e["predictions"] for e in evaluations if e["part"] == "a"][:CONFIRM_SEEDS]
    confirmed_on = [e["predictions"] for e in evaluations if e["part"] == "b"]
    assert confirmed_on == chosen_on       # every seed's predictions, then on the half that chose nothing
    submit_turn = next(t for t in turns if t.calls and t.calls[0].name == "submit")
    assert submit_turn.step.startswith(f"submitting {list(lab.commits)[0][:10]} (dev PGR +0.80 on 3 seeds")
    assert any("submitted" in p["title"] and p["metrics"]["seeds"] == 5 for p in lab.posts)

    # a later result within the noise of that submission is not submitted
    lab.score = lambda recipe, seed: 0.805 if recipe != great else 0.8
    drive(backend, lab, 30)
    assert len(lab.submitted) == 1


def test_a_recipe_chosen_on_one_half_is_not_submitted_where_the_other_half_does_not_bear_it_out():
    great = {"keep": 0.7}
    lab = Lab(score=lambda recipe, seed: 0.8 if recipe == great else 0.1, score_b=lambda recipe, seed: 0.1)
    backend = ResearcherBackend(make_cfg(), world(DIRECTIONS[0]), None)
    drive(backend, lab, 17)
    assert lab.submitted == [list(lab.commits)[0]]         # its first candidate has no bar on the other half
    backend.ctx.state.submissions[0].confirmed = 0.5        # as if it had confirmed well
    lab.score = lambda recipe, seed: 0.9 if recipe != great else 0.8
    drive(backend, lab, 40)
    assert len(lab.submitted) == 1
    assert any("on the other half, not above its best" in note for note in lab.notebook.splitlines()), lab.notebook
    assert backend.ctx.state.confirmations >= 2


def test_a_recipe_within_the_public_texts_noise_of_the_best_gets_its_seeds_and_a_submission():
    """Ranked on texts no agent sees, a recipe 0.05 below the lab's best public figure may rank above it: it is
    confirmed on three seeds and submitted."""
    board = [{"submission": 1, "agent": "baseline", "commit": "c" * 40, "method": "methods/elicit.py", "pgr": 0.75,
              "pgr_se": 0.03}]
    lab = Lab(score=lambda recipe, seed: 0.70, board=board)
    backend = ResearcherBackend(make_cfg(), world(DIRECTIONS[2]), None)
    drive(backend, lab, 30)
    assert [c.arguments["seed"] for c in lab.calls if c.name == "run"][:3] == [0, 1, 2]
    assert lab.submitted


def test_one_lucky_seed_is_not_submitted():
    """Seed 0 at 0.9 and seed 1 at 0.0: a mean of 0.45, below the lab's best (0.7) by more than the public texts'
    noise."""
    board = [{"submission": 1, "agent": "baseline", "commit": "c" * 40, "method": "methods/elicit.py", "pgr": 0.7,
              "pgr_se": 0.03}]
    lab = Lab(score=lambda recipe, seed: 0.9 if seed == 0 else 0.0, board=board)
    backend = ResearcherBackend(make_cfg(), world(DIRECTIONS[0]), None)
    drive(backend, lab, 30)
    assert lab.submitted == []


def test_state_round_trips_through_json_and_resumes_mid_experiment():
    lab = Lab(score=lambda recipe, seed: 0.25)
    backend = ResearcherBackend(make_cfg(), world(DIRECTIONS[6]), None)
    drive(backend, lab, 3)       # orient, run, evaluate: the experiment waits for its commit
    saved = json.loads(json.dumps(backend.state()))
    assert saved["current"]["stage"] in ("commit", "run")
    twin = ResearcherBackend(make_cfg(), world(DIRECTIONS[6]), saved)
    mine, theirs = backend.step([]), twin.step([])
    assert mine.step == theirs.step and [c.arguments for c in mine.calls] == [c.arguments for c in theirs.calls]
    backend.observe(lab.answer(mine))
    resumed = ResearcherBackend(make_cfg(), world(DIRECTIONS[6]), json.loads(json.dumps(backend.state())))
    drive(resumed, lab, 10)
    runs = [recipes.key(r) for r in tried(lab)]
    assert len(runs) == len(set(runs))     # the resumed researcher does not redo what it had tried


def test_a_message_can_change_the_direction():
    lab = Lab()
    backend = ResearcherBackend(make_cfg(), world(DIRECTIONS[5]), None)
    drive(backend, lab, 2, inbox=[Message("person", "direction: unsupervised elicitation from the strong model")])
    assert backend.ctx.focus.label == "unsupervised elicitation"
    assert "elicit_weight" in json.loads(lab.files["recipe.json"])


def test_a_version_1_state_resumes_mid_experiment():
    """A lab started before the researcher's state was typed: its agents resume where they were."""
    start, parent = recipes.focus_for(DIRECTIONS[0]).start, {"keep": 0.8}
    now = time.time()
    v1 = {"version": 1, "direction": DIRECTIONS[0], "turns": 9, "experiments": 2,
          "known": {recipes.key(start): {"recipe": start, "author": "agent-1", "pgr": 0.2, "seeds": 1, "se": None,
                                         "commit": "c" * 40, "post": 3},
                    recipes.key(parent): {"recipe": parent, "author": "agent-2", "pgr": 0.25, "seeds": 2,
                                          "se": None, "commit": "a" * 40, "post": 4}},
          "tried": [recipes.key(start), recipes.key(parent)],
          "current": {"tag": "e002", "recipe": {"keep": 0.8, "weight_power": 1.0},
                      "key": recipes.key({"keep": 0.8, "weight_power": 1.0}), "seed": 1, "pgrs": [0.31],
                      "accs": [0.69], "stage": "evaluate", "why": "changing weighting", "commit": None,
                      "parent": {"key": recipes.key(parent), "pgr": 0.25, "commit": "a" * 40, "author": "agent-2",
                                 "post": 4}},
          "submissions": [{"submission": 3, "commit": "c" * 40, "key": recipes.key(start), "pgr": 0.6, "se": 0.02,
                           "acc": 0.72, "seeds": [0, 1, 2, 3, 4]}],
          "board_best": None, "diffs": [], "effects": {}, "focus_pos": 1, "last_orient": 2, "read_notebook": True,
          "eval_times": [now - 10], "submit_times": [now - 100], "eval_free_at": now + 0.5, "submit_free_at": 0.0,
          "fail_streak": 0, "last_error": "", "fetched": {"a" * 40: parent}, "notes": ["- message from person: hi"],
          "messages": [{"author": "person", "text": "hi"}], "planned": None}
    lab = Lab(score=lambda recipe, seed: 0.3)
    lab.files["runs/e002-s1.jsonl"] = json.dumps({"recipe": v1["current"]["recipe"], "seed": 1})
    backend = ResearcherBackend(make_cfg(), world(DIRECTIONS[0]), json.loads(json.dumps(v1)))
    saved = backend.state()
    assert saved["version"] == STATE_VERSION and saved["clock"]["eval_free_at"] == now + 0.5
    assert "eval_free_at" not in saved and saved["current"]["parent"]["commit"] == "a" * 40
    assert drive(backend, lab, 1)[0].step.startswith("waiting for the evaluate budget")   # the clock came along
    time.sleep(0.6)
    steps = [t.step for t in drive(backend, lab, 4)]   # seed 1 scored; seed 2 committed, run and scored; posted
    assert steps[0] == "evaluating e002 seed 1" and steps[-1].startswith("posting e002")
    post = lab.posts[-1]
    assert post["metrics"]["seeds"] == CONFIRM_SEEDS and post["metrics"]["parent_commit"] == "a" * 40
    assert "Builds on agent-2's aaaaaaaaaa (PGR +0.250): better than it" in post["body"]
    assert "message from person: hi" in lab.notebook
    assert lab.submitted == []      # its best submission (0.6) came along too: 0.3 is not worth submitting
    unknown = ResearcherBackend(make_cfg(), world(DIRECTIONS[0]), {"version": 99, "experiments": 7})
    assert unknown.ctx.state.experiments == 0       # a state it cannot read: it starts afresh


# ---- a scorer that queues submissions, and one that is down ------------------------------------
def names_of(lab: Lab) -> list[str]:
    return [c.name for c in lab.calls]


def test_it_keeps_experimenting_while_a_submission_is_scored_and_posts_the_result_when_it_is_in():
    great = {"keep": 0.7}
    lab = Lab(score=lambda recipe, seed: 0.8 if recipe == great else 0.1, scoring_steps=6)
    backend = ResearcherBackend(make_cfg(), world(DIRECTIONS[0]), None)
    turns = drive(backend, lab, 20)
    names = names_of(lab)
    submitted_at, asked_at = names.index("submit"), names.index("submission")
    assert lab.submitted == [list(lab.commits)[0]]
    # between queueing it and the scorer's note, it ran the next experiment instead of waiting
    assert "evaluate" in names[submitted_at:asked_at] and "run" in names[submitted_at:asked_at]
    assert names.count("submission") == 1             # asked once, after the note, not in a busy loop
    asked = next(t for t in turns if t.calls and t.calls[0].name == "submission")
    assert asked.calls[0].arguments == {"request": 1, "wait_s": 0}
    assert any(p["title"].startswith("submitted") and p["metrics"]["seeds"] == 5 for p in lab.posts)
    assert backend.ctx.state.awaiting is None and backend.ctx.state.submissions[0].pgr == pytest.approx(0.8)


def test_a_candidate_found_while_a_submission_is_scored_waits_for_its_result_and_looks_again():
    start = recipes.focus_for(DIRECTIONS[0]).start
    lab = Lab(score=lambda recipe, seed: 0.5 if recipe == start else 0.8, scoring_steps=14)
    backend = ResearcherBackend(make_cfg(), world(DIRECTIONS[0]), None)
    turns = drive(backend, lab, 40)
    assert len(lab.submitted) == 2
    waited = [t for t in turns if t.calls and t.calls[0].name == "submission" and t.calls[0].arguments["wait_s"]]
    assert waited and waited[0].step.startswith("waiting for the scorer's result of")
    names = names_of(lab)
    second = [i for i, name in enumerate(names) if name == "submit"][1]
    posted = next(i for i, c in enumerate(lab.calls)
                  if c.name == "forum_post" and c.arguments["title"].startswith("submitted"))
    assert posted < second and names[second - 2:second] == ["leaderboard", "forum_read"]   # it looked again


def test_a_restart_while_a_submission_is_scored_resumes_following_it():
    great = {"keep": 0.7}
    lab = Lab(score=lambda recipe, seed: 0.8 if recipe == great else 0.1, scoring_steps=50)
    backend = ResearcherBackend(make_cfg(), world(DIRECTIONS[0]), None)
    for _ in range(40):
        drive(backend, lab, 1)
        if backend.ctx.state.awaiting is not None:
            break
    saved = json.loads(json.dumps(backend.state()))
    assert saved["awaiting"]["request"] == 1 and saved["awaiting"]["stage"] == "await"
    resumed = ResearcherBackend(make_cfg(), world(DIRECTIONS[0]), saved)
    lab.requests[1]["steps_left"] = 1                   # scored while the agent was down: the note comes next
    drive(resumed, lab, 4)
    asked = [c for c in lab.calls if c.name == "submission"]
    assert asked and asked[0].arguments["request"] == 1
    assert any(p["title"].startswith(f"submitted {lab.submitted[0][:10]}") for p in lab.posts)
    assert resumed.ctx.state.awaiting is None


def test_a_failed_submission_is_noted_and_work_goes_on():
    great = {"keep": 0.7}
    lab = Lab(score=lambda recipe, seed: 0.8 if recipe == great else 0.1, scoring_steps=2)
    original = lab.execute

    def failing(call):
        if call.name == "submission":
            lab.calls.append(call)
            reason = "the scorer stopped 3 times while scoring it"
            message = f"request {call.arguments['request']} failed: {reason}"
            return ToolResult(call.id, call.name, f"error: {message}", is_error=True,
                              data={"error": message, "kind": "ScorerInterrupted", "state": "failed",
                                    "reason": reason})
        return original(call)
    lab.execute = failing
    backend = ResearcherBackend(make_cfg(), world(DIRECTIONS[0]), None)
    drive(backend, lab, 20)
    assert backend.ctx.state.awaiting is None and not backend.ctx.state.submissions
    assert "- submission of 0000000000 (request 1) failed: the scorer stopped 3 times" in lab.notebook
    assert names_of(lab).count("submission") == 1


def test_a_scorer_that_does_not_answer_is_waited_for_not_counted_as_a_failed_experiment():
    lab = Lab(score=lambda recipe, seed: 0.3, scorer_down=2)
    backend = ResearcherBackend(make_cfg(), world(DIRECTIONS[0]), None)
    steps = [t.step for t in drive(backend, lab, 3)]     # orient, run, evaluate: refused
    assert backend.ctx.state.current.stage.value == "evaluate" and backend.ctx.state.fail_streak == 0
    backend.ctx.state.clock.scorer_back_at = 0.0          # as if the wait were over
    steps = [t.step for t in drive(backend, lab, 1)]     # refused again: it waits for the scorer
    steps += [t.step for t in drive(backend, lab, 1)]
    assert steps[1].startswith("waiting for the scorer to answer again")
    backend.ctx.state.clock.scorer_back_at = 0.0
    steps = [t.step for t in drive(backend, lab, 12)]
    assert steps[0].startswith("evaluating e001") and any(s.startswith("posting e001") for s in steps)
    assert "FAILED" not in lab.notebook and backend.ctx.state.fail_streak == 0


def test_runs_the_lab_fails_are_tried_again_after_a_wait_and_never_end_the_agents_work():
    kinds = ["RunKilled", "StateDiskFull", "ScorerInterrupted", "SandboxError", "GitError", "ScorerFailed", "RunKilled"]
    assert len(kinds) > MAX_FAIL_STREAK
    lab = Lab(score=lambda recipe, seed: 0.3, lab_faults=kinds)
    backend = ResearcherBackend(make_cfg(), world(DIRECTIONS[0]), None)
    steps = []
    for _ in range(40):
        steps += [t.step for t in drive(backend, lab, 1)]
        backend.ctx.state.clock.scorer_back_at = 0.0 if steps[-1].startswith("waiting") else \
            backend.ctx.state.clock.scorer_back_at       # as if each wait were over
        if any(s.startswith("posting e001") for s in steps):
            break
    assert not lab.lab_faults, "every fault was met"
    assert any(s.startswith("waiting for the lab to recover (StateDiskFull)") for s in steps), steps
    assert any(s.startswith("posting e001") for s in steps), steps
    assert len(tried(lab)) == 1, "the same recipe, tried again: the lab's failure is not the recipe's"
    assert backend.ctx.state.fail_streak == 0 and "FAILED" not in lab.notebook


# ---- what the scorer flagged ---------------------------------------------------------------------
def result_post(pid: int, author: str, commit: str, recipe: dict, pgr: float) -> dict:
    return {"id": pid, "author": author, "kind": "result", "title": recipes.describe(recipe), "body": "",
            "commit_sha": commit, "metrics": {"pgr": pgr, "seeds": 5, "recipe": recipe}, "score": 0, "comments": 0}


def board_row(submission: int, agent: str, commit: str, pgr: float, flags=()) -> dict:
    """A leaderboard row as the tool returns it, with the flag kinds and the teacher dependence."""
    return {"submission": submission, "agent": agent, "commit": commit, "method": "method.py", "pgr": pgr,
            "pgr_se": 0.02, "flags": list(flags),
            "teacher_dependence": {"pgr": pgr, "counterfactual_pgr": pgr - 0.05, "difference": 0.05,
                                   "difference_se": 0.02, "seeds": [0, 1]}}


def own_results(lab: Lab) -> list[dict]:
    return [p for p in lab.posts if p["author"] == "agent-1" and p["kind"] == "result"
            and not p["title"].startswith("submitted")]


def test_flags_are_read_defensively():
    assert read_flags(None) == {} and read_flags("ignores_teacher") == {} and read_flags([3, {}, {"kind": 1}]) == {}
    assert read_flags(["failed", {"kind": "ignores_teacher", "message": "still 0.6 shuffled"}]) == {
        "failed": "", "ignores_teacher": "still 0.6 shuffled"}


def test_an_unflagged_line_is_built_on_rather_than_a_better_flagged_one():
    hack, honest = {"elicit_weight": 0.5, "transductive_rounds": 2}, {"loss": "gce", "gce_q": 0.5}
    hack_below = {**hack, "ensemble": 5}      # ranked below the honest one: a candidate for crossing with it

    def run(flags):
        lab = Lab(posts=[result_post(1, "agent-2", "a" * 40, hack, 0.9),
                         result_post(2, "agent-3", "b" * 40, honest, 0.5),
                         result_post(3, "agent-4", "d" * 40, hack_below, 0.45)],
                  board=[board_row(1, "agent-2", "a" * 40, 0.9, flags), board_row(2, "agent-3", "b" * 40, 0.5),
                         board_row(3, "agent-4", "d" * 40, 0.45, flags)])
        lab.commits.update({"a" * 40: recipes.recipe_json(hack), "b" * 40: recipes.recipe_json(honest),
                            "d" * 40: recipes.recipe_json(hack_below)})
        backend = ResearcherBackend(make_cfg(), world(DIRECTIONS[0]), None)
        drive(backend, lab, 40)
        return backend, lab, [p["metrics"].get("parent_commit") for p in own_results(lab)]

    backend, lab, parents = run(["ignores_teacher"])
    assert "b" * 40 in parents and "a" * 40 not in parents
    assert not any(c.name == "shell" and "a" * 40 in c.arguments["command"] for c in lab.calls)
    # nor crossed with the flagged one ranked below it
    assert not any(r.get("elicit_weight") == 0.5 or r.get("transductive_rounds") == 2 for r in tried(lab))
    assert backend.ctx.state.board_best == 0.5          # a flagged score is no bar to clear
    assert backend.ctx.state.known[recipes.key(hack)].flagged_in == 1
    _, _, parents = run([])                              # unflagged, the better line is the one built on
    assert "a" * 40 in parents


def test_building_on_a_flagged_line_is_said_on_the_forum_and_never_submitted():
    start = recipes.focus_for(DIRECTIONS[0]).start

    def run(flags):
        lab = Lab(posts=[result_post(1, "agent-2", "a" * 40, start, 0.3)],
                  board=[board_row(7, "agent-2", "a" * 40, 0.3, flags)], score=lambda recipe, seed: 0.8)
        lab.commits["a" * 40] = recipes.recipe_json(start)
        drive(ResearcherBackend(make_cfg(), world(DIRECTIONS[0]), None), lab, 40)
        return lab

    lab = run(["ignores_teacher"])      # the only line known is flagged: it builds on it, and says so
    mine = own_results(lab)
    assert len(mine) >= 2 and all(p["metrics"]["parent_flags"] == ["ignores_teacher"] for p in mine)
    first = next(p for p in mine if p["metrics"].get("parent_commit") == "a" * 40)
    assert ("Builds on #7 (agent-2's aaaaaaaaaa), which the scorer flagged ignores_teacher: PGR +0.300 with the "
            "teacher's labels, +0.250 with them shuffled (difference +0.050 ± 0.020).") in first["body"]
    assert any("Builds on the line of #7" in p["body"] for p in mine)
    assert lab.submitted == [] and "- not submitting e001: it builds on #7" in lab.notebook
    control = run([])
    assert control.submitted and not any("flagged" in p["body"] for p in own_results(control))


def test_a_flagged_submission_is_noted_and_its_line_is_not_submitted_again():
    great = recipes.focus_for(DIRECTIONS[0]).start
    message = "with the teacher's labels shuffled the method still reaches PGR 0.78"

    def run(flags):
        lab = Lab(score=lambda recipe, seed: 0.8 if recipe == great else 0.95,
                  flags=lambda recipe: flags if recipe == great else [])
        backend = ResearcherBackend(make_cfg(), world(DIRECTIONS[0]), None)
        drive(backend, lab, 40)
        return backend, lab

    backend, lab = run([{"kind": "ignores_teacher", "message": message}])
    first = list(lab.commits)[0]
    assert lab.submitted == [first]          # its children score higher, but they are of the flagged line
    assert (f"- submission #1 ({first[:10]}, {recipes.describe(great)}) was FLAGGED by the scorer: "
            f"ignores_teacher: {message}; not building on its line or submitting it again") in lab.notebook
    assert "- not submitting e002: it builds on #1" in lab.notebook
    post = next(p for p in lab.posts if p["title"].startswith("submitted"))
    assert post["metrics"]["flags"] == ["ignores_teacher"]
    assert "Teacher dependence: PGR +0.800 with the teacher's labels, +0.780 with them shuffled" in post["body"]
    children = [p for p in own_results(lab) if p["metrics"].get("parent_commit") == first]
    assert children and all(f"Builds on #1 (agent-1's {first[:10]}), which the scorer flagged ignores_teacher: "
                            f"{message}." in p["body"] for p in children)
    entry = backend.ctx.state.known[recipes.key(great)]
    assert entry.flags == {"ignores_teacher": message} and entry.teacher.counterfactual_pgr == pytest.approx(0.78)
    assert backend.ctx.state.submissions[0].flags == {"ignores_teacher": message}
    _, control = run([])
    assert len(control.submitted) >= 2        # unflagged, a child that beats it by more than noise is submitted


def test_after_a_flagged_submission_work_moves_to_an_unflagged_line():
    great = recipes.focus_for(DIRECTIONS[0]).start
    vanilla = board_row(1, "baseline", "c" * 40, 0.2) | {"method": "methods/vanilla.py"}

    def run(flags):
        lab = Lab(score=lambda recipe, seed: 0.8 if recipe == great else 0.5, board=[vanilla],
                  flags=lambda recipe: flags if recipe == great else [])
        drive(ResearcherBackend(make_cfg(), world(DIRECTIONS[0]), None), lab, 40)
        return lab

    lab = run(["ignores_teacher"])
    # the flagged 0.8 is neither a bar for its next submission nor a parent: it builds on the baseline
    assert len(lab.submitted) == 2 and lab.submitted[0] == list(lab.commits)[0]
    second = next(p for p in own_results(lab) if p.get("commit_sha") == lab.submitted[1])
    assert second["metrics"]["parent_commit"] == "c" * 40 and "flagged" not in second["body"]
    control = run([])
    assert len(control.submitted) == 1          # unflagged, 0.5 is below its own best


# ---- the real tools, sandbox and scorer --------------------------------------------------------
@requires_bwrap
def test_researcher_runs_an_experiment_through_the_real_tools(lab_dir, tmp_path):
    from lab.agents.tools import ToolContext, Toolbox
    from lab.sandbox import make_sandbox
    from lab.sandbox.workspace import Workspace
    from lab.scaffold.repo import research_repo_path
    from lab.scorer.scorer import Scorer
    from lab.scorer.auth import KeyCredentials
    from lab.scorer.client import ScorerClient
    from lab.scorer.service import ScorerService
    from lab.store import agents, forum, open_db
    from lab.task.testbed import Testbed

    folder = make_lab(lab_dir, tmp_path, [], count=1, tmp_mb=64)
    cfg = config.load(folder / "lab.toml")
    sandbox = make_sandbox(cfg.lab.sandbox)
    testbed = Testbed.load(cfg)
    service = ScorerService(cfg, lambda db: Scorer(cfg, db, sandbox, testbed, progress=False))
    service.start_in_thread()
    db = open_db(cfg.state_dir / "lab.db")
    try:
        agents.ensure(db, "agent-1", "researcher", DIRECTIONS[0], "cpu 0")
        workspace = Workspace.ensure(cfg.sandboxes_dir, research_repo_path(cfg.state_dir), "agent-1", sandbox)
        box = Toolbox(ToolContext(agent="agent-1", cfg=cfg, db=db, sandbox=sandbox, workspace=workspace,
                                  data_view=testbed.view(cfg.task.dev), scorer=ScorerClient(service.url, KeyCredentials(service.key))))
        backend = ResearcherBackend(cfg, world(DIRECTIONS[0]), None)
        errors = []
        for _ in range(20):      # small config: 3 evaluations an hour, so the budget runs out on the way
            turn = backend.step([])
            results = [box.execute(call) for call in turn.calls]
            errors += [r for r in results if r.is_error]
            backend.observe(results)
            if turn.step.startswith("waiting"):
                break
        posts = forum.recent(db, 10)
        assert posts and posts[-1]["commit_sha"] and posts[-1]["metrics"]["recipe"] == {"keep": 0.7}
        assert "keep" in workspace.research.text("show", f"{posts[-1]['commit_sha']}:recipe.json")
        assert "keep 0.7" in agents.notebook(db, "agent-1")
        assert all(r.name == "evaluate" and r.data["kind"] == "BudgetExceeded" for r in errors), errors
        assert turn.step.startswith("waiting for the evaluate budget")
        json.dumps(backend.state())
    finally:
        service.stop()
        db.conn.close()
