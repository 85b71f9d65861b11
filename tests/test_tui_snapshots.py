"""Screenshots of the main screens at 80x24 and at 160x48, on a seeded lab with a stopped clock.

Regenerate after an intended change of the look: `pytest tests/test_tui_snapshots.py --snapshot-update`,
then read the SVGs in tests/__snapshots__/ before committing them.
"""
from __future__ import annotations

import os
import time

import pytest

from tui_helpers import make_app, seeded_lab, until

SMALL, LARGE = (80, 24), (160, 48)


@pytest.fixture(scope="module")
def cfg(tmp_path_factory):
    zone = os.environ.get("TZ")
    os.environ["TZ"] = "UTC"     # the transcript and threads print clock times
    time.tzset()
    yield seeded_lab(tmp_path_factory.mktemp("snap"), "tiny")
    if zone is None:
        os.environ.pop("TZ")
    else:
        os.environ["TZ"] = zone
    time.tzset()


def shown(*keys: str, ready=None):
    """A run_before that presses keys, then waits until the screen has drawn its data."""
    async def run_before(pilot) -> None:
        from lab.tui.screens.live import LiveScreen

        app = pilot.app
        await until(pilot, lambda: app.sub_title, what="the first read")
        # and one more, drawn whole, so that the screen's tables have settled before a key covers or leaves them
        await until(pilot, lambda: not app._in_flight, what="the first read drawn")
        generation = app._generation
        app.poll_now()
        await until(pilot, lambda: app._generation > generation and not app._in_flight, what="a second read drawn")
        await pilot.pause(0.2)
        for key in keys:
            await pilot.press(key)
            await pilot.pause(0.1)
        screen = app.screen
        if isinstance(screen, LiveScreen):
            generation = app._generation
            await until(pilot, lambda: app._generation >= generation and not app._in_flight)
        if ready:
            await until(pilot, lambda: ready(app))
        await pilot.pause(0.3)

    return run_before


@pytest.mark.parametrize("size", [SMALL, LARGE], ids=["80x24", "160x48"])
def test_dashboard(snap_compare, cfg, size):
    assert snap_compare(make_app(cfg, refresh_s=60), terminal_size=size,
                        run_before=shown(ready=lambda app: app.screen.query_one("#agents").row_count == 9))


@pytest.mark.parametrize("size", [SMALL, LARGE], ids=["80x24", "160x48"])
def test_agent_transcript(snap_compare, cfg, size):
    assert snap_compare(make_app(cfg, refresh_s=60), terminal_size=size,
                        run_before=shown("down", "enter", ready=lambda app: app.screen.last_event > 0))


@pytest.mark.parametrize("size", [SMALL, LARGE], ids=["80x24", "160x48"])
def test_forum(snap_compare, cfg, size):
    assert snap_compare(make_app(cfg, refresh_s=60), terminal_size=size,
                        run_before=shown("f", ready=lambda app: app.screen.query_one("#threads").row_count > 0))


@pytest.mark.parametrize("size", [SMALL, LARGE], ids=["80x24", "160x48"])
def test_review(snap_compare, cfg, size):
    assert snap_compare(make_app(cfg, refresh_s=60), terminal_size=size,
                        run_before=shown("v", ready=lambda app: app.screen.shown is not None))


def test_help_80x24(snap_compare, cfg):
    assert snap_compare(make_app(cfg, refresh_s=60), terminal_size=SMALL, run_before=shown("question_mark"))
