"""Review: flagged submissions, the evidence of each flag, the method's diff; disqualify or clear a flag; and
below the flags, each agent's refused attempts to reach outside its sandbox.

The app imports this module at its start, for the messages below; syntax highlighting and the dialogs import when
first used, as they would cost the dashboard's first frame.
"""
from __future__ import annotations

import json

from rich.console import Group
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.message import Message
from textual.widgets import DataTable, Footer, Header, Static

from lab import score_text
from lab.store.scores import Flag, Submission
from lab.tui import format as fmt
from lab.tui.screens.live import LiveScreen
from lab.tui.source import BlockedAttempts, ReviewItem
from lab.tui.widgets.synced_table import SyncedTable


def status_of(sub: Submission) -> Text:
    if sub.disqualified:
        return Text("disqualified", style="red")
    if sub.open_flags:
        return Text("to review", style="yellow")
    return Text("cleared", style="green")


def blocked_counts(blocked: BlockedAttempts) -> str:
    """Attempts per agent, most first: the pane's subtitle."""
    if not blocked.per_agent:
        return "none so far"
    ranked = sorted(blocked.per_agent.items(), key=lambda item: (-item[1], len(item[0]), item[0]))
    return " · ".join(f"{agent} {count}" for agent, count in ranked)


def evidence_lines(flag: Flag) -> Text:
    text = Text()
    resolved = f"cleared: {flag.cleared_reason}" if flag.cleared_at else "open"
    text.append(f"{flag.kind}", style="bold yellow" if not flag.cleared_at else "bold green")
    text.append(f" (flag {flag.id}, {resolved})\n")
    text.append(f"  {flag.message}\n")
    for key, value in (flag.evidence or {}).items():
        shown = f"{value:+.3f}" if isinstance(value, float) else json.dumps(value, ensure_ascii=False)[:160]
        text.append(f"  {key}: ", style="dim")
        text.append(f"{shown}\n")
    return text


def detail(item: ReviewItem) -> Group:
    from rich.syntax import Syntax

    sub = item.submission
    head = Text.assemble((f"submission {sub.id}", "bold"), f" by {sub.agent}, {sub.path} at ",
                         ((sub.commit_sha or "(no commit)")[:10], "cyan"), f", {fmt.clock(sub.created)}  ",
                         status_of(sub))
    if sub.disqualified:
        head.append(f"\n  disqualified: {sub.disqualified_reason}", style="red")
    scores = Text("\n".join(f"  {s.dataset[:24]:<24} {s.role[:7]:<7} {score_text.score(s, tight=True):<13} "
                            f"acc {s.acc or 0:.3f}" for s in sub.scores))
    if sub.following:
        scores.append(f"\n  teacher check: {score_text.teacher_check(sub.following)}")
    flags = [evidence_lines(f) for f in sub.flags]
    return Group(head, Text("\nscores", style="bold"), scores, Text("\nflags and their evidence", style="bold"),
                 *flags, Text("the method against the scaffold (main)", style="bold"),
                 Syntax(item.diff, "diff", theme="ansi_dark", word_wrap=False))


