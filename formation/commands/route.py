"""`formation route`: public access to instances through the network's edge nodes. A route is a
`route.set` op in the state store; every edge node serves it (docs/operations.md, "Routes").

Two ways to write one: as this node's operator (the local socket, or --node HOST:PORT signed with
this host's key; the node signs the op and must be a network admin), or as a tenant with --key
(or --profile): the op is signed by your account key on this machine and a node only relays it,
like `formation tenant`."""

from __future__ import annotations

from typing import Any, Literal

import click

from formation.cli_output import emit_json
from formation.commands.common import Context, json_option, run
from formation.commands.tenant import with_tenant_client
from formation.errors import FormationError


class RouteError(FormationError):
    pass


def _options(fn: Any) -> Any:
    fn = click.option("--profile", metavar="NAME",
                      help="As a tenant: a profile of ~/.config/formation/client.yaml.")(fn)
    fn = click.option("--key", "key_file", metavar="FILE|agent:[NAME]",
                      help="As a tenant: your account key file, or agent:... for your "
                      "ssh-agent's Ed25519 key (the op is signed with it).")(fn)
    fn = click.option("--node", "node_address", metavar="HOST:PORT",
                      help="The node to ask (default: this host's unix socket).")(fn)
    return json_option(fn)


@click.group()
def route() -> None:
    """Public access: hostnames served by instances through the network's edge nodes.

    \b
      formation route add www.example.com --to web          http to web's one EXPOSEd port
      formation route add www.example.com --to web:8080 --https
      formation route add db.example.com --to db:5432 --tcp 15432
      formation route add '*.example.com' --prefix web      every web* instance, as they come
      formation route ls
      formation route rm www.example.com

    With --key FILE (or --profile) you act as a tenant: routes of your own account, signed by
    your key; otherwise as this node (a network admin).
    """


def _tenant(node_address: str | None, key_file: str | None, profile: str | None) -> bool:
    return key_file is not None or profile is not None


def _as_node(obj: Context, node_address: str | None, endpoint: Any, body: Any = None,
             **params: str) -> Any:
    async def go() -> Any:
        async with obj.client(node_address, timeout_s=30.0) as client:
            return await client.call(endpoint, body, **params)

    return run(go)


def parse_to(values: tuple[str, ...]) -> tuple[list[str], int | None]:
    """INSTANCE[:PORT] each; one port for the route (the instances serve the same one)."""
    names: list[str] = []
    ports: set[int] = set()
    for value in values:
        name, _, port = value.partition(":")
        if not name:
            raise RouteError(f"--to {value}: expected INSTANCE[:PORT]")
        if port:
            if not port.isdigit() or not 1 <= int(port) <= 65535:
                raise RouteError(f"--to {value}: expected a port from 1 to 65535 after ':'")
            ports.add(int(port))
        names.append(name)
    if len(ports) > 1:
        raise RouteError("--to: the instances of one route serve one port; got "
                         + ", ".join(map(str, sorted(ports))))
    return names, ports.pop() if ports else None


def _find(items: list[dict[str, Any]], ref: str) -> dict[str, Any]:
    found = [i for i in items if ref in (i.get("name"), i["key"])]
    if not found and len(ref) >= 6:
        found = [i for i in items if i["key"].startswith(ref)]
    if len(found) != 1:
        raise RouteError(f"--to {ref}: " + ("no such instance of your account" if not found
                                            else "ambiguous; give more of the id"))
    return found[0]


def _default_port(items: list[dict[str, Any]], protocol: str) -> int:
    exposed = sorted({int(p.split("/")[0]) for i in items
                      for p in (i.get("spec") or {}).get("ports") or [] if p.endswith("/tcp")})
    if len(exposed) == 1:
        return exposed[0]
    if not exposed and protocol != "tcp":
        return 80
    raise RouteError("--to: name the port (INSTANCE:PORT); the instances expose "
                     + (", ".join(map(str, exposed)) or "no port"))


@route.command("add")
@click.argument("host")
@click.option("--to", "to", multiple=True, metavar="INSTANCE[:PORT]",
              help="An instance that serves it (repeatable); PORT: one it EXPOSEs (default: "
              "its only one, or 80).")
@click.option("--prefix", metavar="NAME", help="Instead of --to: every instance whose name "
              "starts with NAME (your account's), as they come and go.")
@click.option("--tcp", "listen", type=click.IntRange(1, 65535), metavar="PORT",
              help="A tcp route: the edge's public PORT forwards to the instances' port.")
@click.option("--https", "https", is_flag=True,
              help="Serve it over HTTPS (a certificate by ACME); default: http.")
@click.option("--account", metavar="NAME", help="As this node: the owning account (default: "
              "the instances').")
