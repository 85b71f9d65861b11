"""The lab's SQLite state: one module per concept, each owning its tables and migrations."""
from lab.store.db import Database, open_db

__all__ = ["Database", "open_db"]
