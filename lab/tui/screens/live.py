"""A screen refreshed from the store: `fetch` runs in a worker thread, `show` on the UI thread."""
from __future__ import annotations

from typing import Any

from textual.screen import Screen


class LiveScreen(Screen):
    def fetch(self, source) -> Any:   # noqa: ANN001 - a lab.tui.source.Source
        raise NotImplementedError

    def show(self, data: Any) -> None:
        raise NotImplementedError

    def on_screen_resume(self) -> None:
        self.app.poll_now()
