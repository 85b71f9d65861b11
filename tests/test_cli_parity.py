"""The command line does what the TUI does: one agent's transcript, notebook and log (`lab agent`), JSON from every
command that reads, "did you mean" for a mistyped command or lab.toml key, and `lab --help` in the order of a day.

A real store and a real research repository (an agent's commit on its branch, a submission of it, a forum thread,
a transcript, a notebook) and a runner's log file; every case runs the real `lab` in a subprocess.
"""
from __future__ import annotations

import json
import re

import click
import git
import pytest

from conftest import run_lab, write_config
from lab import config
from lab.cli import cli
from lab.cli.base import DAY_ORDER, READ_ONLY_COMMANDS
from lab.scaffold import repo as research
from lab.store import agents, events, forum, open_db, submissions

EVENTS, NOTEBOOK_LINES, LOG_LINES = 60, 50, 120


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    folder = tmp_path_factory.mktemp("parity")
    write_config(folder)
    cfg = config.load(folder / "lab.toml")
    db = open_db(cfg.state_dir / "lab.db")
    research.create(cfg.state_dir)
    clone = git.Repo.clone_from(str(research.research_repo_path(cfg.state_dir)), folder / "work")
    clone.git.checkout("-b", "agent-1")
    (folder / "work" / "method.py").write_text((folder / "work" / "method.py").read_text() + "# a better loss\n")
    with clone.git.custom_environment(**research.AUTHOR):
        clone.git.add("-A")
        clone.git.commit("-m", "logconf with a warm-up", author="agent-1 <agent-1@lab>")
        clone.git.push("origin", "agent-1")
    sha = clone.head.commit.hexsha
    for name in ("agent-1", "agent-2"):
        agents.ensure(db, name, "researcher", "confidence losses", "cpu 0-1")
    agents.update(db, "agent-1", state="stopped", reason="the lab was stopped", experiments=4)
    agents.set_notebook(db, "agent-1", "\n".join(f"note {i}" for i in range(1, NOTEBOOK_LINES + 1)))
    for i in range(1, EVENTS + 1):
        events.record(db, "agent-1", "tool_call" if i % 2 else "tool_result", f"step {i}", {"i": i})
    post = forum.post(db, "agent-1", "result", "warm-up helps", "PGR up by a tenth", commit_sha=sha,
                      metrics={"pgr": 0.31})
    forum.comment(db, post, "agent-2", "reproduced")
    score = {"dataset": "rotten_tomatoes", "role": "dev", "status": "ok", "acc": 0.7, "pgr": 0.31, "pgr_se": 0.02,
             "weak_acc": 0.66, "ceiling_acc": 0.77, "seeds": [0, 1]}
    submissions.record_submission(db, agent="agent-1", commit_sha=sha, path="method.py", tree_hash="t",
                                  fingerprint="f", seeds=[0, 1], sandbox="none", duration_s=1.0, scores=[score],
                                  flags=[])
    db.conn.close()
    logs = cfg.run_dir / "logs"
    logs.mkdir(parents=True)
    (logs / "agent-1.log").write_text("".join(f"2026-12-07 05:00:00 line {i}\n" for i in range(1, LOG_LINES + 1)))
    return folder, sha, post


def lab_json(folder, *args: str):
    done = run_lab(*args, "--json", cwd=folder, timeout=120)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def lab_text(folder, *args: str) -> str:
    done = run_lab(*args, cwd=folder, timeout=120)
    assert done.returncode == 0, done.stderr
    return done.stdout


