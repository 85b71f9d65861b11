"""`lab report`: a seeded lab (real SQLite, real git) written out as Markdown and PNGs, read back and checked."""
from __future__ import annotations

import re
import time
from pathlib import Path

import git
import pytest
from PIL import Image

from conftest import run_lab, write_config
from lab import config
from lab.report import ReportError, write_report
from lab.report.figures import PGR_FIGURE, SPEND_FIGURE
from lab.scaffold import repo as research
from lab.store import actions, agents, forum, open_db, submissions

HOUR = 3600.0
MISSING_SHA = "deadbeef" * 5
CLEARED = "uses the strong model's zero-shot labels on purpose; held-out agrees"
DISQUALIFIED = "reads the labels | from a cached file"


def _scores(dev: float, imdb: float | None, tweets: float | None, se: float = 0.02) -> list[dict]:
    out = [{"dataset": "rotten_tomatoes", "role": "dev", "status": "ok", "acc": 0.7, "pgr": dev, "pgr_se": se,
            "weak_acc": 0.66, "ceiling_acc": 0.77, "seeds": [0, 1]},
           {"dataset": "rotten_tomatoes_private", "role": "private", "status": "ok", "acc": 0.69, "pgr": dev - 0.1,
            "pgr_se": se, "weak_acc": 0.66, "ceiling_acc": 0.77, "seeds": [0, 1]}]
    for name, value in (("imdb", imdb), ("tweets", tweets)):
        if value is None:
            out.append({"dataset": name, "role": "heldout", "status": "failed", "error": "timed out"})
        else:
            out.append({"dataset": name, "role": "heldout", "status": "ok", "acc": 0.7, "pgr": value,
                        "pgr_se": se / 2, "weak_acc": 0.68, "ceiling_acc": 0.81, "seeds": [0, 1]})
    return out


def _commit_on_branch(state_dir: Path, work: Path, branch: str, lines: int) -> str:
    """A real commit on an agent's branch of the research repository: a new file of many lines."""
    clone = git.Repo.clone_from(str(research.research_repo_path(state_dir)), work)
    clone.git.checkout("-b", branch)
    (work / "w2s_extra.py").write_text("".join(f"WEIGHT_{i} = {i / 100}\n" for i in range(lines)))
    with clone.git.custom_environment(**research.AUTHOR):
        clone.git.add("-A")
        clone.git.commit("-m", "reweight by teacher confidence")
        clone.git.push("origin", branch)
    return clone.head.commit.hexsha


