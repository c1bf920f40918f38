"""This host as a node: `status`, `doctor` and `identity`."""

from __future__ import annotations

from typing import Any

import click

from formation.commands.common import Context, json_option, node_option, run


@click.command()
@json_option
@node_option
@click.pass_obj
def status(obj: Context, as_json: bool, node_address: str | None) -> None:
    """Show this node: identity, version, uptime, listen addresses, capabilities, resources."""
    from formation.api import routes
    from formation.cli_output import emit_json, status_lines

    async def fetch():
        async with obj.client(node_address) as client:
            return await client.call(routes.node_status)

    result = run(fetch)
    if as_json:
        emit_json(result)
    else:
        click.echo("\n".join(status_lines(result)))


@click.command()
@json_option
@click.option("--local", is_flag=True, help="Probe in this process even if a node is running.")
@click.pass_obj
def doctor(obj: Context, as_json: bool, local: bool) -> None:
    """Probe what this host can really do and explain every missing capability.

    KVM is tested by booting a tiny guest under it and under software emulation: an openable
    /dev/kvm is not proof that guests run. Asks the running node to re-probe; without one (or
    with --local) probes here.
    """
    from formation.api import routes
    from formation.api.client import NodeUnreachable
    from formation.api.models import ProbeRequest
    from formation.cli_output import capability_lines, emit_json

    async def probe():
        if not local:
            try:
                async with obj.client(None, timeout_s=120) as client:
                    return await client.call(routes.probe_capabilities, ProbeRequest())
            except NodeUnreachable:
                pass
        from formation.node.capabilities import CapabilityProber

        return await CapabilityProber(obj.settings.probe, obj.settings.data_dir).probe()

    caps = run(probe)
    if as_json:
        emit_json(caps)
        return
    click.echo("capabilities of this host")
    click.echo("\n".join(capability_lines(caps)))
    from formation.node.vmm.backend import select_driver

    # Which VMM this node runs VMs with (vmm.backend against what was just probed), and why.
    _, why = select_driver(obj.settings, caps)
    click.echo(f"\nVM backend: {why}")
    missing = [item for item in caps.items if not item.ok]
    if missing:
        click.echo(f"\n{len(missing)} missing: " + ", ".join(item.name for item in missing))


@click.group()
def identity() -> None:
    """This node's keys (public parts only; the secret never leaves the data directory)."""


@identity.command("show")
@json_option
@click.pass_obj
def identity_show(obj: Context, as_json: bool) -> None:
    """Print the node id, Ed25519 public key, fingerprint and WireGuard public key."""
    from formation.cli_output import emit_json
    from formation.identity.store import load_identity

    ident = load_identity(obj.settings.data_dir)
    info: dict[str, Any] = {
        "node_id": ident.node_id,
        "public_key": ident.public_key_hex,
        "fingerprint": ident.fingerprint,
        "wireguard_public_key": ident.wireguard_public_key,
    }
    if as_json:
        emit_json(info)
    else:
        width = max(map(len, info))
        click.echo("\n".join(f"{k:<{width}}  {v}" for k, v in info.items()))
