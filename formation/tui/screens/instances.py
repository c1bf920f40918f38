"""Instances: counts by state from the state store's instances view. Deploying and operating
virtual machines comes with the VM work; this screen is their place in the navigation."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.widgets import Static

from formation.tui.network import NetworkSnapshot
from formation.tui.network_rows import instance_counts
from formation.tui.screens.base import ConsoleScreen

LATER = ("Deploying from a Formfile, start, stop, delete, boot progress and the serial log "
         "come with the VM work.")


def instances_text(net: NetworkSnapshot | None) -> str:
    if net is None:
        return "reading the state store…"
    if "state view instances" in net.errors:
        return f"cannot read the instances view: {net.errors['state view instances']}"
    if net.network is None:
        return "This node is in no network, so there are no instances (press e to found one)."
    counts = instance_counts(net)
    if not counts:
        return f"No instances in network {net.network.get('name', '?')}."
    total = sum(counts.values())
    lines = [f"{total} instances in network {net.network.get('name', '?')}:"]
    lines += [f"  {state:<12} {n}" for state, n in counts.items()]
    return "\n".join(lines)


class InstancesScreen(ConsoleScreen):
    TITLE_TEXT = "instances"

    def compose_body(self) -> ComposeResult:
        yield Static("[b]Instances[/b] (from the replicated state store)", classes="prose")
        yield Static("reading the state store…", id="instances-text")
        yield Static(LATER, classes="prose", id="instances-later")

    def on_mount(self) -> None:
        super().on_mount()
        self.watch(self.app, "network", self.show, init=True)

    def show(self, net: NetworkSnapshot | None) -> None:
        self.query_one("#instances-text", Static).update(instances_text(net))
