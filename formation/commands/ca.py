"""`formation ca`: the network CA that vouches for `.fog` names inside the mesh.

`init` makes the root on this (admin) node's CLI, seals its private key to every edge and admin
and writes one `ca.set` op; the key never exists unsealed anywhere but in this process and on
the edges' engines. `reseal` gives it to nodes that became edges or admins since (and drops
removed ones): an explicit admin act rather than something a node does by itself, because
handing a node the CA key is a trust decision. `show` prints the root for people and scripts
that want to trust it. Talks to the local node (the ops are signed by it)."""

from __future__ import annotations

import sys
from typing import Any

import click

from formation.cli_output import emit_json
from formation.commands.common import Context, json_option, run
from formation.errors import FormationError


@click.group()
def ca() -> None:
    """The network CA: certificates for .fog names, trusted by every VM (admins only)."""


async def _views(client: Any) -> tuple[list[dict[str, Any]], dict[str, Any] | None]:
    from formation.api import state_routes as sr
    from formation.node.state.ca_rules import current

    nodes = (await client.call(sr.state_view, collection="nodes")).items
    return nodes, current((await client.call(sr.state_view, collection="ca")).items)


async def _write(client: Any, root_pem: str, keys: dict[str, str]) -> str:
    from formation.api import state_models as sm
    from formation.api import state_routes as sr

    op = await client.call(sr.state_append, sm.AppendRequest(
        kind="ca.set", payload={"root_pem": root_pem, "keys": keys}))
    return str(op.id)


def _summary(root_pem: str, keys: dict[str, str], nodes: list[dict[str, Any]],
             op: str | None) -> dict[str, Any]:
    from formation.node.edge.fog_ca import missing
    from formation.node.state.ca_rules import fingerprint

    names = {str(n["key"]): n.get("name") for n in nodes}
    return {"fingerprint": fingerprint(root_pem), "root_pem": root_pem,
            "holders": [{"node": k, "name": names.get(k)} for k in sorted(keys)],
            "missing": missing({"keys": keys}, nodes), **({"op": op} if op else {})}


def _say(about: dict[str, Any]) -> None:
    holders = ", ".join(str(h["name"] or h["node"][:12]) for h in about["holders"])
    click.echo(f"network CA {about['fingerprint'][:32]}… (SHA-256 of the root)")
    click.echo(f"key sealed to: {holders}")
    if about["missing"]:
        click.echo(f"not yet sealed to {len(about['missing'])} edge or admin node(s): run "
                   "`formation ca reseal` on an admin node", err=True)


@ca.command("init")
@click.option("--rotate", is_flag=True, help="Replace the network's CA with a new one (VMs "
              "trust the new root at their next boot; .fog certificates are reissued).")
@json_option
@click.pass_obj
def init(obj: Context, rotate: bool, as_json: bool) -> None:
    """Make the network CA: an ECDSA P-256 root limited to .fog names, its key sealed to every
    edge and admin node, written as one ca.set op signed by this node (a network admin)."""
    from formation.node.edge import fog_ca
    from formation.node.state.ca_rules import MAX_RECIPIENTS

    async def go() -> dict[str, Any]:
        async with obj.client(None) as client:
            nodes, current = await _views(client)
            if current is not None and not rotate:
                raise FormationError(f"ca init: the network already has a CA ("
                                     f"{current['fingerprint'][:16]}…); --rotate replaces it, "
                                     "`formation ca reseal` gives its key to new edges")
            network = await _network_name(client)
            holders = fog_ca.recipients(nodes)
            if network is None or not holders:
                raise FormationError("ca init: this node is in no network yet (formation "
                                     "network create, or join one)")
            if len(holders) > MAX_RECIPIENTS:
                raise FormationError(f"ca init: {len(holders)} edge and admin nodes; the CA "
                                     f"key can be sealed to at most {MAX_RECIPIENTS}")
            root_pem, key_pem = fog_ca.make_root(network)
            keys = fog_ca.seal_keys(key_pem, holders)
            return _summary(root_pem, keys, nodes, await _write(client, root_pem, keys))

    about = run(go)
    if as_json:
        emit_json(about)
    else:
        _say(about)


