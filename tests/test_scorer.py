"""Scoring real methods end to end: the scaffold's baselines, broken methods, integrity flags, budgets."""
import json
import shutil
import sqlite3

import pytest

from conftest import METHODS, run_lab, write_config
from lab.errors import BudgetExceeded, MethodRejected, NotFound
from lab.scaffold import TEMPLATE
from lab.scorer import budget


def scores_of(lab_dir, submission_id):
    with sqlite3.connect(lab_dir / ".lab" / "lab.db") as conn:
        return conn.execute("SELECT dataset FROM scores WHERE submission_id = ?", [submission_id]).fetchall()


@pytest.fixture(scope="module")
def vanilla(tmp_path_factory):
    """The scaffold's method.py (the vanilla baseline) in a copy of the template, as in a research repository."""
    folder = tmp_path_factory.mktemp("scaffold") / "scaffold"
    shutil.copytree(TEMPLATE, folder, ignore=shutil.ignore_patterns("__pycache__"))
    return folder / "method.py"


def test_vanilla_scores_on_the_public_and_private_dev_sets_and_every_heldout_set(scorer, cfg, vanilla):
    from lab.scorer import told
    from lab.store import submissions

    result = scorer.score_path(vanilla)
    assert result.dev.dataset == "rotten_tomatoes" and result.private.dataset == "rotten_tomatoes_private"
    assert [h.dataset for h in result.heldout] == ["imdb", "tweets"]
    for score in [result.dev, result.private, *result.heldout]:
        assert score.seeds == [0, 1]
        base = scorer.testbed.baseline(score.dataset)
        assert score.pgr == pytest.approx((score.acc - base.weak_acc) / (base.ceiling_acc - base.weak_acc))
    following = result.following
    assert sorted({p.set for p in following.pairs}) == sorted(cfg.task.checked)
    assert {p.seed for p in following.pairs} == set(range(cfg.scorer.check_seeds))
    assert following.z >= cfg.scorer.flag_dependence_z and following.following > 0   # vanilla learns from its teacher
    assert "ignores_teacher" not in [f["kind"] for f in result.flags]
    said = told.result(submissions.get(scorer.db, result.id), scorer.coarse)
    assert set(said) == {"submission", "commit", "dataset", "seeds", "acc", "pgr", "pgr_se", "flags"}
    assert said["dataset"] == "rotten_tomatoes"       # the public figures alone, with a little noise
    assert abs(said["pgr"] - result.dev.pgr) < 0.2
    assert result.private.pgr != said["pgr"] and "private" not in json.dumps(said)


def test_a_method_that_ignores_the_teacher_is_flagged_and_told_only_the_kind(scorer):
    from lab.scorer import integrity, told
    from lab.store import submissions

    result = scorer.score_path(METHODS / "constant.py")
    assert result.following.following == 0 and result.following.with_teacher == result.following.against == 0
    flag = next(f for f in result.flags if f["kind"] == "ignores_teacher")
    assert flag["scope"] == integrity.PRIVATE and flag["evidence"]["z"] == 0
    said = told.result(submissions.get(scorer.db, result.id), scorer.coarse)
    assert {"kind": "ignores_teacher", "message": told.UNSEEN["ignores_teacher"]} in said["flags"]
    assert flag["message"] not in json.dumps(said)


def test_a_stray_output_file_is_flagged_but_scored(scorer):
    result = scorer.score_path(METHODS / "stray_file.py")
    flags = {f["kind"]: f for f in result.flags}
    assert "wrote_outside" in flags
    assert "notes.txt" in flags["wrote_outside"]["message"]


@pytest.mark.parametrize("method, message", [
    ("crash.py", "RuntimeError: this method crashes on purpose"),
    ("garbage.py", "predictions line 1: not a JSON object"),
    ("wrong_ids.py", "id 'made-up-0' is not a test id"),
    ("nan.py", "p1 nan is not a probability"),
    ("huge.py", "over the 4 MB limit"),
])
def test_a_broken_method_gets_one_line_exit_2_and_no_score(lab_dir, method, message):
    result = run_lab("score", "--method", str(METHODS / method), cwd=lab_dir)
    assert result.returncode == 2, result.stderr
    lines = [ln for ln in result.stderr.splitlines() if ln.startswith("lab: error:")]
    assert len(lines) == 1 and message in lines[0], result.stderr
    assert "method rejected on the dev task, seed 0" in lines[0]
    with sqlite3.connect(lab_dir / ".lab" / "lab.db") as conn:
        sid, status, error = conn.execute(
            "SELECT id, status, error FROM submissions ORDER BY id DESC LIMIT 1").fetchone()
    assert status == "rejected" and message in error
    assert scores_of(lab_dir, sid) == []


def test_a_hanging_method_is_stopped_at_the_time_limit(lab_dir):
    fast = lab_dir / "fast"
    fast.mkdir(exist_ok=True)
    config = write_config(fast, timeout_s=3)
    config.write_text(config.read_text().replace('[lab]\n', '[lab]\nstate_dir = "../.lab"\n'))
    result = run_lab("--config", str(config), "score", "--method", str(METHODS / "hang.py"), cwd=lab_dir)
    assert result.returncode == 2
    assert "lab: error: method rejected on the dev task, seed 0: timed out after 3 s" in result.stderr


