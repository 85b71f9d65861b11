"""The Textual TUI. Only this package imports Textual; it reads the store through `source.Source`."""
from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from lab.config import Config


def run_tui(cfg: Config, config_path: str = "lab.toml", refresh_s: float = 1.0) -> None:
    from lab.tui.app import run_tui as run

    run(cfg, config_path, refresh_s)
