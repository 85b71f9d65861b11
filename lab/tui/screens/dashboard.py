"""The dashboard: agents, leaderboard, best PGR over time, newest posts and the machine's load."""
from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Container, Vertical
from textual.widgets import DataTable, Footer, Header, Label

from lab.tui.screens.agent_keys import AGENT_BINDINGS, AgentKeys
from lab.tui.source import Dashboard
from lab.tui.widgets.agents_table import AgentsTable
from lab.tui.widgets.leaderboard import Leaderboard
from lab.tui.widgets.load_line import LoadLine
from lab.tui.widgets.pgr_chart import PgrChart
from lab.tui.widgets.posts import PostsTable


class DashboardScreen(AgentKeys):
    BINDINGS = [Binding("enter", "open", "Open", show=False), Binding("g", "toggle_chart", "Chart: agents/lab"),
                *AGENT_BINDINGS]

    def compose(self) -> ComposeResult:
        cfg = self.lab_app.cfg
        yield Header()
        yield LoadLine(id="load")
        with Vertical(id="agents-pane", classes="pane"):
            yield AgentsTable(id="agents")
        with Container(id="lower"):
            with Vertical(id="board-pane", classes="pane"):
                yield Label("leaderboard (enter: review)", classes="pane-title")
                yield Leaderboard(cfg.task.dev, cfg.task.private, cfg.task.heldout, id="board")
            with Vertical(id="chart-pane", classes="pane"):
                yield PgrChart(id="chart")
            with Vertical(id="posts-pane", classes="pane"):
                yield Label("newest forum posts (enter: read)", classes="pane-title")
                yield PostsTable(id="posts")
        yield Footer()

    def on_mount(self) -> None:
        self.query_one("#agents-pane").border_title = "agents (enter: open, m: message, p/r: pause/resume)"
        self.query_one(AgentsTable).focus()

    def fetch(self, source) -> Dashboard:
        return source.dashboard()

    def show(self, data: Dashboard) -> None:
        self.query_one(LoadLine).show(data.load, data.gpu_queue, data.cluster)
        self.query_one(AgentsTable).show(data.status)
        self.query_one(Leaderboard).show(data.leaderboard)
        self.query_one(PgrChart).show(data.series, data.baselines, data.now)
        self.query_one(PostsTable).show(data.posts, data.now)
        lab = data.status["lab"]
        self.query_one("#agents-pane").border_subtitle = (
            f"{sum(a['state'] == 'running' for a in data.status['agents'])}/{len(data.status['agents'])} running")
        self.query_one("#board-pane").border_subtitle = f"{lab['submissions']} submissions"
        self.query_one("#posts-pane").border_subtitle = f"{lab['forum_posts']} posts"

    def selected_agent(self) -> str | None:
        return self.query_one(AgentsTable).selected_key

    def action_toggle_chart(self) -> None:
        self.query_one(PgrChart).toggle_agents()
        self.lab_app.poll_now()

    def action_open(self, table: DataTable | None = None) -> None:
        focused = table or self.focused
        if isinstance(focused, AgentsTable) and focused.selected_key:
            self.post_message(self.OpenAgent(focused.selected_key))
        elif isinstance(focused, Leaderboard) and focused.selected_key:
            self.post_message(self.OpenReview(int(focused.selected_key)))
        elif isinstance(focused, PostsTable) and focused.selected_key:
            self.post_message(self.OpenThread(int(focused.selected_key)))

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        event.stop()
        self.action_open(event.data_table)
