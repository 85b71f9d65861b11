"""The forum: posts of a kind with commit ids and metrics, comments, votes, and full-text search (FTS5)."""
from __future__ import annotations

import json
import re
import sqlite3
import time
from typing import TYPE_CHECKING

from lab.errors import LabError, NotFound
from lab.store.db import Database, inserted_id, migration, transaction

if TYPE_CHECKING:   # the store's queries need no sqlite_utils; lab.store.db loads it where it writes
    import sqlite_utils

KINDS = ("result", "hypothesis", "insight", "error", "observation", "question", "person")


class BadPost(LabError):
    """A post, comment or vote that is malformed."""


@migration("forum", 1)
def _create(db: sqlite_utils.Database) -> None:
    db.table("posts").create({"id": int, "author": str, "kind": str, "title": str, "body": str, "commit_sha": str,
                              "metrics": str, "created": float}, pk="id", not_null={"author", "kind", "title"},
                             if_not_exists=True)
    db.table("comments").create({"id": int, "post_id": int, "author": str, "body": str, "created": float}, pk="id",
                                foreign_keys=[("post_id", "posts", "id")], if_not_exists=True)
    db.table("votes").create({"post_id": int, "voter": str, "value": int, "created": float}, pk=("post_id", "voter"),
                             foreign_keys=[("post_id", "posts", "id")], if_not_exists=True)
    db.table("comments").create_index(["post_id"], if_not_exists=True)
    db.table("posts").enable_fts(["title", "body", "author", "kind", "commit_sha"], fts_version="FTS5",
                                 create_triggers=True, replace=True)


def post(db: sqlite_utils.Database, author: str, kind: str, title: str, body: str = "",
         commit_sha: str | None = None, metrics: dict | None = None) -> int:
    if kind not in KINDS:
        raise BadPost(f"unknown post kind {kind!r} (expected one of: {', '.join(KINDS)})")
    if not title.strip():
        raise BadPost("a post needs a non-empty title")
    with transaction(db):
        return inserted_id(db.table("posts").insert({"author": author, "kind": kind, "title": title.strip()[:300],
                                                     "body": body, "commit_sha": commit_sha,
                                                     "metrics": json.dumps(metrics or {}), "created": time.time()}))


def _require(db: Database, post_id: int) -> None:
    if not db.execute("SELECT 1 FROM posts WHERE id = ?", [post_id]).fetchone():
        raise NotFound(f"no forum post with id {post_id}")


def comment(db: sqlite_utils.Database, post_id: int, author: str, body: str) -> int:
    if not body.strip():
        raise BadPost("a comment needs a non-empty body")
    _require(db, post_id)
    with transaction(db):
        return inserted_id(db.table("comments").insert({"post_id": post_id, "author": author, "body": body,
                                                        "created": time.time()}))


def vote(db: sqlite_utils.Database, post_id: int, voter: str, value: int) -> None:
    """+1 or -1; a second vote by the same voter replaces the first."""
    if value not in (1, -1):
        raise BadPost(f"a vote is +1 or -1, got {value!r}")
    _require(db, post_id)
    with transaction(db):
        db.table("votes").upsert({"post_id": post_id, "voter": voter, "value": value, "created": time.time()},
                                 pk=("post_id", "voter"))


_SELECT = ("SELECT p.id, p.author, p.kind, p.title, p.body, p.commit_sha, p.metrics, p.created, "
           "coalesce((SELECT sum(value) FROM votes v WHERE v.post_id = p.id), 0) AS score, "
           "(SELECT count(*) FROM comments c WHERE c.post_id = p.id) AS comments FROM posts p")
_FIELDS = ("id", "author", "kind", "title", "body", "commit_sha", "metrics", "created", "score", "comments")


def _rows(cursor: sqlite3.Cursor) -> list[dict]:
    out = []
    for r in cursor.fetchall():
        row = dict(zip(_FIELDS, r))
        row["metrics"] = json.loads(row["metrics"] or "{}")
        out.append(row)
    return out


def recent(db: Database, limit: int = 20, kind: str | None = None, author: str | None = None,
           before_id: int | None = None, order: str = "new") -> list[dict]:
    where, args = [], []
    for clause, value in (("p.kind = ?", kind), ("p.author = ?", author), ("p.id < ?", before_id)):
        if value is not None:
            where.append(clause)
            args.append(value)
    sql = _SELECT + (" WHERE " + " AND ".join(where) if where else "")
    sql += " ORDER BY score DESC, p.id DESC" if order == "top" else " ORDER BY p.id DESC"
    return _rows(db.execute(sql + " LIMIT ?", [*args, limit]))


def _fts_query(text: str) -> str:
    """Plain words to an FTS5 query: every word must match (as a prefix); punctuation cannot break it."""
    words = re.findall(r"\w+", text, flags=re.UNICODE)
    if not words:
        raise BadPost("a search needs at least one word")
    return " ".join(f'"{w}"*' for w in words)


def search(db: Database, text: str, limit: int = 20) -> list[dict]:
    sql = _SELECT + " JOIN posts_fts f ON f.rowid = p.id WHERE posts_fts MATCH ? ORDER BY f.rank LIMIT ?"
    return _rows(db.execute(sql, [_fts_query(text), limit]))


def read(db: Database, post_id: int) -> dict:
    rows = _rows(db.execute(_SELECT + " WHERE p.id = ?", [post_id]))
    if not rows:
        raise NotFound(f"no forum post with id {post_id}")
    thread = rows[0]
    thread["comment_list"] = list(db["comments"].rows_where("post_id = ?", [post_id], order_by="id"))
    thread["votes"] = list(db["votes"].rows_where("post_id = ?", [post_id]))
    return thread


def count(db: Database) -> int:
    return db.execute("SELECT count(*) FROM posts").fetchone()[0]
