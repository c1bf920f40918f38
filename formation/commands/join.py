"""`formation network create`, `formation invite create` and `formation join`: founding a
network, inviting hosts and joining one. All are clients of the local node's API."""

from __future__ import annotations

import asyncio
import contextlib
import re
from datetime import UTC, datetime
from typing import Literal

import click

from formation.cli_output import emit_json
from formation.commands.common import Context, json_option, run
from formation.errors import FormationError

_DURATION = re.compile(r"^([0-9]+)([smhd])$")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_duration(text: str) -> int:
    """'90s', '30m', '1h', '7d' -> seconds."""
    match = _DURATION.match(text.strip())
    if not match:
        raise FormationError(f"--expires {text!r}: expected a number and a unit (s, m, h, d), "
                             "e.g. 1h or 30m")
    return int(match.group(1)) * _UNITS[match.group(2)]


def _call(obj: Context, endpoint, body=None, timeout_s: float = 15.0, **params):
    async def go():
        async with obj.client(None, timeout_s=timeout_s) as client:
            return await client.call(endpoint, body, **params)

    return run(go)


def _call_with_progress(obj: Context, endpoint, body, timeout_s: float, quiet: bool):
    """Runs a join call while printing the node's `join` progress events as they happen."""
    async def go():
        async with obj.client(None, timeout_s=timeout_s) as client, \
                obj.client(None, timeout_s=timeout_s) as watcher:
            async def follow():
                async for event in watcher.events(topic="join"):
                    if event.kind == "progress" and not quiet:
                        click.echo(f"  {event.data.get('step')}")

            follower = asyncio.ensure_future(follow())
            await asyncio.sleep(0.1)  # subscribed before the first step is published
            try:
                return await client.call(endpoint, body)
            finally:
                follower.cancel()
                with contextlib.suppress(BaseException):
                    await follower

    return run(go)


# network -------------------------------------------------------------------------------------
@click.group()
def network() -> None:
    """Found a network (this node becomes its first admin).

    \b
      formation network create lab --cidr 10.42.0.0/16
      formation network remove-node ID      (admin) take a node out of the network
    """


@network.command("create")
@click.argument("name")
@click.option("--cidr", default="10.42.0.0/16", show_default=True,
              help="Mesh address range of the network.")
@json_option
@click.pass_obj
def network_create(obj: Context, name: str, cidr: str, as_json: bool) -> None:
    """Found network NAME with this node as its first admin (writes the genesis op)."""
    from formation.api import state_models as sm
    from formation.api import state_routes as sr

    op = _call(obj, sr.state_create_network, sm.CreateNetworkRequest(name=name, cidr=cidr))
    status = _call(obj, sr.state_status)
    if as_json:
        emit_json({"network": status.network, "name": name, "cidr": cidr, "genesis": op.id,
                   "admin": op.author})
        return
    click.echo(f"network {name} founded: id {status.network}, mesh {cidr}")
    click.echo(f"this node ({op.author[:16]}...) is its first admin; "
               "invite hosts with: formation invite create")


@network.command("remove-node")
@click.argument("node_id", metavar="ID")
@json_option
@click.pass_obj
def network_remove_node(obj: Context, node_id: str, as_json: bool) -> None:
    """Remove node ID (as `formation peers` lists it) from the network: writes node.remove,
    which takes its roles away on every replica; its requests, heartbeats and mesh peer stop
    being accepted."""
    from formation.api import join_routes as jr

    if not re.fullmatch(r"n[a-z2-7]{24}", node_id):
        raise FormationError(f"ID {node_id!r}: expected a node id as `formation peers` lists it "
                             "(n + 24 characters)")
    result = _call(obj, jr.node_remove, id=node_id)
    if as_json:
        emit_json(result)
    else:
        click.echo(f"removed {result.name or '?'} ({result.id}) from the network: op "
                   f"{result.op[:12]}")


# invite --------------------------------------------------------------------------------------
@click.group()
def invite() -> None:
    """Invite hosts into this node's network (admins only).

    \b
      formation invite create --expires 1h       a one-time token for `formation join`
    """


@invite.command("create")
@click.option("--expires", default="1h", show_default=True,
              help="How long the token is valid: 90s, 30m, 1h, 7d (at most 30 days).")
@click.option("--role", type=click.Choice(["node", "admin"]), default="node", show_default=True,
              help="What the joining host becomes.")
@click.option("--qr/--no-qr", default=False,
              help="Also draw the token as a QR code in the terminal.")
