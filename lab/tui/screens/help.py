"""Every key binding, by screen, generated from the bindings themselves so it cannot drift."""
from __future__ import annotations

from collections.abc import Sequence

from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Static


def key_label(key: str) -> str:
    names = {"question_mark": "?", "slash": "/", "plus": "+", "minus": "-", "equals_sign": "=", "escape": "esc"}
    return " or ".join(names.get(k, k) for k in key.split(","))


def bindings_table(sections: Sequence[tuple[str, Sequence[BindingType]]]) -> Group:
    parts: list[RenderableType] = [Text("lab: keys", style="bold"),
             Text("q leaves the TUI and the lab runs on; `lab tui` attaches again. ctrl+p opens the command "
                  "palette. The mouse selects rows, tabs and buttons.\n", style="dim")]
    for title, bindings in sections:
        table = Table(box=None, show_header=False, padding=(0, 2), title=title, title_justify="left",
                      title_style="bold cyan")
        table.add_column(width=10, style="bold")
        table.add_column()
        for item in bindings:
            b = item if isinstance(item, Binding) else Binding(*item)
            if b.description:
                table.add_row(key_label(b.key), b.description)
        parts += [table, Text("")]
    return Group(*parts)


class HelpScreen(ModalScreen[None]):
    BINDINGS = [Binding("escape,q,question_mark", "dismiss", "Close")]

    def __init__(self, sections: Sequence[tuple[str, Sequence[BindingType]]]):
        super().__init__()
        self.sections = sections

    def compose(self) -> ComposeResult:
        with VerticalScroll(classes="dialog tall"):
            yield Static(bindings_table(self.sections))
