"""The network on the dashboard in three lines: its name and id, nodes alive/suspect/dead and
instances by state, and the state store's op count, replication lag and heads."""

from __future__ import annotations

from typing import TYPE_CHECKING

from textual.widgets import Static

from formation.tui.network_rows import ago, counts_text, instance_counts, member_counts

if TYPE_CHECKING:
    from formation.api.state_models import StateStatus
    from formation.tui.network import NetworkSnapshot


def short(hex_id: str) -> str:
    return hex_id[:12]


def network_line(net: NetworkSnapshot) -> str:
    network = net.network
    if network is None:
        if "state view network" in net.errors:
            return f"network: cannot read ({net.errors['state view network']})"
        return "network: none · press e to found one"
    return (f"network [b]{network.get('name', '?')}[/b] · id {network.get('id', '?')} · "
            f"{network.get('cidr', '?')}")


def nodes_line(net: NetworkSnapshot) -> str:
    if net.members is None:
        nodes = f"nodes: unknown ({net.errors.get('membership', 'no answer')})"
    else:
        nodes = "nodes: " + counts_text(member_counts(net))
    return f"{nodes} · instances: {counts_text(instance_counts(net))}"


def sync_text(status: StateStatus) -> str:
    """Replication lag: the replica held everything its worst in-sync peer had this long ago
    (anti-entropy's view; see docs/protocol.md), and how many peers answer at all."""
    if not status.peers:
        return ""
    ok = [p for p in status.peers if p.ok]
    text = f" · sync {len(ok)}/{len(status.peers)} peers"
    ages = [p.in_sync_age_s for p in ok if p.in_sync_age_s is not None]
    if ages:
        text += f", lag ≤{ago(max(ages))}"
    missing = sum(p.heads_missing for p in ok)
    return text + (f", {missing} heads behind" if missing else "")


def store_line(net: NetworkSnapshot) -> str:
    status = net.status
    if status is None:
        return f"state store: cannot read ({net.errors.get('state store', 'no answer')})"
    heads = " ".join(short(h) for h in status.heads[:3]) + (" …" if len(status.heads) > 3 else "")
    behind = f" · {status.buffered} buffered" if status.buffered else ""
    return (f"state store: {status.ops} ops{sync_text(status)} · {len(status.heads)} heads "
            f"{heads}".rstrip() + behind)


def network_text(net: NetworkSnapshot | None) -> str:
    if net is None:
        return "reading the network…"
    return "\n".join((network_line(net), nodes_line(net), store_line(net)))


class NetworkSummary(Static):
    def on_mount(self) -> None:
        self.watch(self.app, "network", self.show, init=True)

    def show(self, net: NetworkSnapshot | None) -> None:
        text = network_text(net)
        if text != getattr(self, "shown", None):
            self.shown = text
            self.update(text, layout=False)  # fixed height: no relayout of the screen