@json_option
@click.pass_obj
def invite_create(obj: Context, expires: str, role: Literal["node", "admin"], qr: bool,
                  as_json: bool) -> None:
    """Make a one-time invite token (FMN2-XXXX-..., about 100 characters). Hand it to the
    joining host, which runs `formation join TOKEN` (case, spaces and dashes do not matter).
    Anyone holding the whole token can use it once."""
    from formation.api import join_models as jm
    from formation.api import join_routes as jr

    seconds = parse_duration(expires)
    if not 1 <= seconds <= 30 * 86400:
        raise FormationError(f"--expires {expires}: expected between 1 second and 30 days")
    result = _call(obj, jr.invite_create, jm.InviteRequest(expires_s=seconds, role=role))
    if as_json:
        emit_json(result)
        return
    until = datetime.fromtimestamp(result.expires_ms / 1000, UTC).strftime("%Y-%m-%d %H:%M UTC")
    click.echo(result.token)
    click.echo(f"(one-time {role} invite to network {result.network[:12]}..., valid until "
               f"{until}, via {', '.join(result.endpoints)}; admin {result.admin_fingerprint})",
               err=True)
    if qr:
        from formation.tui.qr_text import qr_code  # segno only, no Textual

        qr_code(result.token).terminal(compact=True)


# join ----------------------------------------------------------------------------------------
class _JoinGroup(click.Group):
    """`formation join TOKEN` and `formation join --request HOST:PORT` next to the
    subcommands `pending`, `approve`, `reject`."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        if args and args[0] not in self.commands and args[0] not in ("--help", "-h"):
            args = ["run", *args]
        return super().parse_args(ctx, args)


@click.group(cls=_JoinGroup)
def join() -> None:
    """Join a network, or decide on hosts that asked to join.

    \b
      formation join TOKEN                  join with an invite token (formation invite create)
      formation join --request HOST:PORT    ask an admin node and wait for its approval
      formation join pending                (admin) hosts waiting for approval
      formation join approve ID / reject ID (admin) decide on one
    """


@join.command("run", hidden=True)
@click.argument("token", nargs=-1)
@click.option("--request", "request_address", metavar="HOST:PORT",
              help="Ask the admin node at HOST:PORT to let this host join, and wait.")
@click.option("--wait", "wait_s", default=600.0, show_default=True,
              help="With --request: seconds to wait for approval.")
@json_option
@click.pass_obj
def join_run(obj: Context, token: tuple[str, ...], request_address: str | None,
             wait_s: float, as_json: bool) -> None:
    """Join with TOKEN (typed in one word or several), or --request HOST:PORT without one."""
    from formation.api import join_models as jm
    from formation.api import join_routes as jr
    from formation.discovery import token as tokens

    if bool(token) == bool(request_address):
        raise FormationError("join: give a TOKEN or --request HOST:PORT (one of them)")
    if token:
        text = " ".join(token)
        tokens.decode(text)  # a typo is told here, before the node contacts anyone
        if not as_json:
            click.echo("joining with the invite token...")
        result = _call_with_progress(obj, jr.join_token, jm.JoinTokenRequest(token=text),
                                     60.0, as_json)
    else:
        assert request_address is not None  # exactly one of the two, checked above
        if not as_json:
            click.echo(f"asking {request_address} to join...")
        result = _call_with_progress(obj, jr.join_ask,
                                     jm.JoinAskRequest(address=request_address, wait_s=wait_s),
                                     wait_s + 60.0, as_json)
    if as_json:
        emit_json(result)
    else:
        click.echo(f"joined network {result.network_name} ({result.network}) as "
                   f"{result.node_id}; {result.ops} ops replicated")


@join.command("pending")
@json_option
@click.pass_obj
def join_pending(obj: Context, as_json: bool) -> None:
    """List hosts that asked to join and wait for an admin's approval."""
    from formation.api import join_routes as jr

    result = _call(obj, jr.join_pending)
    if as_json:
        emit_json(result)
        return
    if not result.pending:
        click.echo("no pending joins")
    for p in result.pending:
        click.echo(f"{p.id}  {p.name:<16} {p.address or '-':<21} key {p.key[:16]}... "
                   f"since {p.since[:19]}")


def _decide(obj: Context, endpoint, node_id: str, as_json: bool) -> None:
    if not re.fullmatch(r"n[a-z2-7]{24}", node_id):
        raise FormationError(f"ID {node_id!r}: expected a node id as listed by "
                             "`formation join pending` (n + 24 characters)")
    result = _call(obj, endpoint, id=node_id)
    if as_json:
        emit_json(result)
    else:
        click.echo(f"{result.id}: {result.status}")


@join.command("approve")
@click.argument("node_id", metavar="ID")
@json_option
@click.pass_obj
def join_approve(obj: Context, node_id: str, as_json: bool) -> None:
    """Admit the pending host ID (writes node.admit)."""
    from formation.api import join_routes as jr

    _decide(obj, jr.join_approve, node_id, as_json)


@join.command("reject")
@click.argument("node_id", metavar="ID")
@json_option
@click.pass_obj
def join_reject(obj: Context, node_id: str, as_json: bool) -> None:
    """Refuse the pending host ID."""
    from formation.api import join_routes as jr

    _decide(obj, jr.join_reject, node_id, as_json)
