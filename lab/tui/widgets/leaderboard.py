"""The leaderboard: private dev PGR (which ranks it) and public dev PGR with their standard errors, each held-out
set's PGR, how far the predictions follow the teacher, and open flags."""
from __future__ import annotations

from rich.text import Text

from lab import score_text
from lab.store.scores import Submission
from lab.tui.widgets.synced_table import SyncedTable


class Leaderboard(SyncedTable):
    def __init__(self, dev: str, private: str, heldout: list[str], **kwargs):
        self.dev, self.private, self.heldout = dev, private, heldout
        super().__init__([("id", "#"), ("agent", "agent"), ("private", "private dev"), ("public", "public dev"),
                          *[(ds, ds) for ds in heldout], ("teacher", "follows teacher"), ("flags", "flags"),
                          ("commit", "commit")], **kwargs)

    def show(self, board: list[Submission]) -> None:
        rows = []
        for sub in board:
            *figures, flags = score_text.board_row(sub, self.private, self.dev, self.heldout, tight=True)
            rows.append((str(sub.id), (str(sub.id), sub.agent, *figures,
                                       Text(flags, style="yellow" if sub.open_flags else "dim"),
                                       (sub.commit_sha or "-")[:8])))
        self.sync(rows)