async def _network_name(client: Any) -> str | None:
    from formation.api import state_routes as sr

    items = (await client.call(sr.state_view, collection="network")).items
    return str(items[0].get("name")) if items else None


@ca.command("reseal")
@json_option
@click.pass_obj
def reseal(obj: Context, as_json: bool) -> None:
    """Seal the CA key to the network's current edges and admins (new ones get it, removed
    ones are left out of the new op). This node must hold the key (an admin) and sign."""
    from formation.identity.sealing import open_sealed
    from formation.identity.store import load_identity
    from formation.node.edge import fog_ca
    from formation.node.state.ca_rules import MAX_RECIPIENTS

    async def go() -> dict[str, Any]:
        async with obj.client(None) as client:
            nodes, current = await _views(client)
            if current is None:
                raise FormationError("ca reseal: the network has no CA yet (formation ca init)")
            identity = load_identity(obj.settings.data_dir)
            sealed = (current.get("keys") or {}).get(identity.public_key_hex)
            if sealed is None:
                raise FormationError("ca reseal: the CA key is not sealed to this node; run it "
                                     "on an admin node that holds it (formation ca show)")
            key_pem = open_sealed(identity, sealed).decode()
            if not fog_ca.key_matches(current["root_pem"], key_pem):
                raise FormationError("ca reseal: the key sealed to this node is not the root's "
                                     "(a damaged ca.set); run formation ca init --rotate")
            wanted = fog_ca.recipients(nodes)
            if len(wanted) > MAX_RECIPIENTS:
                raise FormationError(f"ca reseal: {len(wanted)} edge and admin nodes; the CA "
                                     f"key can be sealed to at most {MAX_RECIPIENTS}")
            if sorted(current.get("keys") or {}) == wanted:
                return _summary(current["root_pem"], current["keys"], nodes, None)
            keys = fog_ca.seal_keys(key_pem, wanted)
            return _summary(current["root_pem"], keys, nodes,
                            await _write(client, current["root_pem"], keys))

    about = run(go)
    if as_json:
        emit_json(about)
        return
    if "op" not in about:
        click.echo("nothing to do: the key is sealed to every edge and admin, and no other node")
    _say(about)


@ca.command("show")
@click.option("--node", "node_address", metavar="HOST:PORT",
              help="Ask the node at this TCP address (no key needed: the root is public) "
              "instead of the local one.")
@json_option
@click.pass_obj
def show(obj: Context, node_address: str | None, as_json: bool) -> None:
    """Print the network CA's root certificate (PEM), to trust it: save it and give it to
    curl --cacert, or add it to a system's trust store. --json: fingerprint and holders too
    (holders only from the local node). Compare the fingerprint with an admin's."""
    async def local() -> dict[str, Any]:
        async with obj.client(None) as client:
            nodes, current = await _views(client)
            if current is None:
                raise FormationError("ca show: the network has no CA yet (an admin runs "
                                     "formation ca init)")
            return _summary(current["root_pem"], current.get("keys") or {}, nodes, None)

    about = run(local) if node_address is None else run(lambda: _public(node_address))
    if as_json:
        emit_json(about)
        return
    sys.stdout.write(about["root_pem"])
    if about.get("missing"):
        click.echo(f"# not yet sealed to {len(about['missing'])} edge or admin node(s): "
                   "formation ca reseal", err=True)


async def _public(address: str) -> dict[str, Any]:
    """The root from any node's public endpoint, unsigned (a laptop holds no node key)."""
    import aiohttp

    from formation.api.ca_routes import ca_root
    from formation.api.client import ApiError, NodeClient

    async with NodeClient(f"http://{address}", aiohttp.TCPConnector, address) as client:
        try:
            answer = await client.call(ca_root)
        except ApiError as exc:
            if exc.status == 404:
                raise FormationError("ca show: the network has no CA yet (an admin runs "
                                     "formation ca init)") from None
            raise
    return {"fingerprint": answer.fingerprint, "root_pem": answer.root_pem}
