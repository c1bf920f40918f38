"""Instances: their place in the navigation; the VM work fills it."""

from __future__ import annotations

from formation.tui.screens.network_pending import NetworkPendingScreen


class InstancesScreen(NetworkPendingScreen):
    TITLE_TEXT = "instances"
    AREA = "instances"
    INTRO = ("[b]Instances[/b]\n"
             "Virtual machines come with the VM work: deploy from a Formfile, start, stop, "
             "delete, boot progress and serial log. Counts by state will show here as soon as "
             "the state store offers them; none are available from this node yet.")
