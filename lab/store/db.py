"""Opening the database: WAL mode, a generous busy timeout, and versioned, idempotent migrations.

Each concept module registers its migrations with `migration(concept, version)`; `open_db` applies
the ones a database has not seen yet, in order, each inside a transaction, and records them. A read-only
open (the person's commands that only read) is a plain sqlite3 connection (lab.store.readonly), so those
commands never import sqlite_utils.

Code that only reads takes a `Database`, the reading calls both kinds answer; code that writes takes an
sqlite_utils `Database`, which only `open_db` without `read_only` gives.
"""
from __future__ import annotations

import sqlite3
import sys
import time
from contextlib import contextmanager
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterator, Literal, Protocol, overload

from lab.store.readonly import Parameters, ReadOnlyDatabase

if TYPE_CHECKING:
    from types import ModuleType

    import sqlite_utils
    import sqlite_utils.db


class Table(Protocol):
    """A table as code that only reads sees it."""

    def exists(self) -> bool: ...

    def rows_where(self, where: str | None = None, where_args: Parameters = None, order_by: str | None = None,
                   select: str = "*", limit: int | None = None) -> Iterator[dict[str, Any]]: ...


class Database(Protocol):
    """The database as code that only reads sees it: sqlite_utils' Database, or the read-only one of the person's
    commands that only read (lab.store.readonly)."""

    def execute(self, sql: str, parameters: Parameters = None) -> sqlite3.Cursor: ...

    def query(self, sql: str, params: Parameters = None) -> Iterator[dict[str, Any]]: ...

    def __getitem__(self, name: str) -> Table: ...


@cache
def _sqlite_utils() -> ModuleType:
    """sqlite_utils imports pandas and numpy as it loads, only to map their scalar types to column types, which the
    lab never uses (its tables are made from Python types): hidden while it loads, they stay out of every lab process
    that does not need them (0.4 s of each `lab` command). Where they are loaded already, nothing changes."""
    hidden = [name for name in ("pandas", "numpy") if name not in sys.modules]
    for name in hidden:
        # `import name` raises ImportError, which sqlite_utils expects (a None entry is CPython's documented way)
        sys.modules[name] = None    # type: ignore[assignment]
    try:
        import sqlite_utils
    finally:
        for name in hidden:
            if name in sys.modules and sys.modules[name] is None:
                del sys.modules[name]
    return sqlite_utils


Migration = Callable[["sqlite_utils.Database"], None]
_MIGRATIONS: dict[tuple[str, int], Migration] = {}


def migration(concept: str, version: int) -> Callable[[Migration], Migration]:
    def register(fn: Migration) -> Migration:
        _MIGRATIONS[(concept, version)] = fn
        return fn

    return register


def inserted_id(table: sqlite_utils.db.Table) -> int:
    """The id of the row `table.insert` just inserted (sqlite_utils types it optional: it is None before one)."""
    assert table.last_pk is not None
    return table.last_pk


def _load_concepts() -> None:
    # Importing a concept module registers its migrations.
    from lab.store import actions, agents, commands, events, forum, publishes, runs, submissions  # noqa: F401


@contextmanager
def transaction(db: sqlite_utils.Database) -> Iterator[sqlite_utils.Database]:
    """BEGIN IMMEDIATE takes the write lock up front, so concurrent writers wait instead of failing."""
    db.execute("BEGIN IMMEDIATE")
    try:
        yield db
    except BaseException:
        db.execute("ROLLBACK")
        raise
    db.execute("COMMIT")


def migrate(db: sqlite_utils.Database) -> list[tuple[str, int]]:
    _load_concepts()
    db.execute("CREATE TABLE IF NOT EXISTS migrations (concept TEXT, version INTEGER, applied REAL, "
               "PRIMARY KEY (concept, version))")
    done = {(r[0], r[1]) for r in db.execute("SELECT concept, version FROM migrations").fetchall()}
    applied = []
    for key in sorted(_MIGRATIONS, key=lambda k: (k[0], k[1])):
        if key in done:
            continue
        with transaction(db):
            _MIGRATIONS[key](db)
            db.execute("INSERT OR IGNORE INTO migrations VALUES (?, ?, ?)", [key[0], key[1], time.time()])
        applied.append(key)
    return applied


def _pending(db: Database) -> bool:
    _load_concepts()
    if not db.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'migrations'").fetchone():
        return True
    done = {(r[0], r[1]) for r in db.execute("SELECT concept, version FROM migrations").fetchall()}
    return bool(set(_MIGRATIONS) - done)


@overload
def open_db(path: Path | str, read_only: Literal[False] = False) -> sqlite_utils.Database: ...


@overload
def open_db(path: Path | str, read_only: bool) -> Database: ...


def open_db(path: Path | str, read_only: bool = False) -> Database:
    """The lab's database, created and migrated as needed. `read_only` creates nothing and takes no write lock (what
    the person's read-only commands use beside nine writing agents): the file must exist (FileNotFoundError), and
    only a database that still needs migrations is opened for writing, once, to apply them."""
    path = Path(path)
    if read_only:
        if not path.is_file():
            raise FileNotFoundError(f"no database at {path}")
        conn = sqlite3.connect(f"{path.absolute().as_uri()}?mode=ro", uri=True, timeout=60, isolation_level=None,
                               check_same_thread=False)
        conn.execute("PRAGMA busy_timeout = 60000")
        db = ReadOnlyDatabase(conn)
        if not _pending(db):
            return db
        conn.close()
    path.parent.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(path, timeout=60, isolation_level=None, check_same_thread=False)
    conn.execute("PRAGMA busy_timeout = 60000")
    writable: sqlite_utils.Database = _sqlite_utils().Database(conn)
    writable.enable_wal()
    writable.execute("PRAGMA foreign_keys = ON")
    migrate(writable)
    return writable
