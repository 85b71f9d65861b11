"""Shared by the TUI tests: a seeded lab folder, a fixed clock and load, and waiting inside a Pilot run."""
from __future__ import annotations

import asyncio
import time
from pathlib import Path

from conftest import write_config
from seeding import seed_preset

# 2026-11-26 12:00 UTC: the seeded history ends here and the app's clock stands still here
NOW = 1795694400.0


def seeded_lab(folder: Path, preset: str = "small") -> object:
    from lab import config
    from lab.store import open_db

    write_config(folder)
    cfg = config.load(folder / "lab.toml")
    db = open_db(cfg.state_dir / "lab.db")
    seed_preset(db, preset, end=NOW)
    db.conn.close()
    return cfg


def fixed_load():
    from lab.machine import GpuLoad, Load

    return Load(cpu_percent=41.0, cpus=16, memory_used_mb=52_000, memory_total_mb=131_072,
                gpus=[GpuLoad(0, "NVIDIA H200", 87.0, 61_440, 143_771)])


def make_app(cfg, frozen: bool = True, refresh_s: float = 0.2):
    from lab.tui.app import LabApp
    from lab.tui.source import Source

    source = Source(cfg, clock=lambda: NOW, load=fixed_load) if frozen else Source(cfg)
    return LabApp(cfg, cfg.root / "lab.toml", source=source, refresh_s=refresh_s)


async def until(pilot, predicate, timeout: float = 10.0, what: str = "the screen to show it"):
    """Let the app run (workers, timers) until predicate() holds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        await pilot.pause(0.05)
        try:
            if predicate():
                return
        except Exception:   # a widget not mounted yet
            pass
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


def run(scenario) -> None:
    asyncio.run(scenario())


def as_text(renderable, width: int = 120) -> str:
    """What a Rich renderable shows, as plain text."""
    from rich.console import Console

    console = Console(width=width, record=True, file=open("/dev/null", "w"))
    console.print(renderable)
    return console.export_text()
