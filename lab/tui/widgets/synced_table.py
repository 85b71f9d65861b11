"""A DataTable that takes the whole set of rows each refresh and changes only what changed.

Cells that differ are updated in place; rows are rebuilt only when the set or order of keys changes,
and then the cursor stays on the row it was on. Either way Textual repaints once, so a table refreshed
every second while nine agents write does not flicker or lose the person's place.

A DataTable reads a str cell as console markup; agents write most cells, so every str cell is taken as
plain text, kept on one line and inert: a title `[@click=app.quit]` shows as typed.
"""
from __future__ import annotations

from rich.text import Text
from textual.widgets import DataTable

from lab.inert import inert_line


def plain(cell):
    """A str cell as literal text on one line (what DataTable draws for a str, less the markup); others as they are."""
    return Text(inert_line(cell), no_wrap=True, end="") if isinstance(cell, str) else cell


class SyncedTable(DataTable):
    DEFAULT_CSS = "SyncedTable { height: 1fr; }"

    def __init__(self, columns: list[tuple[str, str]], **kwargs):
        super().__init__(cursor_type="row", zebra_stripes=True, **kwargs)
        self._columns = columns
        self._wanted: str | None = None     # a row asked for before it arrived

    def on_mount(self) -> None:
        for key, label in self._columns:
            self.add_column(label, key=key)

    @property
    def selected_key(self) -> str | None:
        if not self.row_count:
            return None
        key = self.coordinate_to_cell_key(self.cursor_coordinate).row_key
        return key.value if key else None

    def sync(self, rows: list[tuple[str, tuple]]) -> None:
        rows = [(key, tuple(plain(c) for c in cells)) for key, cells in rows]
        keys = [k for k, _ in rows]
        current = [k.value for k in self.rows]
        if keys != current:
            selected = self._wanted if self._wanted in keys else self.selected_key
            if self._wanted in keys:
                self._wanted = None
            self.clear()
            for key, cells in rows:
                self.add_row(*cells, key=key)
            if selected in keys:
                self.move_cursor(row=keys.index(selected), animate=False, scroll=False)
            return
        column_keys = [key for key, _ in self._columns]
        for key, cells in rows:
            for column, value in zip(column_keys, cells):
                if self.get_cell(key, column) != value:
                    self.update_cell(key, column, value)

    def select_key(self, key: str) -> None:
        """Put the cursor on a row, now or as soon as a refresh brings it."""
        keys = [k.value for k in self.rows]
        if key in keys:
            self._wanted = None
            self.move_cursor(row=keys.index(key))
        else:
            self._wanted = key
