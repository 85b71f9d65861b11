"""The leaderboard: private dev PGR (which ranks it) and public dev PGR with their standard errors, each held-out
set's PGR, how far the predictions follow the teacher, and open flags."""
from __future__ import annotations

from rich.text import Text

from lab.scorer.teacher_check import short
from lab.tui import format as fmt
from lab.tui.widgets.synced_table import SyncedTable


class Leaderboard(SyncedTable):
    def __init__(self, dev: str, private: str, heldout: list[str], **kwargs):
        self.dev, self.private, self.heldout = dev, private, heldout
        super().__init__([("id", "#"), ("agent", "agent"), ("private", "private dev"), ("public", "public dev"),
                          *[(ds, ds) for ds in heldout], ("teacher", "follows teacher"), ("flags", "flags"),
                          ("commit", "commit")], **kwargs)

    def show(self, board: list[dict]) -> None:
        rows = []
        for sub in board:
            by_ds = {s["dataset"]: s for s in sub["scores"]}
            flags = ", ".join(f["kind"] for f in sub["open_flags"])
            rows.append((str(sub["id"]), (str(sub["id"]), sub["agent"], fmt.pgr_se(by_ds.get(self.private)),
                                          fmt.pgr_se(by_ds.get(self.dev)),
                                          *[fmt.pgr_se(by_ds.get(ds)) for ds in self.heldout],
                                          short(sub["teacher_dependence"]),
                                          Text(flags or "-", style="yellow" if flags else "dim"),
                                          (sub["commit_sha"] or "-")[:8])))
        self.sync(rows)
