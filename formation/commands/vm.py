"""`formation vm`: virtual machines of the network. Every command writes desired state through
a node's API (the local one, or --node HOST:PORT signed with this host's key); the node the
instance is placed on makes it so."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Any

import click

from formation.cli_output import emit_json
from formation.commands.common import Context, json_option, node_option, run

if TYPE_CHECKING:
    from formation.api import vm_models


@click.group()
def vm() -> None:
    """Virtual machines of the network: create, list, start, stop, resize, delete, serial.

    \b
      formation vm create --image NAME   create (placed by rule, started)
      formation vm ls [--account NAME]   every instance of the network (or an account's)
      formation vm show NAME             one instance and its status history
      formation vm start|stop|restart NAME
      formation vm resize NAME --vcpus N --memory MiB
      formation vm migrate NAME --to NODE  move it to another node without stopping it
      formation vm rm NAME               delete it (its node ends it, removes its disk)
      formation vm logs NAME [-f]        its serial output
      formation vm console NAME          its serial console (Ctrl-] leaves)

    An instance is named by its name, its id, or a unique prefix of its id.
    """


def _call(obj: Context, node_address: str | None, endpoint: Any, body: Any = None,
          **params: str) -> Any:
    async def go() -> Any:
        async with obj.client(node_address, timeout_s=30.0) as client:
            return await client.call(endpoint, body, **params)

    return run(go)


def _size(mb: int) -> str:
    return f"{mb // 1024}G" if mb % 1024 == 0 else f"{mb}M"


def _uptime(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    s = int(seconds)
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m{s % 60:02d}s"
    return f"{s // 3600}h{s % 3600 // 60:02d}m"


def _show_instance(inst: Any) -> None:
    click.echo(f"{inst.name} ({inst.id})")
    click.echo(f"  state    {inst.state}{' - ' + inst.reason if inst.reason else ''}"
               f" (desired {inst.desired})")
    click.echo(f"  node     {inst.node_name or '-'} {inst.node or ''}".rstrip())
    if inst.address:
        click.echo(f"  address  {inst.address}")
    click.echo(f"  size     {inst.vcpus} vCPU, {_size(inst.memory_mb)} memory, "
               f"{inst.disk_gb} GB disk" + (f", {inst.gpus} GPU" if inst.gpus else ""))
    click.echo(f"  image    {inst.image_name or '-'} {inst.image[:16]}")
    if inst.backend:
        click.echo(f"  backend  {inst.backend}")
    if inst.uptime_s is not None:
        click.echo(f"  uptime   {_uptime(inst.uptime_s)}")
    for line in inst.serial_tail:
        click.echo(f"  | {line}")


@vm.command("create")
@click.option("--image", required=True, metavar="NAME|DIGEST", help="The image to boot.")
@click.option("--name", help="A name unique in the network (default: from the image's).")
@click.option("--vcpus", type=int, default=1, show_default=True, help="vCPUs (1-128).")
@click.option("--memory", "memory_mb", type=int, default=512, show_default=True,
              metavar="MiB", help="Memory in MiB (512-262144).")
@click.option("--disk", "disk_gb", type=int, default=5, show_default=True, metavar="GB",
              help="The instance's disk in GB (5-65535).")
@click.option("--pin", "pin", metavar="ID", help="Run it on this node (name, key or key "
              "prefix) instead of where the rule places it.")
@click.option("--stopped", is_flag=True, help="Create it without starting it.")
@click.option("--egress", is_flag=True, help="Let it reach beyond the network (NAT through "
              "its host); by default it reaches only the network's instances and nodes.")
@click.option("--port", "ports", multiple=True, metavar="PORT/PROTO",
              help="A port it serves, like 80/tcp (repeatable); DNS gives each an SRV record.")
@click.option("--replicate", type=click.Choice(["restart", "never"]),
              help="If its host is lost: restart it elsewhere, or leave it failed. Default: "
              "restart unless its image has a disk (whose data would be lost).")
@json_option
@click.option("--node", "node", metavar="ID|HOST:PORT",
              help="ID: pin it to that node (as --pin). HOST:PORT: talk to the node there "
              "(signed with this host's key) instead of the local unix socket.")
@click.pass_obj
def create(obj: Context, image: str, name: str | None, vcpus: int, memory_mb: int,
           disk_gb: int, pin: str | None, stopped: bool, egress: bool, ports: tuple[str, ...],
           replicate: vm_models.Replicate | None, as_json: bool, node: str | None) -> None:
    """Create an instance from an image. It is placed by rule on a live node with room (or
    pinned with --node ID) and started there."""
    from pydantic import ValidationError

    from formation.api import vm_models, vm_routes
    from formation.errors import FormationError

    node_address = node if node and ":" in node else None
    if node and node_address is None:
        pin = pin or node
    try:
        body = vm_models.VmCreate(image=image, name=name, vcpus=vcpus, memory_mb=memory_mb,
                                  disk_gb=disk_gb, node=pin, egress=egress, ports=list(ports),
                                  replicate=replicate,
                                  desired="stopped" if stopped else "running")
    except ValidationError as exc:
        err = exc.errors()[0]
        field = {"memory_mb": "memory", "disk_gb": "disk", "node": "pin", "ports": "port"}.get(
            str(err["loc"][0]), str(err["loc"][0]))
        raise FormationError(f"--{field}: {err['msg']}") from None
    inst = _call(obj, node_address, vm_routes.vm_create, body)
    if as_json:
        emit_json(inst)
    else:
        click.echo(f"created {inst.name} ({inst.id[:12]}): {inst.state}"
                   + (f" - {inst.reason}" if inst.reason else ""))


@vm.command("ls")
@click.option("--account", metavar="NAME", default=None,
              help="Only the instances this account owns ('@nodes': those no account owns).")
@json_option
@node_option
@click.pass_obj
def ls(obj: Context, account: str | None, as_json: bool, node_address: str | None) -> None:
    """List every instance of the network: name, node, state, address, size, uptime, owner."""
    from formation.api import vm_routes

    found = _call(obj, node_address, vm_routes.vm_list)
    if account is not None:
        found = found.model_copy(update={
            "instances": [i for i in found.instances if _owned_by(i, account)]})
    if as_json:
        emit_json(found)
        return
    if not found.instances:
        click.echo(f"no instances of account {account}" if account is not None else
                   "no instances (create one with `formation vm create --image NAME`)")
        return
    click.echo(f"{'NAME':<20} {'ID':<12} {'NODE':<12} {'STATE':<9} {'ADDRESS':<15} {'VCPU':>4} "
               f"{'MEM':>6} {'UPTIME':>8}  {'OWNER':<12} REASON")
    for i in found.instances:
        click.echo(f"{i.name:<20} {i.id[:12]:<12} {(i.node_name or '-'):<12} {i.state:<9} "
                   f"{(i.address or '-'):<15} {i.vcpus:>4} {_size(i.memory_mb):>6} "
                   f"{_uptime(i.uptime_s):>8}  {_owner(i):<12} {i.reason}")


NODE_OWNED = "@nodes"  # no account name has '@' (the console's owner filter says the same)


def _owned_by(instance: vm_models.Instance, account: str) -> bool:
    return instance.account is None if account == NODE_OWNED else instance.account == account


def _owner(instance: vm_models.Instance) -> str:
    """The owning account, or '@' and the start of the key of the node that wrote it."""
    return instance.account or "@" + instance.owner[:8]


@vm.command("show")
@click.argument("instance")
@json_option
@node_option
@click.pass_obj
def show(obj: Context, instance: str, as_json: bool, node_address: str | None) -> None:
    """Show one instance and its status history (oldest first)."""
    from formation.api import vm_routes

    detail = _call(obj, node_address, vm_routes.vm_show, instance=instance)
    if as_json:
        emit_json(detail)
        return
    _show_instance(detail.instance)
    if detail.history:
        click.echo("  history")
    for change in detail.history:
        click.echo(f"    {change.time:%Y-%m-%d %H:%M:%S} {change.state:<9} {change.reason}")


def _lifecycle(name: str, endpoint_name: str, doc: str) -> None:
    @click.argument("instance")
    @json_option
    @node_option
    @click.pass_obj
    def command(obj: Context, instance: str, as_json: bool, node_address: str | None) -> None:
        from formation.api import vm_routes

        inst = _call(obj, node_address, getattr(vm_routes, endpoint_name), instance=instance)
        if as_json:
            emit_json(inst)
        else:
            click.echo(f"{inst.name}: desired {inst.desired}; now {inst.state}")

    command.__doc__ = doc
    vm.command(name)(command)


_lifecycle("start", "vm_start", "Desire the instance running (a failed one boots again).")
_lifecycle("restart", "vm_restart", "Restart the instance: a new boot.")


@vm.command("migrate")
@click.argument("instance")
@click.option("--to", "to", required=True, metavar="NODE",
              help="The target node: its name, key or a unique key prefix.")
@click.option("--restart", is_flag=True,
              help="Stop it here and start it there (its memory is lost) instead of moving "
              "it live.")
@json_option
@node_option
@click.pass_obj
def migrate(obj: Context, instance: str, to: str, restart: bool, as_json: bool,
            node_address: str | None) -> None:
    """Move the instance to another node without stopping it (QEMU: live migration over the
    mesh; Cloud Hypervisor: vm.send-migration). It keeps its address and name. Refused, with
    the reason, when it cannot move; progress is on `formation console` and the event stream."""
    from formation.api import vm_models, vm_routes

    move = _call(obj, node_address, vm_routes.vm_migrate,
                 vm_models.VmMigrate(to=to, restart=restart), instance=instance)
    if as_json:
        emit_json(move)
    else:
        click.echo(f"{move.name}: moving to {move.to_name} ({move.mode})")


@vm.command("stop")
@click.argument("instance")
@click.option("--force", is_flag=True, help="End it at once instead of asking the guest.")
@json_option
@node_option
@click.pass_obj
def stop(obj: Context, instance: str, force: bool, as_json: bool,
         node_address: str | None) -> None:
    """Desire the instance stopped: the guest is asked to power off (ACPI power button) and
    ended after vmm.stop_grace_s; --force ends it at once."""
    from formation.api import vm_models, vm_routes

    inst = _call(obj, node_address, vm_routes.vm_stop, vm_models.VmStop(force=force),
                 instance=instance)
    if as_json:
        emit_json(inst)
    else:
        click.echo(f"{inst.name}: desired {inst.desired}; now {inst.state}")


@vm.command("resize")
@click.argument("instance")
@click.option("--vcpus", type=int, help="vCPUs (1-128).")
@click.option("--memory", "memory_mb", type=int, metavar="MiB", help="Memory in MiB.")
@json_option
@node_option
@click.pass_obj
def resize(obj: Context, instance: str, vcpus: int | None, memory_mb: int | None,
           as_json: bool, node_address: str | None) -> None:
    """Change vCPUs and/or memory: live where the VMM can, else by a restart."""
    from pydantic import ValidationError

    from formation.api import vm_models, vm_routes
    from formation.errors import FormationError

    if vcpus is None and memory_mb is None:
        raise FormationError("resize: give --vcpus, --memory or both")
    try:
        body = vm_models.VmResize(vcpus=vcpus, memory_mb=memory_mb)
    except ValidationError as exc:
        err = exc.errors()[0]
        field = "memory" if err["loc"][0] == "memory_mb" else str(err["loc"][0])
        raise FormationError(f"--{field}: {err['msg']}") from None
    inst = _call(obj, node_address, vm_routes.vm_resize, body, instance=instance)
    if as_json:
        emit_json(inst)
    else:
        click.echo(f"{inst.name}: {inst.vcpus} vCPU, {_size(inst.memory_mb)}; now {inst.state}")


@vm.command("rm")
@click.argument("instance")
@json_option
@node_option
@click.pass_obj
def rm(obj: Context, instance: str, as_json: bool, node_address: str | None) -> None:
    """Delete the instance: its node ends it and removes its disk. There is no undo."""
    from formation.api import vm_routes

    _call(obj, node_address, vm_routes.vm_delete, instance=instance)
    if as_json:
        emit_json({"deleted": instance})
    else:
        click.echo(f"deleted {instance}")


@vm.command("logs")
@click.argument("instance")
@click.option("-f", "--follow", is_flag=True, help="Keep printing as the guest writes.")
@click.option("--tail", "tail_bytes", type=int, default=16384, show_default=True,
              metavar="BYTES", help="Start this many bytes before the end.")
@json_option
@node_option
@click.pass_obj
def logs(obj: Context, instance: str, follow: bool, tail_bytes: int, as_json: bool,
         node_address: str | None) -> None:
    """Print the instance's serial output (from the node running it)."""
    from formation.api import vm_models, vm_routes

    query = vm_models.SerialQuery(tail_bytes=tail_bytes, follow=follow)

    async def go() -> None:
        async with obj.client(node_address, timeout_s=30.0) as client:
            async for chunk in client.stream(vm_routes.vm_serial, query=query,
                                             instance=instance):
                if as_json:
                    emit_json(chunk)
                else:
                    sys.stdout.write(chunk.text)
                    sys.stdout.flush()

    try:
        run(go)
    except KeyboardInterrupt:
        pass


@vm.command("console")
@click.argument("instance")
@node_option
@click.pass_obj
def console(obj: Context, instance: str, node_address: str | None) -> None:
    """Attach to the instance's serial console: keystrokes go to the guest, its output comes
    back. Ctrl-] leaves."""
    from formation.commands.vm_console import attach

    attach(obj, node_address, instance)
