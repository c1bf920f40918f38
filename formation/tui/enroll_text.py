"""The enrollment screen's words: the intro, the founding request from its two fields (or what
is wrong with them), and the discovered hosts as table rows."""

from __future__ import annotations

import ipaddress
from datetime import UTC, datetime

from pydantic import ValidationError

from formation.api.discovery_models import DiscoveredPeers
from formation.api.state_models import CreateNetworkRequest
from formation.tui.network import NetworkSnapshot
from formation.tui.network_rows import ago

DEFAULT_CIDR = "10.42.0.0/16"
OPEN_ONLY = "#node-form, #found-form, #join-form, #join-help"  # shown while in no network
FOUND_HELP = "[b]Found[/b] a network (f): its name and mesh address range, then Enter:"
JOIN_HELP = ("Or [b]join[/b] one (j): paste an invite token, or an admin's HOST:PORT (the "
             "admin approves); or pick a host below and press Enter.")
DISCOVERED_COLUMNS = (("name", 14), ("id", 27), ("kind", 10), ("network", 12),
                      ("address", 21), ("found by", 16), ("seen", 5))


def request_from(name: str, cidr: str) -> CreateNetworkRequest | str:
    """The request, or what is wrong with the fields, in words."""
    try:
        network = ipaddress.ip_network(cidr, strict=True)
    except ValueError as exc:
        return f"address range: {exc}; expected a CIDR such as {DEFAULT_CIDR}"
    if network.version != 4 or network.prefixlen > 28:
        return "address range: expected an IPv4 range of at least 16 addresses (/28 or wider)"
    try:
        return CreateNetworkRequest(name=name, cidr=cidr)
    except ValidationError as exc:
        return "; ".join(f"network name: expected 1-63 lowercase letters, digits and - "
                         f"(not at either end), got {name!r}" if "name" in e["loc"]
                         else f"{'.'.join(map(str, e['loc']))}: {e['msg']}"
                         for e in exc.errors())


def intro_text(net: NetworkSnapshot | None) -> str:
    if net is None:
        return "reading the state store…"
    network = net.network
    if network is not None:
        return (f"This node is in network [b]{network.get('name')}[/b] (id {network.get('id')}, "
                f"{network.get('cidr')}). Press d for the dashboard, p for its nodes.")
    if "state view network" in net.errors:
        return f"cannot read the state store: {net.errors['state view network']}"
    return ("[b]This node is in no network.[/b] Check this node's fields (h), then found a new "
            "network (f; this node becomes its first admin) or join one (j).")


def discovered_rows(found: DiscoveredPeers) -> list[tuple[str, ...]]:
    now = datetime.now(UTC)
    return [(p.name or "?", p.node_id, p.kind, p.network[:12], p.address, ",".join(p.sources),
             ago((now - p.last_seen).total_seconds())) for p in found.peers]


def discovery_text(net: NetworkSnapshot | None) -> str:
    if net is None:
        return ""
    found = net.discovered
    if found is None:
        return f"discovery: cannot read ({net.errors.get('discovery', 'no answer')})"
    return f"hosts discovered: {len(found.peers)} · mDNS {found.mdns}"