# ---- lab agent -----------------------------------------------------------------------------------------------------
def test_an_agents_summary_names_its_state_files_and_latest_work(lab):
    folder, sha, _ = lab
    shown = lab_text(folder, "agent", "agent-1")
    assert shown.startswith("agent-1 stopped  researcher")
    assert f"log: {folder / '.lab' / 'run' / 'logs' / 'agent-1.log'}" in shown
    assert f"notebook: {NOTEBOOK_LINES} lines   transcript: {EVENTS} events" in shown
    assert f"step {EVENTS}" in shown and "step 1\n" not in shown
    assert re.search(r"#1 scored  rotten_tomatoes \+0\.310 ± 0\.020", shown)

    found = lab_json(folder, "agent", "agent-1")
    assert found["status"]["state"] == "stopped" and found["status"]["best_pgr"] is None   # not a ranked set
    assert found["events"] == EVENTS and found["notebook_lines"] == NOTEBOOK_LINES
    assert found["log"]["bytes"] > 0 and found["latest_submissions"][0]["commit"] == sha


def test_the_transcript_shows_the_newest_events_and_all_of_them_on_request(lab):
    folder = lab[0]
    shown = lab_text(folder, "agent", "agent-1", "--transcript", "-n", "5").splitlines()
    assert shown[0] == f"agent-1: the newest 5 of {EVENTS} events (--all for every one)"
    assert [line.split()[-1] for line in shown[1:]] == [str(i) for i in range(EVENTS - 4, EVENTS + 1)]
    everything = lab_json(folder, "agent", "agent-1", "--transcript", "--all")
    assert everything["total"] == EVENTS and len(everything["events"]) == EVENTS
    assert everything["events"][0]["data"] == {"i": 1} and everything["events"][0]["kind"] == "tool_call"


def test_the_notebook_and_the_log_are_tailed(lab):
    folder = lab[0]
    notes = lab_text(folder, "agent", "agent-1", "--notebook", "-n", "3").splitlines()
    assert notes == [f"[agent-1's notebook: the newest 3 of {NOTEBOOK_LINES} lines (--all for every one)]",
                     "note 48", "note 49", "note 50"]
    assert lab_json(folder, "agent", "agent-1", "--notebook", "--all")["lines"][0] == "note 1"
    log = lab_text(folder, "agent", "agent-1", "--log").splitlines()
    assert log[0] == f"[{folder / '.lab' / 'run' / 'logs' / 'agent-1.log'}]"
    assert len(log) == 1 + 40 and log[-1].endswith(f"line {LOG_LINES}")
    assert len(lab_json(folder, "agent", "agent-1", "--log", "--all")["lines"]) == LOG_LINES


def test_an_agent_with_nothing_yet_says_so(lab):
    folder = lab[0]
    assert lab_text(folder, "agent", "agent-3") == "agent-3 has not started yet (`lab start` starts it)\n"
    assert "agent-2 has no log yet" in lab_text(folder, "agent", "agent-2", "--log")
    assert lab_text(folder, "agent", "agent-2", "--notebook") == "agent-2's notebook is empty\n"
    assert lab_json(folder, "agent", "agent-2", "--transcript") == {"agent": "agent-2", "total": 0, "events": []}


def test_an_unknown_agent_is_one_line_with_the_closest_name(lab):
    done = run_lab("agent", "agent1", cwd=lab[0], timeout=120)
    assert done.returncode == 2
    assert done.stderr == "lab: error: no agent named 'agent1' (did you mean 'agent-1'? expected one of: agent-1 ... " \
                          "agent-9)\n"
    # where several names are as close as each other, naming one would be a guess
    assert "did you mean" not in run_lab("agent", "agent-x", cwd=lab[0], timeout=120).stderr


# ---- --json on every command that reads ----------------------------------------------------------------------------
def test_every_read_only_command_offers_json():
    def leaves(command: click.Command, path: str):
        if isinstance(command, click.Group):
            yield path, command          # the group itself reads (`lab forum`)
            for name, sub in command.commands.items():
                yield from leaves(sub, f"{path} {name}")
        else:
            yield path, command

    for name in READ_ONLY_COMMANDS:
        for path, command in leaves(cli.commands[name], name):
            if path != "forum post":     # the one that writes
                assert "--json" in {o for p in command.params for o in p.opts}, f"`lab {path}` has no --json"


