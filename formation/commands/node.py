"""`formation node`: the node service itself, in the foreground."""

from __future__ import annotations

import click

from formation.cli_output import emit_json
from formation.commands.common import Context, json_option, node_option, run


@click.group(invoke_without_command=True)
@click.option("--wait-for-data-mount", is_flag=True,
              help="Import first, then wait (up to 170 s) until data_dir is a mount point "
              "before starting: for a unit that starts the node while its data partition is "
              "still being mounted (the appliance).")
@click.pass_context
def node(ctx: click.Context, wait_for_data_mount: bool) -> None:
    """Run the node service in the foreground until SIGTERM or Ctrl-C.

    It serves the API on the unix socket (and on api.listen for other nodes), logs to stderr in
    logfmt (or JSON with log.format: json), and finishes in-flight requests before it exits.
    """
    if ctx.invoked_subcommand is not None:
        return
    from formation.commands.node_run import run_node

    run_node(ctx.obj, wait_for_data_mount=wait_for_data_mount)


@node.command("drain")
@click.argument("node_ref", metavar="ID")
@click.option("--restart", is_flag=True,
              help="Instances that cannot move live are stopped and started elsewhere "
              "instead of refusing the drain.")
@json_option
@node_option
@click.pass_obj
def drain(obj: Context, node_ref: str, restart: bool, as_json: bool,
          node_address: str | None) -> None:
    """Move every instance off node ID (name, key or key prefix) to where the placement rule
    puts it without that node, live. Refused as a whole, with the reason, before anything is
    written when one cannot move (--restart: stop and start those elsewhere). Admins only."""
    from formation.api import vm_models, vm_routes

    async def go() -> vm_models.DrainResult:
        async with obj.client(node_address, timeout_s=30.0) as client:
            return await client.call(vm_routes.node_drain,
                                     vm_models.NodeDrain(restart=restart), node=node_ref)

    result = run(go)
    if as_json:
        emit_json(result)
        return
    if not result.moves:
        click.echo("nothing runs there")
    for move in result.moves:
        click.echo(f"{move.name}: moving to {move.to_name} ({move.mode})")


@node.command("capabilities")
@click.argument("node_ref", metavar="ID")
@click.option("--set", "wanted", metavar="LIST",
              help="Replace the node's capabilities with LIST: edge, builder, comma-separated "
              "(none clears them). Signed by this node, which must be a network admin.")
@json_option
@click.pass_obj
def capabilities(obj: Context, node_ref: str, wanted: str | None, as_json: bool) -> None:
    """Show or set what node ID (name, key or key prefix) is asked to do besides running
    instances: `edge` runs the proxy engine for the network's routes, `builder` builds workload
    images for others. Not a role: it changes nobody's right to sign. Talks to the local node."""
    from formation.api import state_models as sm
    from formation.api import state_routes as sr
    from formation.commands.capability_cli import describe, find_node, line, parse_set

    caps = parse_set(wanted) if wanted is not None else None

    async def go() -> dict:
        async with obj.client(None) as client:
            view = await client.call(sr.state_view, collection="nodes")
            found = find_node(view.items, node_ref)
            if caps is None:
                return found
            op = await client.call(sr.state_append, sm.AppendRequest(
                kind="node.capabilities", payload={"node": found["key"], "capabilities": caps}))
            return {**found, "capabilities": caps, "op": op.id}

    found = run(go)
    about = describe(found) | ({"op": found["op"]} if "op" in found else {})
    if as_json:
        emit_json(about)
    else:
        click.echo(line(found))
