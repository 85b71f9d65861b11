"""Best dev PGR over time: the lab's best as a thick line, each agent's best as steps, the best baseline as a rule.

Only the best baseline is drawn: it is the bar to beat, and the weaker ones (some below zero) would
stretch the axis until the agents' curves were flat.
"""
from __future__ import annotations

from textual_plotext import PlotextPlot

# plotext's named colours, one per agent, distinct on dark and light themes
COLOURS = ["cyan", "magenta", "green", "yellow", "blue", "red", "orange", "gray", "white"]


def steps(points: list[tuple[float, float]], until: float, start: float) -> tuple[list[float], list[float]]:
    """A best-so-far series as a staircase in hours since `start`, held flat until `until`."""
    xs, ys = [], []
    for i, (t, value) in enumerate(points):
        if i:
            xs.append((t - start) / 3600)
            ys.append(points[i - 1][1])
        xs.append((t - start) / 3600)
        ys.append(value)
    if points:
        xs.append((max(until, points[-1][0]) - start) / 3600)
        ys.append(points[-1][1])
    return xs, ys


class PgrChart(PlotextPlot):
    DEFAULT_CSS = "PgrChart { height: 1fr; min-height: 8; }"

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self._shown = None
        self._has_data = False
        self.per_agent = True

    def render(self):
        # Before the first read, an empty pane: plotting an empty figure costs the first frame about 0.1 s a render.
        return super().render() if self._has_data else ""

    def toggle_agents(self) -> None:
        self.per_agent = not self.per_agent
        self._shown = None

    def show(self, series: dict[str, list[tuple[float, float]]], baselines: dict[str, float], now: float) -> None:
        signature = (self.per_agent, tuple((k, len(v), v[-1] if v else None) for k, v in sorted(series.items())),
                     tuple(sorted(baselines.items())), int(now // 60))
        if signature == self._shown:
            return
        self._shown, self._has_data = signature, True
        plt = self.plt
        plt.clear_data()
        plt.clear_figure()
        best_baseline = max(((v, k) for k, v in baselines.items() if v is not None), default=None)
        plt.title("best private dev PGR, hours" + (
            f" · ─ {best_baseline[1].split('/')[-1].removesuffix('.py')} {best_baseline[0]:+.3f}"
            if best_baseline else ""))
        lab = series.get("lab", [])
        if not lab:
            plt.title("best private dev PGR: none scored yet")
            self.refresh()
            return
        start = lab[0][0]
        agents = sorted((k for k in series if k != "lab"), key=lambda k: (len(k), k)) if self.per_agent else []
        for i, name in enumerate(agents):
            xs, ys = steps(series[name], now, start)
            plt.plot(xs, ys, marker="braille", color=COLOURS[i % len(COLOURS)], label=name.replace("agent-", "a"))
        xs, ys = steps(lab, now, start)
        plt.plot(xs, ys, marker="hd", color="white+", label="lab")
        if best_baseline:
            plt.hline(best_baseline[0], "gray")
        plt.xlim(0, max(xs[-1], 1 / 60))
        self.refresh()