def test_a_submission_stops_at_its_first_hung_run_says_why_and_counts_against_the_budget(cfg):
    """The sleeper answers on the first dev seed and sleeps on every other run: the submission ends at its first
    hung run, within a few stall windows, not after every seed and set at the wall-clock backstop."""
    from lab.sandbox import make_sandbox
    from lab.scorer.scorer import Scorer
    from lab.store import open_db, submissions

    quick = cfg.model_copy(update={"scorer": cfg.scorer.model_copy(update={"stall_s": 2, "submit_budget": 1})})
    db = open_db(quick.state_dir / "lab.db")
    try:
        scorer = Scorer(quick, db, make_sandbox(quick.lab.sandbox, warn=lambda line: None), progress=False)
        with pytest.raises(MethodRejected, match=r"ended as hung after \d+ s: it used.* the submission stopped "
                                                 r"there \(\d+ of its \d+ runs were not run\)") as caught:
            scorer.score_path(METHODS / "sleeper.py", agent="agent-sleeper")
        row = db.execute("SELECT status, error, duration_s FROM submissions WHERE agent = 'agent-sleeper'").fetchone()
        assert row[0] == "rejected" and row[1] == str(caught.value) and row[2] < 20
        assert len(submissions.recent(db, "submissions", "agent-sleeper", 0)) == 1
        with pytest.raises(BudgetExceeded, match="agent-sleeper has used its 1 submissions"):
            budget.check(db, "submissions", "agent-sleeper", 1, quick.scorer.budget_window_hours)
    finally:
        db.conn.close()


def test_stops_early_after_a_run_stopped_at_a_limit_or_a_failed_dev_run():
    from lab.sandbox import Limits, RunResult
    from lab.scorer.runner import MethodRun
    from lab.scorer.scorer import stops_early

    def run(dataset, ok=True, **result):
        done = RunResult(returncode=0 if ok else 1, timed_out=False, duration_s=1.0, limits=Limits(), **result)
        return MethodRun(dataset, 1, done, labels={"a": 1} if ok else None)

    assert stops_early(run("imdb", ok=False, hung="no CPU"), "dev")
    assert stops_early(run("imdb", ok=False, cpu_limited=True), "dev")
    assert stops_early(run("dev", ok=False), "dev")
    assert not stops_early(run("imdb", ok=False), "dev")     # a failed unseen set is reported, the rest still runs
    assert not stops_early(run("dev"), "dev")
    assert not stops_early(run("dev", ok=False, cancelled=True), "dev")   # stopped because another run stopped


def test_evaluate_reports_accuracy_and_pgr_with_noise_within_a_budget(scorer, tmp_path):
    dev = scorer.cfg.task.dev
    truth = scorer.testbed.labels(dev)
    content = "".join(json.dumps({"id": i, "label": y}) + "\n" for i, y in truth.items()).encode()
    answer = scorer.evaluate("agent-budget", content)
    s = scorer.cfg.scorer
    assert abs(answer["acc"] - 1.0) <= 5 * s.evaluate_noise / len(truth) and answer["noise_texts"] == s.evaluate_noise
    assert answer["acc"] == round(answer["acc"], 3)
    base = scorer.testbed.baseline(dev)
    assert answer["pgr"] == pytest.approx((answer["acc"] - base.weak_acc) / (base.ceiling_acc - base.weak_acc), abs=2e-3)
    half = scorer.evaluate("agent-budget", content, "a")
    assert half["part"] == "a" and 0.3 * len(truth) < half["texts"] < 0.7 * len(truth)
    scorer.evaluate("agent-budget", content, "b")
    with pytest.raises(BudgetExceeded, match=r"agent-budget has used its 3 evaluations per 1 h; the next one is allowed at"):
        scorer.evaluate("agent-budget", content)
    scorer.evaluate("agent-other", content)  # budgets are per agent
    with pytest.raises(MethodRejected, match="part 'c' is not one of all, a, b"):
        scorer.evaluate("agent-other", content, "c")
    with pytest.raises(MethodRejected, match="predictions miss 1 of"):
        scorer.evaluate("agent-other", content[:content.rindex(b"{")])


def test_submit_runs_a_commit_of_the_research_repo_and_ties_the_score_to_it(scorer, cfg):
    from lab.scaffold.repo import open_repo, root_commit

    repo = open_repo(cfg.state_dir / "research.git")
    first = root_commit(repo)
    result = scorer.submit("agent-1", first, "methods/confident.py")
    assert result.commit_sha == first
    with pytest.raises(NotFound, match="commit 'deadbeef' is not in the research repository"):
        scorer.submit("agent-1", "deadbeef")
    with pytest.raises(MethodRejected, match="has no method file 'nope.py'"):
        scorer.submit("agent-1", first, "nope.py")


def test_disqualified_submissions_leave_the_leaderboard_with_their_reason(lab_dir, scorer, vanilla):
    from lab.store import submissions

    result = scorer.score_path(vanilla)
    ran = run_lab("score", "--disqualify", str(result.id), "--reason", "peeked", cwd=lab_dir)
    assert ran.returncode == 0, ran.stderr
    board = json.loads(run_lab("score", "--json", cwd=lab_dir, check=True).stdout)
    assert result.id not in [row["submission"] for row in board]
    assert submissions.get(scorer.db, result.id).disqualified_reason == "peeked"
    missing = run_lab("score", "--disqualify", "99999", "--reason", "x", cwd=lab_dir)
    assert missing.returncode == 2
    assert missing.stderr.strip() == "lab: error: no submission with id 99999 (see `lab score` for the leaderboard)"