@pytest.fixture
def lab(tmp_path):
    """A lab folder whose store holds three agents, baselines, submissions, flags, a disqualification, posts."""
    cfg_path = write_config(tmp_path)
    cfg = config.load(cfg_path)
    db = open_db(cfg.state_dir / "lab.db")
    repo, _ = research.create(cfg.state_dir)
    root_sha = research.root_commit(repo)
    sha1 = _commit_on_branch(cfg.state_dir, tmp_path / "work", "agent-1", lines=300)

    for name, backend, model, (tokens_in, tokens_out, dollars, experiments, queries), active_s in (
            ("agent-1", "researcher", (None, None), (0, 0, 0.0, 40, 12), 2 * HOUR),
            ("agent-2", "claude", ("claude-sonnet-5-5", "high"), (120_000, 9_000, 3.5, 10, 7), 1.5 * HOUR),
            ("agent-3", "claude", ("claude-opus-5-5", "medium"), (50_000, 4_000, 1.25, 3, 2), 0.5 * HOUR)):
        counts = dict(tokens_in=tokens_in, tokens_out=tokens_out, dollars=dollars, experiments=experiments,
                      scorer_queries=queries)
        agents.ensure(db, name, backend, "a direction", "cpu 0", model=model[0], effort=model[1])
        agents.add_counts(db, name, **counts)
        agents.update(db, name, active_s=active_s, state="stopped")

    t0 = time.time() - 5 * HOUR
    common = dict(tree_hash="t", fingerprint="f", seeds=[0, 1], sandbox="bwrap", duration_s=1.0)

    def submit(agent, commit, path, scores, flags=(), at=0.0, status="scored", error=None, dependence=None) -> int:
        sid = submissions.record_submission(db, agent=agent, commit_sha=commit, path=path, scores=scores,
                                            flags=list(flags), status=status, error=error,
                                            teacher_dependence=dependence, **common)
        db["submissions"].update(sid, {"created": t0 + at * HOUR})
        return sid

    ids = {
        "vanilla": submit("baseline", root_sha, "methods/vanilla.py", _scores(0.15, -0.13, 0.34), at=0,
                          dependence={"following": 0.4, "se": 0.0728, "with_teacher": 31, "against": 2, "z": 5.0,
                                      "pairs": [{"set": "imdb", "seed": 0, "following": 0.4, "disagreements": 80}]}),
        "elicit": submit("baseline", root_sha, "methods/elicit.py", _scores(0.66, 0.44, 0.51), at=0.1,
                         flags=[{"kind": "ignores_teacher", "message": "scores with shuffled labels",
                                 "evidence": {"shuffled_pgr": 0.38123, "seeds": [0, 1]}}]),
        "a1_first": submit("agent-1", sha1, "method.py", _scores(0.40, 0.20, 0.30), at=1.0),
        "a2_cheat": submit("agent-2", sha1, "method.py", _scores(0.90, 0.10, 0.05), at=1.5,
                           flags=[{"kind": "heldout_gap", "message": "dev far above held-out",
                                   "evidence": {"dev_pgr": 0.9, "heldout_mean": 0.075}}]),
        "a2_best": submit("agent-2", MISSING_SHA, "methods/mine.py", _scores(0.60, 0.45, 0.40), at=2.0,
                          flags=[{"kind": "ignores_teacher", "message": "still scores with shuffled labels",
                                  "evidence": {"shuffled_pgr": 0.41}}]),
        "a3_best": submit("agent-3", None, "method.py", _scores(0.50, 0.33, None), at=2.5),
        "a3_failed": submit("agent-3", None, "method.py", [], at=2.7, status="failed", error="crashed"),
        "a1_best": submit("agent-1", sha1, "method.py", _scores(0.72, 0.55, 0.31), at=3.0,
                          flags=[{"kind": "heldout_gap", "message": "dev above held-out | by 0.29",
                                  "evidence": {"dev_pgr": 0.72, "heldout_mean": 0.43}}]),
    }
    submissions.disqualify(db, ids["a2_cheat"], DISQUALIFIED)
    actions.record(db, "disqualify", str(ids["a2_cheat"]), {"reason": DISQUALIFIED})
    cleared = submissions.get(db, ids["a2_best"]).flags[0].id
    submissions.clear_flag(db, cleared, CLEARED)
    actions.record(db, "clear_flag", str(cleared), {"reason": CLEARED})

    posts = {}
    for key, author, kind, title, metrics, voters in (
            ("weak", "agent-3", "hypothesis", "maybe smoothing helps", {}, ["agent-1"]),
            ("top", "agent-1", "result", "confidence reweighting: +0.72", {"pgr": 0.72, "pgr_se": 0.02},
             ["agent-2", "agent-3", "person"]),
            ("down", "agent-2", "error", "logconf diverges", {}, []),
            ("mid", "agent-2", "insight", "layer 4 | carries the label", {"pgr": 0.6}, ["agent-1", "agent-3"])):
        posts[key] = forum.post(db, author, kind, title, "body", metrics=metrics)
        for voter in voters:
            forum.vote(db, posts[key], voter, 1)
    forum.vote(db, posts["down"], "agent-1", -1)
    forum.comment(db, posts["top"], "agent-2", "replicated on 3 seeds")
    forum.comment(db, posts["top"], "agent-3", "nice")
    yield cfg_path, cfg, db, ids, posts, sha1
    db.conn.close()


# ---- reading the Markdown back ----------------------------------------------------------------------
def _section(text: str, title: str) -> str:
    start = text.index(f"## {title}")
    end = text.find("\n## ", start + 1)
    return text[start:] if end < 0 else text[start:end]


def _cells(line: str) -> list[str]:
    parts = re.split(r"(?<!\\)\|", line.strip())[1:-1]
    return [p.strip().replace("\\|", "|") for p in parts]


def _table(section: str) -> list[dict]:
    lines = [line for line in section.splitlines() if line.startswith("|")]
    headers = _cells(lines[0])
    assert set(lines[1]) <= set("|-"), lines[1]
    return [dict(zip(headers, _cells(line))) for line in lines[2:]]


def _check_png(path: Path) -> None:
    assert path.is_file(), path
    with Image.open(path) as image:
        assert image.format == "PNG"
        width, height = image.size
        image.verify()
    assert 600 <= width <= 3000 and 300 <= height <= 2000, (width, height)