@_options
@click.pass_obj
def add(obj: Context, host: str, to: tuple[str, ...], prefix: str | None, listen: int | None,
        https: bool, account: str | None, as_json: bool, node_address: str | None,
        key_file: str | None, profile: str | None) -> None:
    """Serve HOST (www.example.com, or *.example.com) from instances."""
    if listen is not None and https:
        raise RouteError("--tcp, --https: a route is one of http, https, tcp")
    if bool(to) == (prefix is not None):
        raise RouteError("--to: expected the instances that serve it (or --prefix NAME)")
    protocol: Literal["http", "https", "tcp"] = (
        "tcp" if listen is not None else "https" if https else "http")
    names, port = parse_to(to)
    if _tenant(node_address, key_file, profile):
        done = with_tenant_client(
            node_address, key_file, profile, lambda client, identity: _relay_set(
                client, identity, host, protocol, names, port, prefix, listen))
        _emit(done, as_json, f"routed {host} ({protocol}) for account {done.account}: "
              f"{done.kind} {done.id[:12]} {done.status}")
        return
    from formation.api import route_models as rm
    from formation.api import route_routes as rr

    body = rm.RouteSet(host=host, protocol=protocol, port=port, listen=listen, to=names,
                       prefix=prefix, account=account)
    info = _as_node(obj, node_address, rr.route_set, body)
    _emit(info, as_json, _line(info))


class _Written:
    """What a tenant's route add prints: the relayed op and the account it is for."""

    def __init__(self, relayed: Any, account: str) -> None:
        self.id, self.kind, self.status, self.account = (relayed.id, relayed.kind,
                                                         relayed.status, account)

    def model_dump(self) -> dict[str, Any]:
        return {"id": self.id, "kind": self.kind, "status": self.status,
                "account": self.account}


async def _relay_set(client: Any, identity: Any, host: str, protocol: str, names: list[str],
                     port: int | None, prefix: str | None, listen: int | None) -> _Written:
    from formation.api import account_routes as ar
    from formation.tenant_client import relay

    me = await client.call(ar.tenant_account)
    items = (await client.call(ar.tenant_instances)).items
    mine = [i for i in items if i.get("account") == me.name] if "admin" not in me.roles \
        else items
    payload: dict[str, Any] = {"host": host, "protocol": protocol, "account": me.name}
    if prefix is not None:
        payload["prefix"] = prefix
        serving = [i for i in mine if str(i.get("name", "")).startswith(prefix)]
    else:
        serving = [_find(mine, name) for name in names]
        payload["instances"] = list(dict.fromkeys(i["key"] for i in serving))
    payload["port"] = port if port is not None else _default_port(serving, protocol)
    if listen is not None:
        payload["listen"] = listen
    return _Written(await relay(client, identity, "route.set", payload), me.name)


def _emit(value: Any, as_json: bool, line: str) -> None:
    if as_json:
        emit_json(value.model_dump() if isinstance(value, _Written) else value)
    else:
        click.echo(line)


def _line(info: Any) -> str:
    served = ", ".join(f"{b.name}@{b.address or '-'}" for b in info.backends) or "nothing yet"
    port = f" :{info.listen}" if info.listen else ""
    return (f"routed {info.host}{port} ({info.protocol}) -> port {info.port} of {served}"
            + (f" for account {info.account}" if info.account else ""))


@route.command("ls")
@_options
@click.pass_obj
def ls(obj: Context, as_json: bool, node_address: str | None, key_file: str | None,
       profile: str | None) -> None:
    """The routes (as a tenant: your account's) and their backends' health."""
    from formation.api import route_routes as rr

    if _tenant(node_address, key_file, profile):
        async def work(client: Any, _identity: Any) -> Any:
            return await client.call(rr.tenant_routes)

        found = with_tenant_client(node_address, key_file, profile, work)
    else:
        found = _as_node(obj, node_address, rr.route_list)
    if as_json:
        emit_json(found)
        return
    if not found.routes:
        click.echo("no routes (add one with `formation route add HOST --to INSTANCE`)")
        return
    click.echo(f"{'HOST':<32} {'PROTO':<6} {'PORT':>5} {'ACCOUNT':<12} BACKENDS")
    for r in found.routes:
        backends = " ".join(f"{b.name}@{b.address or '-'}" + _health(b.healthy)
                            for b in r.backends) or "-"
        host = r.host + (f":{r.listen}" if r.listen else "")
        note = f"  ({r.conflict})" if r.conflict else ""
        click.echo(f"{host:<32} {r.protocol:<6} {r.port:>5} {(r.account or '-'):<12} "
                   f"{backends}{note}")


def _health(healthy: bool | None) -> str:
    return "" if healthy is None else " (up)" if healthy else " (DOWN)"


@route.command("rm")
@click.argument("host")
@_options
@click.pass_obj
def rm(obj: Context, host: str, as_json: bool, node_address: str | None,
       key_file: str | None, profile: str | None) -> None:
    """Stop serving HOST: removes its routes."""
    from formation.api import route_routes as rr

    if _tenant(node_address, key_file, profile):
        async def work(client: Any, identity: Any) -> list[str]:
            from formation.tenant_client import relay

            routes = [r for r in (await client.call(rr.tenant_routes)).routes if r.host == host]
            if not routes:
                raise RouteError(f"{host}: no route of your account")
            return [(await relay(client, identity, "route.remove", {"route": op})).id
                    for r in routes for op in r.ops]

        removed = with_tenant_client(node_address, key_file, profile, work)
        result: Any = {"host": host, "removed": removed}
    else:
        result = _as_node(obj, node_address, rr.route_remove, host=host)
        removed = result.removed
    if as_json:
        emit_json(result)
    else:
        click.echo(f"removed {host} ({len(removed)} op{'s' * (len(removed) != 1)})")
