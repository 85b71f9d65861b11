"""One line with the machine's load: CPU, memory, and each GPU's utilisation and memory."""
from __future__ import annotations

from rich.text import Text
from textual.widgets import Static

from lab.machine import Load
from lab.tui import format as fmt


def render_load(load: Load | None, queue: dict | None = None, cluster: dict | None = None) -> Text:
    """`queue` is the scorer's GPU queue (lab.scorer.gpus' snapshot), shown beside each GPU; `cluster` the Ray
    engine's view (lab.scorer.cluster_view), its nodes and runs after the machine's own load."""
    if load is None:
        return Text("machine load: not measured", style="dim")
    queued = (queue or {}).get("gpus") or {}
    text = Text()
    text.append(f"CPU {load.cpu_percent:3.0f}% ", style="bold")
    text.append(fmt.bar(load.cpu_percent / 100, 8), style="green")
    text.append(f" of {load.cpus}   mem {load.memory_used_mb / 1024:.1f}/{load.memory_total_mb / 1024:.0f} GiB ",
                style="bold")
    text.append(fmt.bar(load.memory_used_mb / max(load.memory_total_mb, 1), 8), style="cyan")
    if not load.gpus and not queued:
        text.append("   no GPU", style="dim")
    for gpu in load.gpus:
        busy = gpu.utilisation
        text.append(f"   GPU{gpu.index} " + (f"{busy:3.0f}% " if busy is not None else "n/a "), style="bold")
        text.append(fmt.bar((busy or 0) / 100, 6), style="magenta")
        text.append(f" {gpu.memory_used_mb / 1024:.0f}/{gpu.memory_total_mb / 1024:.0f} GiB")
        if str(gpu.index) in queued:
            _append_queue(text, queued[str(gpu.index)])
    shown = {str(gpu.index) for gpu in load.gpus}
    for name, row in queued.items():   # MIG instances, or GPUs nvidia-smi did not list
        if name not in shown:
            text.append(f"   GPU {name[:12]}", style="bold")
            _append_queue(text, row)
    if cluster and cluster.get("engine") == "ray":
        _append_cluster(text, cluster)
    return text


def _append_cluster(text: Text, cluster: dict) -> None:
    nodes = [n for n in cluster.get("nodes") or [] if n.get("alive")]
    running = sum(len(n.get("running") or []) for n in nodes)
    gpus = sum(n.get("gpus") or 0 for n in nodes)
    text.append(f"   ray {len(nodes)} node{'s' if len(nodes) != 1 else ''}", style="bold")
    text.append(f" {gpus:g} GPU{'s' if gpus != 1 else ''} run {running}")
    queued = cluster.get("queued", 0)
    text.append(f" queue {queued}", style="yellow" if queued else "dim")
    if cluster.get("retried"):
        text.append(f" retried {cluster['retried']}", style="red")


def _append_queue(text: Text, row: dict) -> None:
    text.append(f" run {len(row.get('running', []))}/{row.get('slots', 1)}")
    waiting = row.get("queue", 0)
    text.append(f" queue {waiting}", style="yellow" if waiting else "dim")


class LoadLine(Static):
    DEFAULT_CSS = "LoadLine { height: 1; padding: 0 1; }"

    def show(self, load: Load | None, queue: dict | None = None, cluster: dict | None = None) -> None:
        self.update(render_load(load, queue, cluster))
