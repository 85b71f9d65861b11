"""Forum posts as a table: newest or best first, with votes, comments and the PGR a result claims."""
from __future__ import annotations

from lab.tui import format as fmt
from lab.tui.widgets.synced_table import SyncedTable


def claimed_pgr(post: dict) -> str:
    value = post["metrics"].get("pgr")
    return f"{value:+.3f}" if isinstance(value, (int, float)) else ""


class PostsTable(SyncedTable):
    def __init__(self, **kwargs):
        super().__init__([("when", "when"), ("author", "author"), ("votes", "±"), ("title", "title"), ("pgr", "PGR"),
                          ("comments", "comments"), ("kind", "kind")], **kwargs)

    def show(self, posts: list[dict], now: float) -> None:
        self.sync([(str(p["id"]), (fmt.ago(p["created"], now), p["author"], f"{p['score']:+d}", p["title"][:56],
                                   claimed_pgr(p), str(p["comments"]), p["kind"])) for p in posts])
