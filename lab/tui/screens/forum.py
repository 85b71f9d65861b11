"""The forum: threads newest first (or a full-text search), one thread with its comments, posting as the person.

The app imports this module at its start, for the messages below; Markdown and the dialogs import when first used,
as they would cost the dashboard's first frame.
"""
from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.message import Message
from textual.widgets import DataTable, Footer, Header, Input

from lab.errors import NotFound
from lab.tui import format as fmt
from lab.tui.screens.live import LiveScreen
from lab.tui.source import ForumView
from lab.tui.widgets.posts import PostsTable, claimed_pgr


def thread_markdown(thread: dict) -> str:
    head = f"## #{thread['id']} {thread['title']}\n\n*{thread['kind']}* by **{thread['author']}**, " \
           f"{fmt.clock(thread['created'])}, votes {thread['score']:+d}"
    if thread["commit_sha"]:
        head += f", commit `{thread['commit_sha'][:10]}`"
    if claimed_pgr(thread):
        head += f", PGR {claimed_pgr(thread)}"
    parts = [head, thread["body"] or ""]
    if thread["comment_list"]:
        parts.append(f"### {len(thread['comment_list'])} comments")
        parts += [f"**{c['author']}** ({fmt.clock(c['created'])}): {c['body']}" for c in thread["comment_list"]]
    return "\n\n".join(parts)


class ForumScreen(LiveScreen):
    BINDINGS = [Binding("slash", "search", "Search"), Binding("escape", "clear", "Clear search", show=False),
                Binding("n", "new_post", "New post"), Binding("c", "comment", "Comment"),
                Binding("plus,equals_sign", "vote(1)", "Vote +1"), Binding("minus", "vote(-1)", "Vote -1")]

    class Post(Message):
        """Post to the forum as the person, then open the post."""
        def __init__(self, title: str, body: str) -> None:
            super().__init__()
            self.title, self.body = title, body

    class Comment(Message):
        """Comment on post `post_id` as the person."""
        def __init__(self, post_id: int, body: str) -> None:
            super().__init__()
            self.post_id, self.body = post_id, body

    class Vote(Message):
        """Vote `value` (+1 or -1) on post `post_id` as the person."""
        def __init__(self, post_id: int, value: int) -> None:
            super().__init__()
            self.post_id, self.value = post_id, value

    def __init__(self):
        super().__init__()
        self.query_text: str | None = None
        self.open_post: int | None = None
        self.shown_thread: str | None = None      # the thread's text last given to its Markdown

    def compose(self) -> ComposeResult:
        from textual.widgets import Markdown

        yield Header()
        yield Input(placeholder="/ to search the forum (full text; escape clears)", id="search")
        with Horizontal(id="forum-body"):
            with Vertical(id="threads-pane", classes="pane"):
                yield PostsTable(id="threads")
            with VerticalScroll(id="thread-pane", classes="pane"):
                yield Markdown("*select a thread*", id="thread", open_links=False)   # agents write these links
        yield Footer()

    def on_mount(self) -> None:
        self.query_one(PostsTable).focus()

    def fetch(self, source) -> tuple[ForumView, dict | None, float]:
        view = source.forum(self.query_text)
        thread = None
        if self.open_post is not None:
            try:
                thread = source.thread(self.open_post)
            except NotFound:    # a thread deleted under us is simply not shown
                thread = None
        return view, thread, source.clock()

    def show(self, data: tuple[ForumView, dict | None, float]) -> None:
        view, thread, now = data
        table = self.query_one(PostsTable)
        table.show(view.posts, now)
        if self.open_post is not None and table.selected_key != str(self.open_post):
            table.select_key(str(self.open_post))      # asked for before the table had its rows
        pane = self.query_one("#threads-pane")
        # Text, not str: a border title is read as markup, and the query and its error quote what was typed
        pane.border_title = Text(f"search: {view.query}") if view.query else "threads, newest first"
        pane.border_subtitle = Text(view.error) if view.error else f"{len(view.posts)} shown"
        if thread is not None:
            from textual.widgets import Markdown

            text = thread_markdown(thread)
            markdown = self.query_one("#thread", Markdown)
            if self.shown_thread != text and markdown.is_mounted:   # see AgentScreen.show
                self.shown_thread = text
                markdown.update(text)
        if self.open_post is None and view.posts:
            self.open_post = view.posts[0]["id"]
            self.lab_app.poll_now()

    def on_data_table_row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        if event.row_key and event.row_key.value and int(event.row_key.value) != self.open_post:
            self.open_post = int(event.row_key.value)
            self.lab_app.poll_now()

    def open_thread(self, post_id: int) -> None:
        self.open_post = post_id
        for table in self.query(PostsTable):    # none yet if the screen is still composing
            table.select_key(str(post_id))
        self.lab_app.poll_now()

    def action_search(self) -> None:
        self.query_one("#search", Input).focus()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        self.query_text = event.value.strip() or None
        self.open_post = None
        self.query_one(PostsTable).focus()
        self.lab_app.poll_now()

    def action_clear(self) -> None:
        search = self.query_one("#search", Input)
        search.value = ""
        self.query_text = None
        self.open_post = None
        self.query_one(PostsTable).focus()
        self.lab_app.poll_now()

    def action_new_post(self) -> None:
        from lab.tui.screens.dialogs import PostScreen

        self.ask(PostScreen(), lambda got: self.Post(got["title"], got["body"]))

    def action_comment(self) -> None:
        if self.open_post is None:
            self.notify("select a thread first", severity="warning")
            return
        from lab.tui.screens.dialogs import PromptScreen

        post_id = self.open_post
        self.ask(PromptScreen(f"Comment on #{post_id}, as the person", "your comment"),
                 lambda got: self.Comment(post_id, got["text"]))

    def action_vote(self, value: int) -> None:
        if self.open_post is None:
            self.notify("select a thread first", severity="warning")
            return
        self.post_message(self.Vote(self.open_post, value))
