"""What `lab status` says about each host's mesh: its address and how fresh its WireGuard
handshakes are, read from the host's own node over its unix socket (the same API call as
`formation mesh status` inside the host)."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from formation.api import mesh_routes
from formation.api.client import NodeClient
from formation.errors import FormationError

TIMEOUT_S = 2.0


async def _read(socket_path: Path) -> dict[str, Any]:
    client = NodeClient.unix(socket_path, timeout_s=TIMEOUT_S)
    try:
        status = await client.call(mesh_routes.mesh_status)
    finally:
        await client.close()
    ages = [p.handshake_age_s for p in status.peers]
    fresh = [a for a in ages if a is not None]
    return {"mesh_up": status.up, "mesh_address": status.address,
            "mesh_peers": len(ages), "mesh_handshaken": len(fresh),
            "mesh_oldest_handshake_s": max(fresh) if fresh else None,
            "mesh_error": status.error}


def mesh_summary(socket_path: Path) -> dict[str, Any]:
    """Blocking (it runs its own event loop): call it from a CLI or a thread."""
    try:
        return asyncio.run(_read(socket_path))
    except (FormationError, OSError) as exc:
        return {"mesh_up": False, "mesh_address": None, "mesh_peers": 0, "mesh_handshaken": 0,
                "mesh_oldest_handshake_s": None, "mesh_error": str(exc).splitlines()[0]}


def mesh_text(host: dict[str, Any]) -> str:
    """One column of `lab status`: "10.42.0.1 2/2 hs 3s", or why not."""
    if not host.get("mesh_up"):
        return "mesh down" + (f" ({host['mesh_error'][:40]})" if host.get("mesh_error") else "")
    age = host.get("mesh_oldest_handshake_s")
    shaken = f"{host['mesh_handshaken']}/{host['mesh_peers']} handshakes"
    return f"{host.get('mesh_address') or 'no address'} {shaken}" + (
        f", oldest {age:.0f}s" if age is not None else "")