class ReviewScreen(LiveScreen):
    BINDINGS = [Binding("D", "disqualify", "Disqualify"), Binding("c", "clear_flag", "Clear a flag")]

    class Disqualify(Message):
        """Disqualify submission `submission_id`: it leaves the leaderboard, kept with `reason`."""
        def __init__(self, submission_id: int, reason: str) -> None:
            super().__init__()
            self.submission_id, self.reason = submission_id, reason

    class ClearFlag(Message):
        """Clear flag `flag_id`, for `reason`."""
        def __init__(self, flag_id: int, reason: str) -> None:
            super().__init__()
            self.flag_id, self.reason = flag_id, reason

    def __init__(self):
        super().__init__()
        self.selected: int | None = None
        self.items: dict[int, Submission] = {}
        self.shown: ReviewItem | None = None

    def compose(self) -> ComposeResult:
        yield Header()
        with Horizontal(id="review-body"):
            with Vertical(id="flagged-pane", classes="pane"):
                yield SyncedTable([("id", "#"), ("agent", "agent"), ("private", "private PGR"), ("public", "public PGR"),
                                   ("flags", "flags"), ("status", "status")], id="flagged")
            with VerticalScroll(id="evidence-pane", classes="pane"):
                yield Static("no flagged submission selected", id="evidence")
        with Vertical(id="blocked-pane", classes="pane"):
            yield SyncedTable([("when", "when"), ("agent", "agent"), ("summary", "attempt")], id="blocked")
        yield Footer()

    def on_mount(self) -> None:
        self.query_one("#flagged-pane").border_title = "flagged submissions (D: disqualify, c: clear a flag)"
        self.query_one("#blocked-pane").border_title = "blocked attempts (enter: the agent)"
        self.query_one("#flagged", SyncedTable).focus()

    def fetch(self, source) -> tuple[list[Submission], ReviewItem | None, BlockedAttempts]:
        subs = source.review()
        chosen = self.selected if self.selected is not None else (subs[0].id if subs else None)
        return subs, source.submission(chosen) if chosen is not None else None, source.blocked()

    def show(self, data: tuple[list[Submission], ReviewItem | None, BlockedAttempts]) -> None:
        subs, item, blocked = data
        self.query_one("#blocked", SyncedTable).sync([
            (str(b["id"]), (fmt.clock(b["created"]), b["agent"], b["summary"] or "")) for b in blocked.latest])
        self.query_one("#blocked-pane").border_subtitle = Text(blocked_counts(blocked))
        self.items = {s.id: s for s in subs}
        flagged = self.query_one("#flagged", SyncedTable)
        flagged.sync([
            (str(s.id), (str(s.id), s.agent, score_text.pgr(s.private_pgr), score_text.pgr(s.dev_pgr),
                         score_text.flags(sorted({f.kind for f in s.flags})), status_of(s))) for s in subs])
        if self.selected is not None and flagged.selected_key != str(self.selected):
            flagged.select_key(str(self.selected))     # asked for before the table had its rows
        self.query_one("#flagged-pane").border_subtitle = \
            f"{sum(bool(s.open_flags) and not s.disqualified for s in subs)} to review"
        if item is not None:
            if self.selected is None:
                self.selected = item.submission.id
                self.items[self.selected] = item.submission
            self.shown = item
            self.query_one("#evidence", Static).update(detail(item))

    def select(self, submission_id: int) -> None:
        self.selected = submission_id
        for table in self.query("#flagged").results(SyncedTable):    # none yet if the screen is still composing
            table.select_key(str(submission_id))
        self.lab_app.poll_now()

    def on_data_table_row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        if event.data_table.id != "flagged":
            return
        if event.row_key and event.row_key.value and int(event.row_key.value) != self.selected:
            self.selected = int(event.row_key.value)
            self.lab_app.poll_now()

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        if event.data_table.id == "blocked" and event.row_key.value is not None:
            event.stop()
            self.post_message(self.OpenAgent(str(event.data_table.get_cell(event.row_key, "agent"))))

    def action_disqualify(self) -> None:
        if self.selected is None:
            self.notify("select a submission first", severity="warning")
            return
        from lab.tui.screens.dialogs import PromptScreen

        submission_id = self.selected
        self.ask(PromptScreen(f"Disqualify submission {submission_id}: why? (it leaves the leaderboard, kept with the "
                              "reason)", "the reason"), lambda got: self.Disqualify(submission_id, got["text"]))

    def action_clear_flag(self) -> None:
        sub = self.items.get(self.selected) if self.selected is not None else None
        if not sub or not sub.open_flags:
            self.notify("this submission has no open flag", severity="warning")
            return
        from lab.tui.screens.dialogs import PromptScreen

        flags = [(f"{f.kind} (flag {f.id})", str(f.id)) for f in sub.open_flags]
        self.ask(PromptScreen(f"Clear a flag of submission {sub.id}: which, and why?", "the reason", choices=flags),
                 lambda got: self.ClearFlag(int(got["choice"]), got["text"]))
