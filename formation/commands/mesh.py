"""`formation mesh ...`: the WireGuard mesh as this node sees it."""

from __future__ import annotations

import click

from formation.api.mesh_models import MeshStatus
from formation.cli_output import emit_json
from formation.commands.common import Context, json_option, node_option, run


def _size(count: int) -> str:
    value = float(count)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if value < 1024 or unit == "GiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{count} B"


def _age(seconds: float | None) -> str:
    if seconds is None:
        return "never"
    if seconds < 120:
        return f"{seconds:.0f}s ago"
    if seconds < 7200:
        return f"{seconds / 60:.0f}m ago"
    return f"{seconds / 3600:.1f}h ago"


def status_lines(status: MeshStatus) -> list[str]:
    if not status.enabled:
        return [f"mesh       off (mesh.enabled is false; interface would be {status.interface})"]
    head = [
        f"interface  {status.interface} ({status.backend or 'no backend'})"
        + ("" if status.up else f"  DOWN: {status.error}"),
        f"address    {status.address or '(none yet)'}",
        f"key        {status.public_key or '-'}   port {status.listen_port or '-'}"
        + (f"   wireguard-go restarts {status.restarts}" if status.restarts else ""),
    ]
    if not status.peers:
        return [*head, "peers      none"]
    rows = [("PEER", "NODE", "ENDPOINT", "HANDSHAKE", "RX", "TX")]
    for p in status.peers:
        rows.append((p.public_key[:10] + "…", p.node_id or "-", p.endpoint or "-",
                     _age(p.handshake_age_s), _size(p.rx_bytes), _size(p.tx_bytes)))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    table = ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in rows]
    return [*head, f"peers      {len(status.peers)}", *table]


@click.group()
def mesh() -> None:
    """The WireGuard mesh between the hosts of the network."""


@mesh.command("status")
@json_option
@node_option
@click.pass_obj
def mesh_status(obj: Context, as_json: bool, node_address: str | None) -> None:
    """Show the mesh interface and every peer: endpoint, last handshake, bytes in and out.

    The node reads this from the interface itself (kernel WireGuard or wireguard-go), so it is
    what WireGuard really does, not what the network wants.
    """
    from formation.api.mesh_routes import mesh_status as endpoint

    async def fetch() -> MeshStatus:
        async with obj.client(node_address) as client:
            return await client.call(endpoint)

    result = run(fetch)
    if as_json:
        emit_json(result)
    else:
        click.echo("\n".join(status_lines(result)))
