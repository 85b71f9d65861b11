"""The leaderboard: dev PGR with its standard error, how much of it the teacher adds, each held-out
set's PGR, and open flags."""
from __future__ import annotations

from rich.text import Text

from lab.tui import format as fmt
from lab.tui.widgets.synced_table import SyncedTable


class Leaderboard(SyncedTable):
    def __init__(self, dev: str, heldout: list[str], **kwargs):
        self.dev, self.heldout = dev, heldout
        super().__init__([("id", "#"), ("agent", "agent"), ("dev", f"{dev} (dev)"), ("teacher", "teacher adds"),
                          *[(ds, ds) for ds in heldout], ("flags", "flags"), ("commit", "commit")], **kwargs)

    def show(self, board: list[dict]) -> None:
        rows = []
        for sub in board:
            by_ds = {s["dataset"]: s for s in sub["scores"]}
            flags = ", ".join(f["kind"] for f in sub["open_flags"])
            rows.append((str(sub["id"]), (str(sub["id"]), sub["agent"], fmt.pgr_se(by_ds.get(self.dev)),
                                          fmt.dependence(sub["teacher_dependence"]),
                                          *[fmt.pgr_se(by_ds.get(ds)) for ds in self.heldout],
                                          Text(flags or "-", style="yellow" if flags else "dim"),
                                          (sub["commit_sha"] or "-")[:8])))
        self.sync(rows)
