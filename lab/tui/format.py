"""Short, fixed-width renderings of the lab's numbers for tables and lines."""
from __future__ import annotations

import time

from rich.text import Text

STATE_STYLES = {"running": "green", "starting": "cyan", "paused": "yellow", "stopping": "yellow",
                "stopped": "dim", "crashed": "red", "failed": "bold red", "budget": "magenta", "stuck": "red"}
KIND_STYLES = {"turn": "bold", "tool_call": "cyan", "tool_result": "dim", "message": "bold yellow",
               "state": "magenta", "error": "bold red", "note": "green", "blocked": "bold red reverse"}


def duration(seconds: float | None) -> str:
    if not seconds:
        return "-"
    s = int(seconds)
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m{s % 60:02d}s"
    if s < 86400:
        return f"{s // 3600}h{s % 3600 // 60:02d}m"
    return f"{s // 86400}d{s % 86400 // 3600:02d}h"


def ago(then: float | None, now: float) -> str:
    return duration(max(0.0, now - then)) if then else "-"


def clock(then: float | None) -> str:
    return time.strftime("%m-%d %H:%M:%S", time.localtime(then)) if then else "-"


def tokens(n: int | None) -> str:
    n = n or 0
    if n >= 1_000_000:
        return f"{n / 1e6:.1f}M"
    if n >= 10_000:
        return f"{n / 1e3:.0f}k"
    return str(n)


def dollars(x: float | None) -> str:
    return f"${x or 0:.2f}"


def model(name: str | None, effort: str | None = None) -> str:
    """A Claude agent's model, short: "sonnet-5-5 high"; "-" for the other backends."""
    if not name:
        return "-"
    short = name.removeprefix("claude-")
    return f"{short} {effort}" if effort else short


def state(name: str) -> Text:
    return Text(name, style=STATE_STYLES.get(name, ""))


def bar(fraction: float, width: int = 10) -> str:
    filled = round(max(0.0, min(1.0, fraction)) * width)
    return "█" * filled + "░" * (width - filled)
