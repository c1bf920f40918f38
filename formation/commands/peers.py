"""`formation peers`: who this node knows and whether they are alive."""

from __future__ import annotations

import click

from formation.cli_output import emit_json
from formation.commands.common import Context, json_option, node_option, run


@click.command()
@json_option
@node_option
@click.pass_obj
def peers(obj: Context, as_json: bool, node_address: str | None) -> None:
    """List the hosts this node found and their membership state.

    \b
    state   alive / suspect / dead from heartbeats (mDNS is never a liveness signal), or
            "-" for a host found but never heard from
    rtt     round-trip time of heartbeats (each echoes the other's clock), smoothed
    found   how it was found: mdns, bootstrap, gossip (named in a peer's heartbeat)
    """
    from formation.api import discovery_routes, p2p_routes

    async def fetch():
        async with obj.client(node_address) as client:
            return (await client.call(discovery_routes.discovery_peers),
                    await client.call(p2p_routes.members))

    found, members = run(fetch)
    by_id = {m.node_id: m for m in members.members}
    rows = []
    for peer in found.peers:
        member = by_id.get(peer.node_id)
        rows.append({
            "node_id": peer.node_id, "name": peer.name, "address": peer.address,
            "kind": peer.kind, "sources": peer.sources, "trusted": peer.trusted,
            "state": member.state if member else None,
            "last_heard_s": member.last_heard_s if member else None,
            "rtt_ms": member.rtt_ms if member else None,
        })
    if as_json:
        emit_json({"network": found.network, "mdns": found.mdns, "peers": rows})
        return
    click.echo(f"network {found.network}; mDNS {found.mdns}")
    if not rows:
        click.echo("  no other hosts found yet")
    for r in rows:
        heard = f"{r['last_heard_s']:.1f}s ago" if r["last_heard_s"] is not None else ""
        rtt = f"{r['rtt_ms']:.1f}ms" if r["rtt_ms"] is not None else "-"
        click.echo(f"  {r['name'] or '?':<12} {r['address']:<21} {r['state'] or '-':<8} "
                   f"{rtt:<8} {heard:<10} {r['kind']:<10} {','.join(r['sources'])}  "
                   f"{r['node_id']}")
