"""`formation node capabilities`: its own parsing (--set) and which node ID names, kept apart
from the click command so they are tested without a node. Capabilities are what an admin asks a
member to do besides running instances (docs/protocol.md, node.capabilities): `edge` runs the
proxy engine, `builder` builds workload images for others."""

from __future__ import annotations

from typing import Any

from formation.errors import FormationError

# The same names as formation/node/state/capability_rules.CAPABILITIES (the CLI does not import
# the node; tests/unit/commands/test_capability_cli.py checks they agree).
CAPABILITIES = ("builder", "edge")
NONE_WORDS = ("", "none", "-")
ON_BUILDER = "--on-builder"  # pack build's flag that builds on a builder


def parse_set(text: str) -> list[str]:
    """`edge,builder` -> ["builder", "edge"]; `none` (or empty) clears them."""
    words = [w.strip().lower() for w in text.split(",")]
    if len(words) == 1 and words[0] in NONE_WORDS:
        return []
    unknown = [w for w in words if w not in CAPABILITIES]
    if unknown:
        raise FormationError(f"--set {text}: expected capabilities from "
                             f"{', '.join(CAPABILITIES)} separated by commas (or none); "
                             f"{unknown[0]!r} is not one")
    return sorted(set(words))


def find_node(nodes: list[dict[str, Any]], ref: str) -> dict[str, Any]:
    """The node ID names: its name, its key, or a prefix of its key (6 hex or more) that names
    exactly one."""
    for n in nodes:
        if ref in (n.get("key"), n.get("name")):
            return n
    hits = [n for n in nodes if len(ref) >= 6 and str(n.get("key", "")).startswith(ref)]
    if len(hits) == 1:
        return hits[0]
    if len(hits) > 1:
        raise FormationError(f"node {ref}: the prefix names {len(hits)} nodes; give more of "
                             "the key")
    raise FormationError(f"node {ref}: no member of the network has this name, key or key "
                         "prefix (see `formation state view nodes`)")


def _caps(node: dict[str, Any]) -> list[str]:
    caps = node.get("capabilities")
    return sorted(caps) if isinstance(caps, list) else []


def describe(node: dict[str, Any]) -> dict[str, Any]:
    """The JSON a script reads: {node, name, capabilities}."""
    return {"node": node["key"], "name": node.get("name"), "capabilities": _caps(node)}


def line(node: dict[str, Any]) -> str:
    about = describe(node)
    who = about["name"] or about["node"][:12]
    return f"{who} ({about['node'][:12]}): {', '.join(about['capabilities']) or 'none'}"


def builder_hint(nodes: list[dict[str, Any]], own_key: str | None) -> str | None:
    """When the node asked to build lacks the `builder` capability and others hold it: one line
    naming them and how to ask one (`--node` with its API address). None otherwise: a node
    without the capability may still build (the capability says who is meant to, not who may)."""
    mine = next((n for n in nodes if n.get("key") == own_key), {})
    if "builder" in _caps(mine):
        return None
    builders = [n for n in nodes if n.get("key") != own_key and "builder" in _caps(n)]
    if not builders:
        return None
    named = []
    for n in builders[:3]:
        endpoints = n.get("endpoints") or []
        who = n.get("name") or str(n["key"])[:12]
        named.append(f"{who} (formation pack build --node {endpoints[0]})" if endpoints
                     else who)
    more = f" and {len(builders) - 3} more" if len(builders) > 3 else ""
    return (f"hint: the node asked lacks the builder capability; held by {', '.join(named)}"
            f"{more} ({ON_BUILDER} picks one)")


async def builder_hint_of(client: Any) -> str | None:
    """builder_hint for the node `client` talks to; None when it cannot be asked (a hint must
    never hide the error it goes with)."""
    from formation.api import routes
    from formation.api import state_routes as sr

    try:
        me = (await client.call(routes.node_status)).identity.public_key
        nodes = (await client.call(sr.state_view, collection="nodes")).items
    except FormationError:
        return None
    return builder_hint(nodes, me)



def pick_builder(nodes: list[dict[str, Any]], own_key: str | None) -> str | None:
    """Where `pack build --on-builder` builds: None when the node asked is a builder itself
    (build there, as without the flag), else the API address (HOST:PORT) of the first builder
    by name that publishes one; one line why not when there is none."""
    mine = next((n for n in nodes if n.get("key") == own_key), {})
    if "builder" in _caps(mine):
        return None
    builders = sorted((n for n in nodes if n.get("key") != own_key and "builder" in _caps(n)),
                      key=lambda n: (str(n.get("name") or ""), str(n.get("key"))))
    if not builders:
        raise FormationError(f"{ON_BUILDER}: no node of the network has the builder capability "
                             "(an admin gives it: formation node capabilities ID --set builder)")
    for n in builders:
        endpoints = n.get("endpoints") or []
        if endpoints:
            return str(endpoints[0])
    names = ", ".join(str(n.get("name") or str(n["key"])[:12]) for n in builders)
    raise FormationError(f"{ON_BUILDER}: the builders ({names}) publish no API address; "
                         "give one with --node HOST:PORT")


async def builder_address(client: Any) -> str | None:
    """pick_builder for the network of the node `client` talks to."""
    from formation.api import routes
    from formation.api import state_routes as sr

    me = (await client.call(routes.node_status)).identity.public_key
    return pick_builder((await client.call(sr.state_view, collection="nodes")).items, me)
