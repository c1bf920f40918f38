"""`formation state`: look into the replicated state store and check it."""

from __future__ import annotations

import json
from pathlib import Path

import click

from formation.cli_output import emit_json
from formation.commands.common import Context, json_option, node_option, run
from formation.errors import FormationError


@click.group()
def state() -> None:
    """The replicated state store: signed ops in a hash graph and the views folded from them.

    \b
      formation state status          network, op count, heads, refused ops, equivocations
      formation state view nodes      a view (network, nodes, addresses, instances, ...)
      formation state log             the op log, oldest first
      formation state verify          re-check every signature, id and parent link
    """


def _call(obj: Context, node_address: str | None, endpoint, body=None, query=None,
          timeout_s: float = 10.0, **params):
    async def go():
        async with obj.client(node_address, timeout_s=timeout_s) as client:
            return await client.call(endpoint, body, query, **params)

    return run(go)


@state.command("status")
@json_option
@node_option
@click.pass_obj
def status(obj: Context, as_json: bool, node_address: str | None) -> None:
    """Show the network, op count, heads, buffer, refused ops, equivocations and peers."""
    from formation.api import state_routes as sr

    result = _call(obj, node_address, sr.state_status)
    if as_json:
        emit_json(result)
        return
    click.echo(f"network        {result.network or '(none yet)'}")
    click.echo(f"ops            {result.ops} from {result.authors} author(s)")
    click.echo(f"heads          {len(result.heads)}")
    click.echo(f"buffered       {result.buffered} ({result.buffer_dropped} dropped)")
    click.echo(f"held (future)  {result.held_future} ({result.held_future_dropped} dropped)")
    refused = ", ".join(f"{k} {v}" for k, v in sorted(result.refused.items())) or "none"
    click.echo(f"refused        {refused}")
    forks = sum(e.forks for e in result.equivocators)
    click.echo(f"equivocations  {forks} fork(s) by {len(result.equivocators)} author(s)")
    for e in result.equivocations:
        click.echo(f"  author {e.author[:16]} seq {e.seq}: {e.forks} ops "
                   f"{' '.join(o[:16] for o in e.ops)}")
    for p in result.peers:
        mark = {True: "ok", False: "failing", None: "not yet"}[p.ok]
        click.echo(f"peer {p.address:<21} {mark} {p.error}")


@state.command("heads")
@json_option
@node_option
@click.pass_obj
def heads(obj: Context, as_json: bool, node_address: str | None) -> None:
    """Print the ids of the ops nothing builds on yet (equal heads = equal replicas)."""
    from formation.api import state_routes as sr

    result = _call(obj, node_address, sr.state_heads)
    if as_json:
        emit_json(result)
    else:
        click.echo("\n".join(result.heads) or "(no ops)")


@state.command("log")
@click.option("--after", default=0, show_default=True, help="Start after this log position.")
@click.option("--limit", default=100, show_default=True, type=click.IntRange(1, 1000))
@json_option
@node_option
@click.pass_obj
def log_(obj: Context, after: int, limit: int, as_json: bool, node_address: str | None) -> None:
    """Print the op log in this replica's order: id, author, seq, kind."""
    from formation.api import state_models as sm
    from formation.api import state_routes as sr

    page = _call(obj, node_address, sr.state_log, query=sm.LogQuery(after=after, limit=limit))
    if as_json:
        emit_json(page)
        return
    for op in page.ops:
        click.echo(f"{op.id[:16]}  {op.author[:16]} #{op.seq:<5} {op.kind}")
    if page.next_after is not None:
        click.echo(f"(more: --after {page.next_after})")


@state.command("show")
@click.argument("op_id")
@json_option
@node_option
@click.pass_obj
def show(obj: Context, op_id: str, as_json: bool, node_address: str | None) -> None:
    """Print one op, decoded, by its id (64 hex characters)."""
    from formation.api import state_routes as sr

    if len(op_id) != 64 or any(c not in "0123456789abcdef" for c in op_id):
        raise FormationError(f"op id {op_id!r}: expected 64 lowercase hex characters")
    op = _call(obj, node_address, sr.state_op, op_id=op_id)
    if as_json:
        emit_json(op)
    else:
        data = op.model_dump(exclude={"raw"})
        click.echo(json.dumps(data, indent=2))


