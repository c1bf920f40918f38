"""Pick the node the console is attached to: the local one, a known address, or a typed one.
Dismisses with the address, None for the local node, or False when cancelled."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Input, Label, OptionList
from textual.widgets.option_list import Option

LOCAL = "local (this host's unix socket)"


class NodeSwitcher(ModalScreen[str | None | bool]):
    BINDINGS = [Binding("escape", "cancel", "Cancel")]

    def __init__(self, known: list[str], current: str | None) -> None:
        super().__init__()
        self.known = known
        self.current = current

    def compose(self) -> ComposeResult:
        with Vertical(id="switcher"):
            yield Label(f"attached to: {self.current or 'local'} · choose a node (esc cancels)")
            options = [Option(LOCAL, id="")] + [Option(a, id=a) for a in self.known]
            yield OptionList(*options, id="known")
            yield Input(placeholder="or type HOST:PORT and press enter", id="address")

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        self.dismiss(event.option.id or None)

    def on_input_submitted(self, event: Input.Submitted) -> None:
        value = event.value.strip()
        host, sep, port = value.rpartition(":")
        if not sep or not host or not port.isdigit():
            self.notify("expected HOST:PORT, e.g. 10.0.0.2:7170", severity="error")
            return
        self.dismiss(value)

    def action_cancel(self) -> None:
        self.dismiss(False)
