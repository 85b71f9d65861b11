"""A screen refreshed from the store: `fetch` runs in a worker thread, `show` on the UI thread.

A screen acts by posting a message, which bubbles up to the app (`LabApp`, which handles each with `@on`); it reads
from the app through `lab_app`, typed. The messages are plain classes, not dataclasses: the app imports them all at
its start, and a dataclass takes half a millisecond to define.
"""
from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, cast

from textual.message import Message
from textual.screen import Screen

if TYPE_CHECKING:
    from lab.tui.app import LabApp


class LiveScreen(Screen):
    class OpenAgent(Message):
        """Open `agent`'s screen."""
        def __init__(self, agent: str) -> None:
            super().__init__()
            self.agent = agent

    class OpenThread(Message):
        """Open the forum at post `post_id`."""
        def __init__(self, post_id: int) -> None:
            super().__init__()
            self.post_id = post_id

    class OpenReview(Message):
        """Open the review at submission `submission_id`."""
        def __init__(self, submission_id: int) -> None:
            super().__init__()
            self.submission_id = submission_id

    @property
    def lab_app(self) -> LabApp:
        return cast("LabApp", self.app)

    def fetch(self, source) -> Any:   # noqa: ANN001 - a lab.tui.source.Source
        raise NotImplementedError

    def show(self, data: Any) -> None:
        raise NotImplementedError

    def on_screen_resume(self) -> None:
        self.lab_app.poll_now()

    def ask(self, dialog: Screen[Any], request: Callable[[Any], Message]) -> None:
        """Show `dialog`; if the person answers (a yes, or what they typed), post `request(answer)`."""
        def answered(answer: Any) -> None:
            if answer:
                self.post_message(request(answer))

        self.app.push_screen(dialog, answered)