@pytest.mark.parametrize("args, keys", [
    (["status"], {"running", "agents", "lab", "limits"}),
    (["score"], {"submission", "agent", "commit", "method", "datasets", "teacher_following", "flags"}),
    (["forum"], {"id", "author", "kind", "title", "score", "comments", "metrics"}),
    (["forum", "search", "warm-up"], {"id", "author", "title"}),
    (["forum", "read", "1"], {"id", "title", "body", "comment_list", "metrics"}),
    (["log"], {"commit", "agent", "time", "subject", "submissions"}),
    (["log", "agent-1"], {"commit", "agent", "time", "subject", "submissions"}),
    (["agent", "agent-1"], {"agent", "status", "worktree", "log", "notebook_lines", "events", "latest_events",
                            "latest_submissions"}),
    (["agent", "agent-1", "--transcript"], {"agent", "total", "events"}),
    (["agent", "agent-1", "--notebook"], {"agent", "total_lines", "lines"}),
    (["agent", "agent-1", "--log"], {"agent", "path", "exists", "lines"}),
], ids=lambda v: " ".join(v) if isinstance(v, list) else "")
def test_each_read_only_command_prints_one_json_document(lab, args, keys):
    found = lab_json(lab[0], *args)
    first = found[0] if isinstance(found, list) else found
    assert keys <= set(first), keys - set(first)


def test_log_and_show_json_carry_the_commit_and_its_scores(lab):
    folder, sha, _ = lab
    [commit] = lab_json(folder, "log")
    assert commit["commit"] == sha and commit["subject"] == "logconf with a warm-up"
    [sub] = commit["submissions"]
    assert sub["scores"]["rotten_tomatoes"]["pgr"] == 0.31 and sub["open_flags"] == []
    shown = lab_json(folder, "show", sha[:10])
    assert shown["commit"] == sha and "+# a better loss" in shown["show"]
    assert shown["submissions"] == commit["submissions"]


def test_report_json_says_where_it_wrote_and_what_it_found(lab, tmp_path):
    found = lab_json(lab[0], "report", "--out", str(tmp_path / "report"))
    assert found["path"] == str(tmp_path / "report" / "report.md")
    assert found["agents"] == 2 and found["posts"] == 1 and found["submissions"] == 1


# ---- did you mean, and the order of a day --------------------------------------------------------------------------
@pytest.mark.parametrize("args, expected", [
    (["statsu"], "No such command 'statsu'. Did you mean 'status'?"),
    (["forum", "serch", "x"], "No such command 'serch'. Did you mean 'search'?"),
    (["agnet", "agent-1"], "No such command 'agnet'. Did you mean 'agent'?"),
], ids=lambda v: " ".join(v) if isinstance(v, list) else "")
def test_a_mistyped_command_gets_the_closest_one(lab, args, expected):
    done = run_lab(*args, cwd=lab[0], timeout=120)
    assert done.returncode == 2 and expected in done.stderr


def test_a_mistyped_config_key_names_its_line_and_the_closest_key(tmp_path):
    (tmp_path / "lab.toml").write_text('[lab]\nsandbox = "none"\n\n[scorer]\nseeds = 2\ntimeot_s = 30\n')
    done = run_lab("status", cwd=tmp_path, timeout=120)
    assert done.returncode == 2 and done.stdout == ""
    assert done.stderr.startswith("lab: error: lab.toml, line 6: scorer.timeot_s: unknown key; did you mean "
                                  "'timeout_s'? (expected one of: seeds, timeout_s,")
    assert len(done.stderr.strip().splitlines()) == 1


def test_help_lists_the_commands_in_the_order_of_a_day(tmp_path):
    shown = run_lab("--help", cwd=tmp_path, check=True).stdout
    listed = re.findall(r"^  (\w+)\s", shown.split("Commands:")[1], flags=re.M)
    assert listed == list(DAY_ORDER)
