"""The TUI's first frame shows the machine's real CPU, and `q` does not wait for a read still in flight."""
from __future__ import annotations

import subprocess
import sys
import threading
import time

import pytest

from tui_helpers import make_app, run, seeded_lab, until


@pytest.fixture
def busy_core():
    """A process that keeps one core busy, so that the machine's CPU is not 0 % whatever else runs."""
    proc = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    time.sleep(0.3)
    yield
    proc.kill()
    proc.wait()


def test_the_first_reading_of_the_load_is_the_real_cpu_from_any_thread(busy_core):
    from lab.machine import CpuMeter, read_load

    first = []
    reader = threading.Thread(target=lambda: first.append(read_load(with_gpus=False)))  # as a TUI worker reads
    reader.start()
    reader.join()
    assert first[0].cpu_percent > 0
    # a fresh meter's first reading waits out its shortest span rather than reading nothing
    meter = CpuMeter(min_span_s=0.2)
    begin = time.monotonic()
    assert meter.percent() > 0
    assert time.monotonic() - begin >= 0.2
    # and each later reading, from whichever thread, averages since the one before
    later = []
    threads = [threading.Thread(target=lambda: later.append(meter.percent())) for _ in range(3)]
    for t in threads:
        t.start()
        t.join()
    assert all(0 < value <= 100 for value in later)


def test_the_dashboards_first_frame_shows_the_real_cpu(tmp_path, busy_core):
    from lab.tui.widgets.load_line import LoadLine

    cfg = seeded_lab(tmp_path)

    async def scenario():
        app = make_app(cfg, frozen=False)     # the machine's own load, as `lab tui` reads it
        async with app.run_test(size=(160, 48)) as pilot:
            line = app.screen.query_one(LoadLine)
            await until(pilot, lambda: "CPU" in str(line.render()), what="the first load line")
            shown = str(line.render())
            percent = float(shown.split("CPU", 1)[1].split("%", 1)[0])
            assert percent > 0, shown

    run(scenario)


def test_quitting_does_not_wait_for_a_read_in_flight(tmp_path):
    from lab.tui.app import LabApp
    from lab.tui.source import Source

    cfg = seeded_lab(tmp_path)
    started, release = threading.Event(), threading.Event()

    def slow_load():       # a read that takes long, as one does beside nine busy agents
        started.set()
        release.wait(30)

    async def scenario():
        app = LabApp(cfg, cfg.root / "lab.toml", source=Source(cfg, load=slow_load), refresh_s=0.2)
        async with app.run_test(size=(160, 48)) as pilot:
            await until(pilot, started.is_set, what="a read in flight")
            await pilot.press("q")

    begin = time.monotonic()
    try:
        run(scenario)
        assert time.monotonic() - begin < 10
    finally:
        release.set()