@state.command("view")
@click.argument("collection", type=click.Choice(
    ["network", "nodes", "addresses", "instances", "images", "dns", "invites", "accounts",
     "grants", "ca"]))
@json_option
@node_option
@click.pass_obj
def view(obj: Context, collection: str, as_json: bool, node_address: str | None) -> None:
    """Print a view folded from the log."""
    from formation.api import state_routes as sr

    result = _call(obj, node_address, sr.state_view, collection=collection)
    if as_json:
        emit_json(result)
    else:
        for item in result.items:
            click.echo(json.dumps(item, sort_keys=True))


def _offline_replica(obj: Context):
    from formation.node.state.component import DB_FILE
    from formation.node.state.replica import Replica

    path: Path = obj.settings.data_dir / DB_FILE
    if not path.exists():
        raise FormationError(f"no state database at {path}")
    return Replica(path)


@state.command("verify")
@json_option
@node_option
@click.pass_obj
def verify(obj: Context, as_json: bool, node_address: str | None) -> None:
    """Re-check every stored op's encoding, id, signature and parent links; exit 1 on faults.

    Asks the running node; without one, checks the database in the data directory."""
    from formation.api import state_routes as sr
    from formation.api.client import NodeUnreachable
    from formation.api.models import Empty

    try:
        result = _call(obj, node_address, sr.state_verify, Empty(), timeout_s=600)
        ops, faults = result.ops, result.faults
    except NodeUnreachable:
        if node_address:
            raise
        replica = _offline_replica(obj)
        ops, faults = replica.count, replica.verify()
        replica.close()
    if as_json:
        emit_json({"ops": ops, "faults": faults})
    else:
        click.echo(f"{ops} ops checked, {len(faults)} fault(s)")
        click.echo("\n".join(faults))
    if faults:
        raise SystemExit(1)


@state.command("rebuild")
@json_option
@click.pass_obj
def rebuild(obj: Context, as_json: bool) -> None:
    """Recompute every view from the log and report whether they equal the incremental ones.

    Asks the running node; without one, rebuilds the database in the data directory."""
    from formation.api import state_routes as sr
    from formation.api.client import NodeUnreachable
    from formation.api.models import Empty

    try:
        result = _call(obj, None, sr.state_rebuild, Empty(), timeout_s=600).model_dump()
    except NodeUnreachable:
        replica = _offline_replica(obj)
        result = replica.rebuild()
        replica.close()
    if as_json:
        emit_json(result)
    else:
        verdict = "equal to" if result["equal"] else "DIFFERENT from"
        click.echo(f"rebuilt views from {result['ops']} ops: {verdict} the incremental views"
                   + (f" ({', '.join(result['differing'])})" if result["differing"] else ""))
    if not result["equal"]:
        raise SystemExit(1)


@state.command("create-network")
@click.argument("name")
@click.option("--cidr", default="10.42.0.0/16", show_default=True, help="Mesh address range.")
@json_option
@click.pass_obj
def create_network(obj: Context, name: str, cidr: str, as_json: bool) -> None:
    """Found a network with this node as its first admin (writes the genesis op)."""
    from formation.api import state_models as sm
    from formation.api import state_routes as sr

    op = _call(obj, None, sr.state_create_network, sm.CreateNetworkRequest(name=name, cidr=cidr))
    if as_json:
        emit_json(op)
    else:
        click.echo(f"network {name} founded: genesis {op.id}")


@state.command("append")
@click.argument("kind")
@click.argument("payload", default="{}")
@json_option
@click.pass_obj
def append(obj: Context, kind: str, payload: str, as_json: bool) -> None:
    """Sign and apply one op as this node, e.g. `append node.admit '{"node": KEY, "roles":
    ["member"]}'`. PAYLOAD is a JSON object."""
    from formation.api import state_models as sm
    from formation.api import state_routes as sr

    try:
        data = json.loads(payload)
    except json.JSONDecodeError as exc:
        raise FormationError(f"payload: not JSON: {exc.msg} at column {exc.colno}") from None
    if not isinstance(data, dict):
        raise FormationError("payload: expected a JSON object")
    op = _call(obj, None, sr.state_append, sm.AppendRequest(kind=kind, payload=data))
    if as_json:
        emit_json(op)
    else:
        click.echo(op.id)
