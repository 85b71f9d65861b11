"""The Textual TUI. Only this package imports Textual; it reads the store through `source.Source`."""


def run_tui(cfg, config_path="lab.toml", refresh_s: float = 1.0) -> None:
    from lab.tui.app import run_tui as run

    run(cfg, config_path, refresh_s)
