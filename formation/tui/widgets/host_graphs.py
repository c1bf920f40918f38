"""Live CPU, memory and network sparklines from the node's `metrics/sample` events."""

from __future__ import annotations

from typing import TYPE_CHECKING

from textual.containers import Horizontal, Vertical
from textual.widgets import Label, Sparkline

from formation.tui.console_app import console_app
from formation.tui.presenter import rate

if TYPE_CHECKING:
    from formation.api.console_models import HostSample

ROWS = (
    ("cpu", "cpu_percent"),
    ("mem", "memory_used_percent"),
    ("rx", "net_rx_bps"),
    ("tx", "net_tx_bps"),
)


def value_text(name: str, sample: HostSample | None) -> str:
    if sample is None:
        return f"{name:<3} …"
    value = getattr(sample, dict(ROWS)[name])
    shown = f"{value:.0f}%" if name in ("cpu", "mem") else rate(value)
    return f"{name:<3}{shown:>10}"


def graph_row(name: str) -> Horizontal:
    return Horizontal(
        Label(value_text(name, None), id=f"{name}-value", classes="graph-value"),
        Sparkline([], id=f"{name}-spark", classes="graph"),
        classes="graph-row")


class HostGraphs(Vertical):
    """Empty until mount_rows (the dashboard calls it once the first frame is drawn)."""

    async def mount_rows(self) -> None:
        if self.query(".graph-row"):
            return
        await self.mount_all([graph_row(name) for name, _ in ROWS])
        self._label_text: dict[str, str] = {}  # what each value label shows: unchanged, no redraw
        self.watch(self.app, "samples_version", self.show, init=True)

    def show(self, _: int) -> None:
        samples: list[HostSample] = list(console_app(self).samples)
        last = samples[-1] if samples else None
        for name, attr in ROWS:
            label = self.query_one(f"#{name}-value", Label)
            text = value_text(name, last)
            if text != self._label_text.get(name):
                self._label_text[name] = text
                label.update(text, layout=False)  # fixed size: no relayout of the screen
            spark = self.query_one(f"#{name}-spark", Sparkline)
            spark.data = [getattr(s, attr) for s in samples[-60:]]
