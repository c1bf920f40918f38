"""Enrollment, as far as today's API goes: this node is not in a network, and these are the ways
in. Founding and joining are not offered because the node has no API for them yet; nothing here
pretends otherwise."""

from __future__ import annotations

from formation.tui.screens.network_pending import NetworkPendingScreen

OPTIONS = (
    "found a new network (this node becomes its first admin)",
    "join a network discovered on this link by mDNS (live list)",
    "paste an invite token",
    "give a bootstrap host (HOST:PORT)",
)


class EnrollScreen(NetworkPendingScreen):
    TITLE_TEXT = "enrollment"
    AREA = "enroll"
    INTRO = ("[b]This node is not in a network.[/b]\n"
             "The ways in will be:\n" + "\n".join(f"  • {o}" for o in OPTIONS) + "\n"
             "[b]Not available yet:[/b] founding and joining come with the network work "
             "(state store, discovery, mesh). Set the hostname, bootstrap list and admin SSH "
             "keys now in settings (s).")
