"""The SQLite store: WAL, versioned idempotent migrations, and all-or-nothing submissions."""
import sqlite3

import pytest

from lab.errors import NotFound
from lab.store import open_db, submissions
from lab.store.db import migrate


def test_migrations_are_versioned_and_idempotent(tmp_path):
    db = open_db(tmp_path / "lab.db")
    assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    first = db.execute("SELECT concept, version FROM migrations").fetchall()
    assert ("submissions", 1) in first
    assert migrate(db) == []
    db.conn.close()
    again = open_db(tmp_path / "lab.db")
    assert again.execute("SELECT concept, version FROM migrations").fetchall() == first


def test_a_submission_is_recorded_whole_or_not_at_all(tmp_path):
    db = open_db(tmp_path / "lab.db")
    common = dict(agent="agent-1", commit_sha="abc", path="method.py", tree_hash="t", fingerprint="f",
                  seeds=[0, 1], sandbox="bwrap", duration_s=1.0)
    with pytest.raises(sqlite3.IntegrityError):
        submissions.record_submission(db, **common, scores=[
            {"dataset": "d", "role": "dev", "status": "ok", "pgr": 0.5, "pgr_se": 0.1},
            {"dataset": "d", "role": "dev", "status": "ok", "pgr": 0.5, "pgr_se": 0.1},  # duplicate key
        ], flags=[])
    assert db["submissions"].count == 0 and db["scores"].count == 0
    sid = submissions.record_submission(db, **common, flags=[{"kind": "k", "message": "m", "evidence": {"x": 1}}],
                                        scores=[{"dataset": "d", "role": "dev", "status": "ok", "pgr": 0.5,
                                                 "pgr_se": 0.1, "seeds": [0, 1], "per_seed_acc": [0.7, 0.8]}])
    sub = submissions.get(db, sid)
    assert sub.scores[0].per_seed_acc == [0.7, 0.8]
    assert sub.flags[0].evidence == {"x": 1}
    assert [s.id for s in submissions.leaderboard(db)] == [sid]
    submissions.clear_flag(db, sub.flags[0].id, "looked fine")
    assert submissions.leaderboard(db)[0].open_flags == []
    with pytest.raises(NotFound):
        submissions.clear_flag(db, 999, "x")


def test_teacher_dependence_and_flag_scopes_migrate_onto_an_older_database(tmp_path):
    import sqlite_utils

    from lab.store.db import _MIGRATIONS, _load_concepts

    _load_concepts()
    old = sqlite_utils.Database(tmp_path / "lab.db")
    old.execute("CREATE TABLE migrations (concept TEXT, version INTEGER, applied REAL, PRIMARY KEY (concept, version))")
    for version in (1, 2):  # the submissions store as it was before dependence and scopes
        _MIGRATIONS["submissions", version](old)
        old.execute("INSERT INTO migrations VALUES ('submissions', ?, 0)", [version])
    sid = old["submissions"].insert({"agent": "agent-1", "status": "scored", "created": 1.0, "seeds": "[0]"}).last_pk
    old["flags"].insert({"submission_id": sid, "kind": "ignores_teacher", "message": "old", "evidence": "{}"})
    old.conn.commit()
    old.conn.close()

    db = open_db(tmp_path / "lab.db")
    assert ("submissions", 3) in db.execute("SELECT concept, version FROM migrations").fetchall()
    sub = submissions.get(db, sid)
    assert sub.teacher_dependence is None and sub.following is None and sub.flags[0].scope is None
    _MIGRATIONS["submissions", 3](db)  # running it again changes nothing
    assert [c.name for c in db["flags"].columns].count("scope") == 1


def test_a_read_only_open_reads_what_sqlite_utils_reads_and_cannot_write(tmp_path):
    """The person's read-only commands read through plain sqlite3 (lab.store.readonly): every query of the store
    they use gives the same rows as through sqlite_utils, on a lab with history."""
    from seeding import seed_preset

    from lab.agents import control
    from lab.store import actions, agents, commands, events, forum
    from lab.store.readonly import ReadOnlyDatabase

    db = open_db(tmp_path / "lab.db")
    seed_preset(db, "tiny")
    commands.send(db, ["agent-1", "agent-2"], "message", "hello")
    actions.record(db, "pause", "agent-1")
    reader = open_db(tmp_path / "lab.db", read_only=True)
    assert isinstance(reader, ReadOnlyDatabase)
    names = agents.names(db)
    assert names and names == agents.names(reader)
    queries = [
        lambda d: agents.all_agents(d), lambda d: [agents.get(d, n) for n in names], lambda d: agents.totals(d),
        lambda d: [agents.notebook(d, n) for n in names], lambda d: [agents.backend_state(d, n) for n in names],
        lambda d: forum.recent(d, 50), lambda d: forum.search(d, "probe", 20), lambda d: forum.count(d),
        lambda d: [forum.read(d, p["id"]) for p in forum.recent(d, 5)],
        lambda d: submissions.leaderboard(d), lambda d: submissions.by_commit(d), lambda d: submissions.flagged(d),
        lambda d: submissions.best_over_time(d), lambda d: control.best_by_agent(d),
        lambda d: commands.history(d), lambda d: actions.history(d), lambda d: events.latest(d, 100),
        lambda d: [events.transcript(d, n) for n in names],
    ]
    for i, query in enumerate(queries):
        assert query(reader) == query(db), f"query {i}"
    assert list(reader["no_such_table"].rows_where()) == []
    with pytest.raises(sqlite3.OperationalError, match="readonly"):
        reader.execute("DELETE FROM posts")
    reader.close()
    db.conn.close()
