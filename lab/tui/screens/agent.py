"""One agent: its live transcript, notebook, commits with their diffs, and submissions."""
from __future__ import annotations

from rich.syntax import Syntax
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, VerticalScroll
from textual.widgets import DataTable, Footer, Header, Markdown, RichLog, Static, TabbedContent, TabPane

from lab import score_text
from lab.inert import inert_line
from lab.tui import format as fmt
from lab.tui.screens.agent_keys import AGENT_BINDINGS, AgentKeys
from lab.tui.source import AgentView
from lab.tui.widgets.synced_table import SyncedTable

COMMITS_EVERY_S = 5.0


def event_line(event: dict) -> Text:
    line = Text(fmt.clock(event["created"])[6:] + " ", style="dim")
    kind = event["kind"]
    line.append(f"{kind:<11} ", style=fmt.KIND_STYLES.get(kind, ""))
    line.append(inert_line(event["summary"]), style="yellow" if kind == "message" else "")
    return line


class AgentScreen(AgentKeys):
    BINDINGS = [Binding("escape", "app.pop_screen", "Back"), Binding("1", "tab('transcript')", "Transcript"),
                Binding("2", "tab('notebook')", "Notebook"), Binding("3", "tab('commits')", "Commits"),
                Binding("4", "tab('submissions')", "Submissions"), *AGENT_BINDINGS]

    def __init__(self, name: str):
        super().__init__()
        self.agent_name = name
        self.last_event = 0
        self.shown_notebook: str | None = None
        self.commits_fetched = 0.0
        self.shown_commit: str | None = None
        self.diff_text = ""
        self.active_tab: str | None = "transcript"

    def compose(self) -> ComposeResult:
        yield Header()
        yield Static(id="agent-line")
        with TabbedContent(initial="transcript"):
            with TabPane("Transcript", id="transcript"):
                yield RichLog(id="log", max_lines=5000, wrap=True, markup=False)
            with TabPane("Notebook", id="notebook"):
                with VerticalScroll():
                    yield Markdown(id="notes", open_links=False)   # the agent wrote these links
            with TabPane("Commits", id="commits"):
                with Horizontal():
                    yield SyncedTable([("sha", "commit"), ("when", "when"), ("subject", "subject")], id="commit-list")
                    with VerticalScroll(id="diff-pane"):
                        yield Static(id="diff")
            with TabPane("Submissions", id="submissions"):
                yield SyncedTable([("id", "#"), ("when", "when"), ("status", "status"), ("scores", "PGR per dataset"),
                                   ("flags", "flags"), ("commit", "commit")], id="subs")
        yield Footer()

    def on_mount(self) -> None:
        self.sub_title = self.agent_name

    def selected_agent(self) -> str | None:
        return self.agent_name

    def action_tab(self, tab: str) -> None:
        self.query_one(TabbedContent).active = tab

    def on_tabbed_content_tab_activated(self, event: TabbedContent.TabActivated) -> None:
        self.active_tab = event.pane.id
        self.lab_app.poll_now()

    def fetch(self, source) -> tuple[AgentView, list | None]:
        view = source.agent(self.agent_name, self.last_event)
        commits = None
        # commits_fetched moves only when a read is shown: a read that a newer one supersedes shows nothing
        if self.active_tab == "commits" and view.now - self.commits_fetched > COMMITS_EVERY_S:
            commits = source.commits(self.agent_name)
        return view, commits

    def show(self, data: tuple[AgentView, list | None]) -> None:
        view, commits = data
        row = view.row
        doing = inert_line(row["step"] if row["state"] in ("running", "starting") else row["reason"]) or "-"
        model = f" {fmt.model(row.get('model'), row.get('effort'))}" if row.get("model") else ""
        line = Text.assemble((f"{row['name']} ", "bold"), fmt.state(row["state"]),
                             f"  {row['backend'] or '-'}{model} · {row['slice'] or '-'} · "
                             f"{fmt.tokens((row['tokens_in'] or 0) + (row['tokens_out'] or 0))} tokens · "
                             f"{fmt.dollars(row['dollars'])} · {row['experiments']} exps · "
                             f"restarts {row['restarts']}\n", ("direction: ", "dim"),
                             f"{inert_line(row['direction']) or '-'}\n", ("now: ", "dim"), doing)
        self.query_one("#agent-line", Static).update(line)
        log = self.query_one(RichLog)
        width = log.scrollable_content_region.width or None   # wrap to the log's width once it has one
        for event in view.events:
            log.write(event_line(event), width=width)
            self.last_event = event["id"]
        notes = self.query_one("#notes", Markdown)
        # before its own mount a Markdown would overwrite an update with its initial text: wait for the next read
        if view.notebook != self.shown_notebook and notes.is_mounted:
            self.shown_notebook = view.notebook
            notes.update(view.notebook or "*the notebook is empty*")
        self.query_one("#subs", SyncedTable).sync([
            (str(s.id), (str(s.id), fmt.ago(s.created, view.now), s.status if not s.disqualified else "disqualified",
                         "  ".join(f"{x.dataset} {score_text.score(x, tight=True)}" for x in s.scores)
                         or (s.error or "")[:60], score_text.flags(s.open_flag_kinds), (s.commit_sha or "-")[:8]))
            for s in view.submissions])
        if commits is not None:
            table = self.query_one("#commit-list", SyncedTable)
            table.sync([(c.sha, (c.sha[:8], fmt.ago(c.time, view.now), c.subject[:70])) for c in commits])
            self.commits_fetched = view.now
            if self.shown_commit is None and commits:
                self.show_commit(commits[0].sha)

    def on_data_table_row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        if event.data_table.id == "commit-list" and event.row_key.value and event.row_key.value != self.shown_commit:
            self.show_commit(event.row_key.value)

    def show_commit(self, sha: str) -> None:
        self.shown_commit = sha
        source = self.lab_app.source

        def load() -> None:
            self.app.call_from_thread(self._show_diff, source.show_commit(sha))

        self.run_worker(load, thread=True, exclusive=True, group="diff")

    def _show_diff(self, diff: str) -> None:
        self.diff_text = diff
        if self.is_attached:
            self.query_one("#diff", Static).update(Syntax(diff, "diff", theme="ansi_dark", word_wrap=False))