# ---- the report -------------------------------------------------------------------------------------
def test_report_of_a_seeded_lab(lab, tmp_path):
    cfg_path, cfg, db, ids, posts, sha1 = lab
    out = tmp_path / "shared" / "run-1"
    md_path = write_report(cfg, db, out)
    assert md_path == out / "report.md"
    text = md_path.read_text()
    _check_png(out / PGR_FIGURE)
    _check_png(out / SPEND_FIGURE)
    assert f"]({PGR_FIGURE})" in text and f"]({SPEND_FIGURE})" in text
    assert sorted(p.name for p in out.parent.iterdir()) == ["run-1"]  # no staging folder left behind

    # the header
    assert f"`{cfg.root}`" in text
    assert "**Agents**: 3" in text
    assert "$4.75 ($145.25 left of the $150.00 budget)" in text and "183,000 tokens" in text
    assert "53 experiments" in text
    assert "**Spend rate**: $1.19 an agent-hour over 4.0 agent-hours; $" in text
    assert "8 submissions (6 on the leaderboard)" in text and "4 forum posts" in text
    assert (f"**Best private dev PGR**: +0.620 ± 0.020 (public +0.720 ± 0.020) by agent-1 (submission "
            f"#{ids['a1_best']}") in text
    assert "**The person's actions**: 2" in text

    # the leaderboard: best private dev PGR first, public and held-out beside it, the disqualified one left out
    board = _table(_section(text, "Leaderboard"))
    order = ["a1_best", "elicit", "a2_best", "a3_best", "a1_first", "vanilla"]
    assert [r["submission"] for r in board] == [f"#{ids[k]}" for k in order]
    assert [r["rank"] for r in board] == [str(i) for i in range(1, 7)]
    assert list(board[0]) == ["rank", "submission", "agent", "commit", "method", "private dev", "public dev",
                              "imdb (held-out)", "tweets (held-out)", "follows teacher", "open flags"]
    top = board[0]
    assert (top["agent"], top["commit"], top["method"]) == ("agent-1", f"`{sha1[:10]}`", "`method.py`")
    assert (top["private dev"], top["public dev"], top["imdb (held-out)"], top["tweets (held-out)"]) == \
           ("+0.620 ± 0.020", "+0.720 ± 0.020", "+0.550 ± 0.010", "+0.310 ± 0.010")
    assert top["open flags"] == "heldout_gap"
    assert board[2]["open flags"] == "-"  # its only flag was cleared
    assert board[3]["tweets (held-out)"] == "failed" and board[3]["commit"] == "-"
    assert board[5]["agent"] == "baseline" and board[5]["imdb (held-out)"] == "-0.130 ± 0.010"
    assert board[5]["follows teacher"] == "+31/-2" and top["follows teacher"] == "-"
    assert f"#{ids['a2_cheat']}" not in {r["submission"] for r in board}

    # flags: every flagged submission, with its resolution
    flags = {r["submission"]: r for r in _table(_section(text, "Flags"))}
    assert set(flags) == {f"#{ids[k]}" for k in ("a1_best", "a2_best", "a2_cheat", "elicit")}
    cheat = flags[f"#{ids['a2_cheat']}"]
    assert cheat["resolution"] == f"disqualified: {DISQUALIFIED}"
    assert (cheat["agent"], cheat["flag"]) == ("agent-2", "heldout_gap")
    assert "dev_pgr=0.9" in cheat["evidence"] and "heldout_mean=0.075" in cheat["evidence"]
    assert flags[f"#{ids['a2_best']}"]["resolution"] == f"cleared: {CLEARED}"
    assert flags[f"#{ids['a1_best']}"]["resolution"] == "open"
    assert flags[f"#{ids['a1_best']}"]["message"] == "dev above held-out | by 0.29"
    assert flags[f"#{ids['elicit']}"]["evidence"] == "shuffled_pgr=0.381, seeds=[0,1]"

    # the forum: most voted first
    found = _table(_section(text, "The forum's most voted findings"))
    assert [r["post"] for r in found] == [f"#{posts[k]}" for k in ("top", "mid", "weak", "down")]
    assert [r["votes"] for r in found] == ["+3", "+2", "+1", "-1"]
    assert (found[0]["kind"], found[0]["author"], found[0]["comments"], found[0]["PGR"]) == \
           ("result", "agent-1", "2", "+0.720 ± 0.020")
    assert found[1]["title"] == "layer 4 | carries the label" and found[1]["PGR"] == "+0.600"
    assert found[2]["PGR"] == "-"

    # spend: the counters as recorded, and each agent's best private dev PGR (disqualified ones do not count)
    spend = {r["agent"]: r for r in _table(_section(text, "Spend and experiments per agent"))}
    assert list(spend) == ["agent-1", "agent-2", "agent-3"]
    a2 = spend["agent-2"]
    assert (a2["backend"], a2["state"], a2["tokens in"], a2["tokens out"], a2["dollars"]) == \
           ("claude", "stopped", "120,000", "9,000", "$3.50")
    assert (a2["model"], a2["dollars an hour"]) == ("claude-sonnet-5-5 (high)", "$2.33")
    assert (spend["agent-1"]["model"], spend["agent-3"]["model"]) == ("-", "claude-opus-5-5 (medium)")
    assert spend["agent-1"]["dollars an hour"] == "$0.00" and spend["agent-3"]["dollars an hour"] == "$2.50"
    assert (a2["experiments"], a2["scorer queries"], a2["submissions"], a2["best private PGR"],
            a2["active hours"]) == ("10", "7", "2", "+0.500", "1.50")
    assert (spend["agent-1"]["experiments"], spend["agent-1"]["submissions"], spend["agent-1"]["best private PGR"]) \
        == ("40", "2", "+0.620")
    assert spend["agent-3"]["submissions"] == "2" and spend["agent-3"]["dollars"] == "$1.25"

    # the best methods: top three agents with a commit (agent-3 has none), a real diff and a missing commit
    best = _section(text, "The best methods")
    assert best.count("\n### ") == 2
    assert f"### 1. agent-1: submission #{ids['a1_best']}, private dev PGR +0.620" in best
    assert "```diff\n" in best and "+WEIGHT_0 = 0.0" in best and "w2s_extra.py" in best
    assert "WEIGHT_299" not in best and "first 200 of" in best
    assert f"### 2. agent-2: submission #{ids['a2_best']}" in best
    assert f"commit {MISSING_SHA} is missing from the research repository" in best

    # PGR over time: the baselines are named beside the chart
    assert "`elicit` +0.560" in _section(text, "PGR over time")      # private dev PGR, as the chart

    # a second report replaces the first whole
    (out / "report.md").write_text("stale")
    write_report(cfg, db, out)
    assert (out / "report.md").read_text().startswith("# Lab report")
    assert sorted(p.name for p in out.parent.iterdir()) == ["run-1"]


