"""The forum, commands and agents stores on a real SQLite file, including nine writers at once."""
from __future__ import annotations

import multiprocessing
import re

import pytest

from lab.errors import NotFound
from lab.store import agents, commands, forum, open_db
from lab.store.forum import BadPost


@pytest.fixture
def db(tmp_path):
    handle = open_db(tmp_path / "lab.db")
    yield handle
    handle.conn.close()


def test_posts_comments_votes_and_search(db):
    first = forum.post(db, "agent-1", "result", "logconf with warm-up beats vanilla", "PGR 0.31 over 5 seeds",
                       "a" * 40, {"pgr": 0.31, "pgr_se": 0.02})
    second = forum.post(db, "agent-2", "hypothesis", "layer 3 carries sentiment", "worth a probe")
    forum.comment(db, first, "agent-2", "replicated: 0.30")
    forum.vote(db, first, "agent-2", 1)
    forum.vote(db, first, "agent-3", 1)
    forum.vote(db, first, "agent-3", -1)   # a second vote replaces the first
    forum.vote(db, second, "agent-1", 1)
    thread = forum.read(db, first)
    assert thread["score"] == 0 and thread["comments"] == 1 and thread["metrics"]["pgr"] == 0.31
    assert [c["body"] for c in thread["comment_list"]] == ["replicated: 0.30"]
    assert [p["id"] for p in forum.search(db, "warm")] == [first]          # prefix match
    assert [p["id"] for p in forum.search(db, "sentiment layer")] == [second]
    assert forum.search(db, 'logconf"(*') == [p for p in forum.search(db, "logconf")]  # punctuation is inert
    assert [p["id"] for p in forum.recent(db, order="top")] == [second, first]
    assert [p["id"] for p in forum.recent(db, kind="result")] == [first]


@pytest.mark.parametrize("call, message", [
    (lambda db: forum.post(db, "agent-1", "rumour", "x"), "unknown post kind 'rumour'"),
    (lambda db: forum.post(db, "agent-1", "result", "  "), "non-empty title"),
    (lambda db: forum.vote(db, 1, "agent-1", 2), "+1 or -1"),
    (lambda db: forum.search(db, "!!"), "at least one word"),
])
def test_bad_posts_are_refused(db, call, message):
    forum.post(db, "agent-1", "result", "a post")
    with pytest.raises(BadPost, match=re.escape(message)):
        call(db)


def test_comment_on_missing_post(db):
    with pytest.raises(NotFound, match="no forum post with id 9"):
        forum.comment(db, 9, "agent-1", "hello")


def _write_posts(path: str, author: str, count: int) -> None:
    db = open_db(path)
    for i in range(count):
        pid = forum.post(db, author, "observation", f"{author} note {i}", "body text")
        forum.vote(db, pid, author, 1)
        commands.send(db, [author], "message", f"note {i}")
    db.conn.close()


def test_nine_writers_at_once_lose_nothing(tmp_path):
    path = str(tmp_path / "lab.db")
    open_db(path).conn.close()
    ctx = multiprocessing.get_context("spawn")
    procs = [ctx.Process(target=_write_posts, args=(path, f"agent-{i}", 60)) for i in range(1, 10)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(120)
    assert [p.exitcode for p in procs] == [0] * 9   # no 'database is locked' anywhere
    db = open_db(path)
    assert forum.count(db) == 540
    assert db.execute("SELECT count(*) FROM votes").fetchone()[0] == 540
    assert len(forum.search(db, "note", limit=1000)) == 540
    assert len(commands.take(db, "agent-4")) == 60 and commands.take(db, "agent-4") == []
    db.conn.close()


def test_agents_counters_memory_and_unknown_names(db):
    agents.ensure(db, "agent-1", "researcher", "self-training", "cpu 0")
    agents.record_model_call(db, "agent-1", model="m", input_tokens=100, output_tokens=10, cache_write_tokens=5,
                             cache_read_tokens=50, dollars=0.01, duration_s=1.0)
    agents.add_counts(db, "agent-1", experiments=2, scorer_queries=3)
    row = agents.get(db, "agent-1")
    assert (row["tokens_in"], row["tokens_out"], row["experiments"], row["scorer_queries"]) == (155, 10, 2, 3)
    agents.set_notebook(db, "agent-1", "layer 4 helps")
    agents.save_backend_state(db, "agent-1", {"tried": [1, 2]})
    assert agents.notebook(db, "agent-1") == "layer 4 helps"
    assert agents.backend_state(db, "agent-1") == {"tried": [1, 2]}
    with pytest.raises(NotFound, match="no agent named 'agent-7'"):
        agents.get(db, "agent-7")
