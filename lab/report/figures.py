"""The report's two PNG figures: best private dev PGR over time, and spend and experiments per agent."""
from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only: no display, safe from any thread or process
import matplotlib.pyplot as plt  # noqa: E402

from lab.report.gather import Report  # noqa: E402

PGR_FIGURE = "pgr_over_time.png"
SPEND_FIGURE = "spend_per_agent.png"
DPI = 120
DASHES = ["--", "-.", ":", (0, (8, 3)), (0, (3, 1, 1, 1, 1, 1)), (0, (1, 4))]  # one per baseline, told apart


def _empty(ax, text: str) -> None:
    ax.text(0.5, 0.5, text, ha="center", va="center", transform=ax.transAxes, color="0.4")
    ax.set_xticks([])
    ax.set_yticks([])


def pgr_over_time(report: Report, path: Path) -> Path:
    """Each agent's best private dev PGR so far as steps, the lab's best thicker, baselines as dashed lines."""
    fig, ax = plt.subplots(figsize=(10, 5.2), dpi=DPI, layout="constrained")
    series = {name: points for name, points in report.best_over_time.items() if points}
    ax.set_title(f"Best private dev PGR so far ({report.private})")
    ax.set_xlabel("hours since the first submission")
    ax.set_ylabel("private dev PGR")
    if not series and not report.baselines:
        _empty(ax, "no scored submissions yet")
    else:
        start = report.start or 0.0
        end = max([report.last or start] + [t for points in series.values() for t, _ in points])
        hours = lambda t: (t - start) / 3600
        agents = sorted((n for n in series if n != "lab"), key=lambda n: (len(n), n))
        colors = plt.get_cmap("tab10" if len(agents) <= 10 else "tab20")
        for i, name in enumerate(agents):
            xs = [hours(t) for t, _ in series[name]] + [hours(end)]
            ys = [p for _, p in series[name]] + [series[name][-1][1]]
            ax.step(xs, ys, where="post", color=colors(i % colors.N), linewidth=1.4, label=name, zorder=3)
            ax.plot(xs[:-1], ys[:-1], "o", color=colors(i % colors.N), markersize=3.5, zorder=3)
        if "lab" in series:  # thick and light, beneath the agents, so their steps stay visible on it
            xs = [hours(t) for t, _ in series["lab"]] + [hours(end)]
            ys = [p for _, p in series["lab"]] + [series["lab"][-1][1]]
            ax.step(xs, ys, where="post", color="black", alpha=0.3, linewidth=5, label="lab (best of all)",
                    zorder=2)
        for i, (name, pgr) in enumerate(report.baselines.items()):
            ax.axhline(pgr, linestyle=DASHES[i % len(DASHES)], linewidth=1.1, color=str(0.2 + 0.4 * (i % 3) / 2),
                       label=f"baseline {name} ({pgr:+.2f})", zorder=1)
        ax.set_xlim(0, max(hours(end) * 1.02, 0.05))
        ax.grid(True, alpha=0.3)
        ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8, frameon=False)
    fig.savefig(path)
    plt.close(fig)
    return path


def spend_per_agent(report: Report, path: Path) -> Path:
    """Two panels: dollars per agent, and experiments per agent."""
    fig, (dollars, experiments) = plt.subplots(1, 2, figsize=(11, 4.6), dpi=DPI, layout="constrained")
    fig.suptitle("Spend and experiments per agent")
    if not report.agents:
        for ax in (dollars, experiments):
            _empty(ax, "no agents yet")
    else:
        names = [a.name for a in report.agents]
        for ax, values, title, fmt, color in (
                (dollars, [a.dollars for a in report.agents], "dollars spent", "${:,.2f}", "tab:blue"),
                (experiments, [a.experiments for a in report.agents], "experiments run", "{:,}", "tab:green")):
            bars = ax.bar(names, values, color=color)
            ax.bar_label(bars, labels=[fmt.format(v) for v in values], fontsize=7, padding=2)
            ax.set_title(title)
            ax.set_xlabel("agent")
            ax.set_ylabel(title.split()[0])
            ax.tick_params(axis="x", labelsize=8)
            if len(names) > 5:
                plt.setp(ax.get_xticklabels(), rotation=40, ha="right", rotation_mode="anchor")
            ax.margins(y=0.15)
            ax.grid(True, axis="y", alpha=0.3)
    fig.savefig(path)
    plt.close(fig)
    return path
