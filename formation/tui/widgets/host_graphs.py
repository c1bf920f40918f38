"""Live CPU, memory and network sparklines from the node's `metrics/sample` events."""

from __future__ import annotations

from typing import TYPE_CHECKING

from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.widgets import Label, Sparkline

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


class HostGraphs(Vertical):
    def compose(self) -> ComposeResult:
        for name, _ in ROWS:
            with Horizontal(classes="graph-row"):
                yield Label(value_text(name, None), id=f"{name}-value", classes="graph-value")
                yield Sparkline([], id=f"{name}-spark", classes="graph")

    def on_mount(self) -> None:
        self.watch(self.app, "samples_version", self.show, init=True)

    def show(self, _: int) -> None:
        samples: list[HostSample] = list(self.app.samples)  # type: ignore[attr-defined]
        last = samples[-1] if samples else None
        for name, attr in ROWS:
            label = self.query_one(f"#{name}-value", Label)
            text = value_text(name, last)
            if text != getattr(label, "shown", None):
                label.shown = text  # type: ignore[attr-defined]
                label.update(text, layout=False)  # fixed size: no relayout of the screen
            spark = self.query_one(f"#{name}-spark", Sparkline)
            spark.data = [getattr(s, attr) for s in samples[-60:]]
