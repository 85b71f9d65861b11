"""The pictures in docs/ (the README shows them), taken from a lab you have run: the dashboard as an SVG and the
report's figures.

    python bench/readme_figures.py [--config lab.toml] [--out docs]

Run it while (or after) the lab runs, e.g. ten minutes after `lab start --detach`. It opens the real
TUI headless at 160x48 on the lab's database, waits until the agents and the leaderboard are drawn,
saves `dashboard.svg` (Textual's own screenshot), and writes `lab report` into `report/` beside it.
"""
from __future__ import annotations

import argparse
import asyncio
import time
from pathlib import Path


async def dashboard_svg(cfg, config_path: Path, out: Path) -> None:
    from lab.tui.app import LabApp
    from lab.tui.widgets.agents_table import AgentsTable
    from lab.tui.widgets.leaderboard import Leaderboard

    app = LabApp(cfg, config_path)
    async with app.run_test(size=(160, 48)) as pilot:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            await pilot.pause(0.2)
            if app.screen.query_one(AgentsTable).row_count and app.screen.query_one(Leaderboard).row_count:
                break
        await pilot.pause(1.5)     # a second read, so CPU load is measured over an interval
        app.save_screenshot(filename=out.name, path=str(out.parent))


def main() -> None:
    from lab import config
    from lab.report import write_report
    from lab.store import open_db

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default="lab.toml", type=Path)
    parser.add_argument("--out", default=Path("docs"), type=Path)
    args = parser.parse_args()
    cfg = config.load(args.config)
    args.out.mkdir(parents=True, exist_ok=True)
    asyncio.run(dashboard_svg(cfg, args.config.resolve(), args.out / "dashboard.svg"))
    report = write_report(cfg, open_db(cfg.state_dir / "lab.db"), args.out / "report")
    print(f"wrote {args.out / 'dashboard.svg'} and {report.parent}/")


if __name__ == "__main__":
    main()
