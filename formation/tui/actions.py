"""Every action of the console, once: its key, its name in the help screen and the command
palette, and what it does. Bindings, the palette and the help screen are all built from this."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ConsoleAction:
    key: str
    action: str
    title: str
    help: str
    show: bool = True  # in the footer


ACTIONS: tuple[ConsoleAction, ...] = (
    ConsoleAction("d", "app.switch_mode('dashboard')", "Dashboard",
                  "This node, its health and live host graphs"),
    ConsoleAction("p", "app.switch_mode('peers')", "Peers",
                  "Every node: membership, discovery, mesh handshakes and traffic"),
    ConsoleAction("i", "app.switch_mode('instances')", "Instances",
                  "Every instance of the network, live: create, start, stop, restart, delete, "
                  "details with the serial log"),
    ConsoleAction("o", "app.switch_mode('routes')", "Routes",
                  "Public access: every hostname the edge nodes serve, its instances and their "
                  "health", show=False),
    ConsoleAction("l", "app.switch_mode('logs')", "Logs", "The node's recent log records"),
    ConsoleAction("s", "app.switch_mode('settings')", "Settings",
                  "Hostname, underlay, resources offered, admin SSH keys, bootstrap list"),
    ConsoleAction("e", "app.switch_mode('enroll')", "Network enrollment",
                  "This node's hostname, underlay, resources and admin keys; then found a "
                  "network or join one (discovered nearby, an invite token, a bootstrap host)",
                  show=False),
    ConsoleAction("v", "app.create_invite", "Invite a host",
                  "A one-time invite token and its QR code (admins)", show=False),
    ConsoleAction("a", "app.pending_joins", "Pending joins",
                  "Approve or reject hosts that asked to join (admins)", show=False),
    ConsoleAction("x", "app.remove_node", "Remove node",
                  "Remove the node selected on the peers screen, after confirming (admins)",
                  show=False),
    ConsoleAction("n", "app.switch_node", "Node", "Attach the console to another node"),
    ConsoleAction("r", "app.refresh_node", "Refresh", "Ask the node for everything again now",
                  show=False),
    ConsoleAction("c", "app.toggle_colours", "16 colours",
                  "Toggle the 16-colour theme for serial consoles", show=False),
    ConsoleAction("question_mark", "app.switch_mode('help')", "Help",
                  "Every key and command of the console"),
    ConsoleAction("q", "app.quit", "Quit", "Leave the console (the node keeps running)"),
)


def key_label(key: str) -> str:
    return {"question_mark": "?"}.get(key, key)
