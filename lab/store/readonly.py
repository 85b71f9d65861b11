"""The read-only database of the person's commands that only read: a stdlib sqlite3 connection that answers the
reading calls of sqlite_utils' Database which the store's queries use (`execute`, `query`, and a table's
`rows_where`), with the same SQL and results. Importing sqlite_utils costs a read-only command about a fifth of
its time; these few calls need none of it. Anything that writes needs `open_db` without `read_only`.
"""
from __future__ import annotations

import sqlite3
from typing import Any, Iterator, Sequence

Parameters = Sequence[Any] | dict[str, Any] | None


def _dicts(cursor: sqlite3.Cursor) -> Iterator[dict[str, Any]]:
    columns = [c[0] for c in cursor.description]
    for row in cursor:
        yield dict(zip(columns, row))


class ReadOnlyTable:
    def __init__(self, db: "ReadOnlyDatabase", name: str):
        self.db, self.name = db, name

    def exists(self) -> bool:
        return self.db.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?",
                               [self.name]).fetchone() is not None

    def rows_where(self, where: str | None = None, where_args: Parameters = None, order_by: str | None = None,
                   select: str = "*", limit: int | None = None) -> Iterator[dict[str, Any]]:
        """sqlite_utils' Table.rows_where: the same statement, the same dicts, nothing for a missing table."""
        if not self.exists():
            return
        sql = f'select {select} from "{self.name}"'
        if where is not None:
            sql += " where " + where
        if order_by is not None:
            sql += " order by " + order_by
        if limit is not None:
            sql += f" limit {limit}"
        yield from _dicts(self.db.execute(sql, where_args or []))


class ReadOnlyDatabase:
    """A connection opened with `mode=ro`: every write fails in SQLite itself ("attempt to write a readonly
    database")."""

    def __init__(self, conn: sqlite3.Connection):
        self.conn = conn

    def execute(self, sql: str, parameters: Parameters = None) -> sqlite3.Cursor:
        return self.conn.execute(sql, parameters) if parameters is not None else self.conn.execute(sql)

    def query(self, sql: str, params: Parameters = None) -> Iterator[dict[str, Any]]:
        yield from _dicts(self.execute(sql, params or []))

    def __getitem__(self, name: str) -> ReadOnlyTable:
        return ReadOnlyTable(self, name)

    def close(self) -> None:
        self.conn.close()
