"""`lab report`: a lab run as one shareable folder, Markdown plus PNG figures.

Everything is written into a temporary folder beside the output and renamed into place at the end,
so a failure leaves nothing half-written and a previous report is replaced whole or not at all.
"""
from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

from lab.errors import LabError

if TYPE_CHECKING:
    from lab.settings import Settings
    from lab.store import Database

REPORT_FILE = "report.md"

__all__ = ["REPORT_FILE", "ReportError", "check_destination", "write", "write_report"]


class ReportError(LabError):
    """The report cannot be written where it was asked to go."""


def _outputs() -> set[str]:
    from lab.report.figures import PGR_FIGURE, SPEND_FIGURE

    return {REPORT_FILE, PGR_FIGURE, SPEND_FIGURE}


def check_destination(out_dir: Path) -> None:
    """The folder must be new, empty, or a previous report: never a file, never someone's other files."""
    if out_dir.exists() and not out_dir.is_dir():
        raise ReportError(f"{out_dir} is a file; expected a folder for the report "
                          f"(a new one, an empty one, or a previous report to replace)")
    if out_dir.is_dir():
        others = sorted(p.name for p in out_dir.iterdir() if p.name not in _outputs())
        if others:
            shown = ", ".join(others[:3]) + (f" and {len(others) - 3} more" if len(others) > 3 else "")
            raise ReportError(f"{out_dir} holds files that are not a report ({shown}); expected a new or empty "
                              f"folder, or a previous report to replace")
        return
    above = next(p for p in out_dir.parents if p.exists())
    if not above.is_dir():
        raise ReportError(f"{above} is a file; expected a folder to hold the report {out_dir}")


def write_report(cfg: Settings, db: Database, out_dir: Path | str) -> Path:
    """Write the report of the lab into out_dir and return the path of its Markdown file."""
    from lab.report.gather import gather

    check_destination(Path(out_dir).absolute())
    return write(gather(cfg, db), out_dir)


def write(report, out_dir: Path | str) -> Path:
    """Write a gathered report into out_dir (staged beside it, then renamed into place)."""
    from lab.report import figures, markdown

    out_dir = Path(out_dir).absolute()
    check_destination(out_dir)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.", suffix=".tmp", dir=out_dir.parent))
    try:
        figures.pgr_over_time(report, staging / figures.PGR_FIGURE)
        figures.spend_per_agent(report, staging / figures.SPEND_FIGURE)
        (staging / REPORT_FILE).write_text(markdown.render(report), encoding="utf-8")
        os.chmod(staging, 0o755)  # mkdtemp makes it private; a report is for sharing
        _replace(staging, out_dir)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return out_dir / REPORT_FILE


def _replace(staging: Path, out_dir: Path) -> None:
    if not out_dir.exists():
        staging.rename(out_dir)
        return
    old = out_dir.with_name(f".{out_dir.name}.old-{os.getpid()}")
    out_dir.rename(old)
    try:
        staging.rename(out_dir)
    except BaseException:
        old.rename(out_dir)
        raise
    shutil.rmtree(old, ignore_errors=True)