def test_gathered_series_leave_out_disqualified_and_baselines(lab):
    from lab.report.gather import gather

    _, cfg, db, ids, _, _ = lab
    report = gather(cfg, db)
    assert [p for _, p in report.best_over_time["agent-2"]] == pytest.approx([0.50])
    assert [p for _, p in report.best_over_time["lab"]] == pytest.approx([0.30, 0.50, 0.62])   # private dev PGR
    assert "baseline" not in report.best_over_time
    assert report.baselines == pytest.approx({"elicit": 0.56, "vanilla": 0.05})
    assert report.start is not None and report.best_over_time["lab"][0][0] - report.start == pytest.approx(HOUR)


def test_an_empty_lab_still_gets_a_report(tmp_path):
    cfg = config.load(write_config(tmp_path))
    db = open_db(cfg.state_dir / "lab.db")
    text = write_report(cfg, db, tmp_path / "report").read_text()
    _check_png(tmp_path / "report" / PGR_FIGURE)
    _check_png(tmp_path / "report" / SPEND_FIGURE)
    assert "No scored submissions yet" in text and "The forum is empty." in text
    assert "No submission raised a flag." in text and "**Agents**: 0" in text
    db.conn.close()


def test_a_folder_of_other_files_is_not_overwritten(lab, tmp_path):
    _, cfg, db, *_ = lab
    folder = tmp_path / "mine"
    folder.mkdir()
    (folder / "notes.txt").write_text("keep me")
    with pytest.raises(ReportError, match=r"holds files that are not a report \(notes.txt\)"):
        write_report(cfg, db, folder)
    assert [p.name for p in folder.iterdir()] == ["notes.txt"]


# ---- the command --------------------------------------------------------------------------------------
def test_lab_report_command(lab, tmp_path):
    cfg_path, *_ = lab
    out = tmp_path / "out"
    result = run_lab("--config", str(cfg_path), "report", "--out", str(out), cwd=tmp_path, timeout=120)
    assert result.returncode == 0, result.stderr
    assert f"wrote {out / 'report.md'}" in result.stdout
    assert "3 agents, 8 submissions (6 on the leaderboard), 2 open flags, 4 posts, $4.75" in result.stdout
    assert "best private dev PGR +0.620 by agent-1" in result.stdout
    _check_png(out / PGR_FIGURE)

    default = run_lab("--config", str(cfg_path), "report", cwd=tmp_path / "work", timeout=120)
    assert default.returncode == 0, default.stderr
    assert (tmp_path / "report" / "report.md").is_file()  # report/ beside lab.toml


def test_lab_report_to_a_file_is_refused(lab, tmp_path):
    cfg_path, *_ = lab
    target = tmp_path / "taken.md"
    target.write_text("mine")
    before = sorted(p.name for p in tmp_path.iterdir())
    result = run_lab("--config", str(cfg_path), "report", "--out", str(target), cwd=tmp_path, timeout=120)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("lab: error:"), result.stderr
    assert str(target) in lines[0] and "expected a folder" in lines[0]
    assert target.read_text() == "mine"
    assert sorted(p.name for p in tmp_path.iterdir()) == before
