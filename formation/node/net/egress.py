"""VM isolation and egress NAT with nftables (the `nft` binary, Debian package nftables).

One table of our own, `inet formation_vm`, replaced as a whole in one `nft -f` transaction each
time (a restarted node writes the same table again, never a second copy; other tables on the
host are not touched). What it says:
  - from the VM bridge, routed traffic may go to the network's VM subnets (other VMs, over the
    mesh) only, not to the nodes' mesh addresses (their APIs are not for VMs); instances
    whose spec asks for egress (`@egress`) may go anywhere else too, masqueraded behind the
    host's underlay address on the way out;
  - towards the bridge, only the network's CIDR and replies to the VMs' own connections get in:
    the underlay never reaches a VM on its own;
  - to the host itself, a VM may only ping the gateway and ask the node's DNS on it (the node
    answers `<instance>.<network>.fog` there); the node's API and the host's other addresses
    are not for VMs;
  - VMs speak IPv4 only: IPv6 from the bridge to the host or beyond is dropped (bridged
    traffic between VMs on the same host is not routed and stays untouched)."""

from __future__ import annotations

import asyncio
from collections.abc import Collection
from dataclasses import dataclass

from formation.node.net.host import NetHost

TABLE = "formation_vm"


class EgressError(RuntimeError):
    pass


@dataclass(frozen=True)
class Rules:
    bridge: str
    network: str  # the network's CIDR
    gateway: str  # this node's VM gateway address (no prefix)
    egress: tuple[str, ...] = ()  # instance addresses allowed out
    nodes: str | None = None  # the mesh pool: the nodes' own addresses, closed to VMs

    def text(self) -> str:
        elements = ", ".join(sorted(self.egress))
        egress_set = (f"\t\tset egress {{ type ipv4_addr; elements = {{ {elements} }}; }}\n"
                      if elements else "\t\tset egress { type ipv4_addr; }\n")
        br, net, gw = f'"{self.bridge}"', self.network, self.gateway
        nodes_rule = f"\t\tiifname {br} ip daddr {self.nodes} drop\n" if self.nodes else ""
        return (
            f"table inet {TABLE} {{}}\n"
            f"delete table inet {TABLE}\n"
            f"table inet {TABLE} {{\n"
            f"{egress_set}"
            "\tchain forward {\n"
            "\t\ttype filter hook forward priority 0; policy accept;\n"
            f"\t\tiifname {br} oifname {br} accept\n"
            f"\t\tiifname {br} meta nfproto ipv6 drop\n"
            f"\t\toifname {br} meta nfproto ipv6 drop\n"
            f"{nodes_rule}"
            f"\t\tiifname {br} ip daddr {net} accept\n"
            f"\t\tiifname {br} ip saddr @egress accept\n"
            f"\t\tiifname {br} drop\n"
            f"\t\toifname {br} ip saddr {net} accept\n"
            f"\t\toifname {br} ct state established,related accept\n"
            f"\t\toifname {br} drop\n"
            "\t}\n"
            "\tchain input {\n"
            "\t\ttype filter hook input priority 0; policy accept;\n"
            f"\t\tiifname {br} meta nfproto ipv6 drop\n"
            f"\t\tiifname {br} ct state established,related accept\n"
            f"\t\tiifname {br} ip daddr {gw} icmp type echo-request accept\n"
            f"\t\tiifname {br} ip daddr {gw} udp dport 53 accept\n"
            f"\t\tiifname {br} ip daddr {gw} tcp dport 53 accept\n"
            f"\t\tiifname {br} drop\n"
            "\t}\n"
            "\tchain postrouting {\n"
            "\t\ttype nat hook postrouting priority 100; policy accept;\n"
            f"\t\toifname != {br} ip saddr @egress ip daddr != {net} masquerade\n"
            "\t}\n"
            "}\n")


async def apply(host: NetHost, rules: Rules) -> None:
    """Replaces the table in one transaction; a failure leaves the previous one in force."""
    await _nft(host, ["-f", "-"], rules.text())


async def remove(host: NetHost) -> None:
    await _nft(host, ["-f", "-"], f"table inet {TABLE} {{}}\ndelete table inet {TABLE}\n")


async def table_text(host: NetHost) -> str:
    return await _nft(host, ["list", "table", "inet", TABLE], None)


def egress_of(addresses: Collection[tuple[str, bool]]) -> tuple[str, ...]:
    return tuple(sorted(a for a, out in addresses if out))


async def _nft(host: NetHost, args: list[str], stdin: str | None) -> str:
    try:
        proc = await asyncio.create_subprocess_exec(
            *host.command(["nft", *args]), stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    except OSError as exc:
        raise EgressError(f"nftables: cannot run nft ({exc.strerror}); install the Debian "
                          "package nftables") from None
    out, err = await proc.communicate(stdin.encode() if stdin is not None else None)
    if proc.returncode != 0:
        lines = err.decode(errors="replace").strip().splitlines()
        raise EgressError(f"nftables: {lines[0] if lines else f'nft exit {proc.returncode}'}")
    return out.decode()
