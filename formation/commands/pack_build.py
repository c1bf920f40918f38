"""`pack build` and `pack ship`: a Formfile and its build context built into a workload image
on a node (the local one, or --node HOST:PORT with the context uploaded), its progress followed
on the node's event stream; `ship` then creates an instance of it with the Formfile's
resources. The `pack` group (formation/commands/pack.py) adds these two as `build` and `ship`."""

from __future__ import annotations

import contextlib
import sys
from pathlib import Path
from typing import Any

import click

from formation.cli_output import emit_json
from formation.commands.common import Context, json_option, node_option, run
from formation.errors import FormationError

START_TIMEOUT_S = 120.0  # the node unpacks and parses the context before it answers
POLL_S = 2.0  # without events, the build's state is read this often (a missed event)
DEFAULT_DISK_GB = 5
BAR = 24


class BuildFailed(FormationError):
    """The build failed on the node; the Formfile line was printed above the reason."""


def _load(directory: str) -> tuple[Any, Path]:
    """The Formfile read and checked here first: its mistakes are named before the node is
    asked anything (exit 2, as `pack validate`)."""
    from formation.pack.formfile import FormfileError, load_formfile

    try:
        return load_formfile(Path(directory).resolve())
    except FormfileError as exc:
        click.echo(str(exc), err=True)
        error = FormationError(f"{directory}: the Formfile has {len(exc.problems)} "
                               f"problem(s); nothing was built")
        error.exit_code = 2
        raise error from None


def _request(context: Path, remote: bool, name: str | None, reuse: bool) -> Any:
    """The build request, or (for a context too large to travel in it) the packed tar, which
    build_on_node uploads in chunks first."""
    from formation.api import pack_models as pm

    if not remote:
        return pm.PackBuildStart(context=str(context), name=name, reuse=reuse)
    import base64

    from formation.node.pack.context import pack_context

    packed = pack_context(context)
    if len(packed) > pm.MAX_UPLOAD_BYTES:
        raise FormationError(f"{context}: the build context is {len(packed) >> 20} MiB "
                             f"packed; over TCP at most {pm.MAX_UPLOAD_BYTES >> 20} MiB "
                             f"(build it on the node itself for a larger one)")
    tar = base64.b64encode(packed).decode()
    if len(tar) > pm.MAX_CONTEXT_TAR_B64:
        return packed
    return pm.PackBuildStart(context_tar=tar, name=name, reuse=reuse)


async def upload_context(client: Any, packed: bytes) -> str:
    """Uploads a packed context in chunks (each request under the API's body limit); returns
    the upload's id for PackBuildStart.upload."""
    import base64
    import hashlib

    from formation.api import pack_models as pm
    from formation.api import pack_routes

    upload = await client.call(pack_routes.pack_upload_start, pm.PackUploadStart(
        size=len(packed), sha256=hashlib.sha256(packed).hexdigest()))
    step = pm.MAX_CHUNK_B64 // 4 * 3
    try:
        for offset in range(0, len(packed), step):
            data = base64.b64encode(packed[offset:offset + step]).decode()
            await client.call(pack_routes.pack_upload_chunk,
                              pm.PackUploadChunk(offset=offset, data=data), upload=upload.id)
    except BaseException:
        with contextlib.suppress(Exception):
            await client.call(pack_routes.pack_upload_cancel, upload=upload.id)
        raise
    return str(upload.id)


class ProgressView:
    """One line redrawn in place on a terminal (stderr), else one line per step."""

    def __init__(self, quiet: bool) -> None:
        self.quiet = quiet
        self.tty = sys.stderr.isatty()
        self.last_step: int | None = None

    def show(self, step: Any) -> None:
        if self.quiet:
            return
        where = f"line {step.line} " if step.line else ""
        text = (f"step {step.step}/{step.total} {where}{step.label}"
                f"{' (cached)' if step.cached else ''}")
        if self.tty:
            filled = round(step.fraction * BAR)
            bar = "#" * filled + "-" * (BAR - filled)
            line = f"\r[{bar}] {step.fraction:4.0%} {text}"[:200]
            sys.stderr.write(line.ljust(100))
            sys.stderr.flush()
        elif step.step != self.last_step:
            click.echo(f"{step.fraction:4.0%} {text}", err=True)
        self.last_step = step.step

    def note(self, text: str) -> None:
        if not self.quiet:
            self.end()
            click.echo(text, err=True)

    def end(self) -> None:
        if self.tty and self.last_step is not None:
            sys.stderr.write("\n")
            self.last_step = None


async def follow(client: Any, build_id: str, view: ProgressView) -> Any:
    """The build's final state: progress from the event stream (topic pack), its state read
    again whenever no event came for a while and at the end."""
    import asyncio

    from formation.api import pack_models as pm
    from formation.api import pack_routes

    events = client.events(since=0, topic="pack").__aiter__()
    pending: asyncio.Task[Any] | None = None
    try:
        while True:
            if pending is None:
                pending = asyncio.ensure_future(events.__anext__())
            done, _ = await asyncio.wait({pending}, timeout=POLL_S)
            if not done:
                build = await client.call(pack_routes.pack_build_show, build=build_id)
                if build.state in ("done", "failed", "cancelled"):
                    return build
                continue
            finished, pending = pending, None
            try:
                event = finished.result()
            except StopAsyncIteration:
                return await client.call(pack_routes.pack_build_show, build=build_id)
            if event.data.get("build") != build_id:
                continue
            if event.kind == "progress":
                view.show(pm.PackStep.model_validate(
                    {k: v for k, v in event.data.items() if k in pm.PackStep.model_fields}))
            elif event.kind == "queued" and event.data.get("position"):
                view.note(f"queued behind {event.data['position']} build(s)")
            elif event.kind in ("done", "failed"):
                return await client.call(pack_routes.pack_build_show, build=build_id)
    finally:
        if pending is not None:
            pending.cancel()
        await events.aclose()


async def build_on_node(obj: Context, node_address: str | None, context: Path,
                        name: str | None, reuse: bool, view: ProgressView) -> Any:
    from formation.api import pack_models as pm
    from formation.api import pack_routes

    body = _request(context, node_address is not None, name, reuse)
    async with obj.client(node_address, timeout_s=START_TIMEOUT_S) as client:
        if isinstance(body, bytes):
            view.note(f"uploading the build context ({len(body) >> 10} KiB packed)")
            upload = await upload_context(client, body)
            body = pm.PackBuildStart(upload=upload, name=name, reuse=reuse)
        started = await client.call(pack_routes.pack_build_start, body)
        view.note(f"build {started.id} of {started.name} on the node")
        try:
            return await follow(client, started.id, view)
        finally:
            view.end()


def _failed(build: Any, spec: Any, as_json: bool) -> BuildFailed:
    """The failed step's Formfile line (as written) above the reason."""
    source = (spec.source or "").splitlines()
    if build.error_line and 0 < build.error_line <= len(source) and not as_json:
        click.echo(f"Formfile:{build.error_line}: {source[build.error_line - 1].strip()}",
                   err=True)
    return BuildFailed(f"build {build.state}: {build.error or 'no reason given'}")


def _builder_node(obj: Context, node_address: str | None) -> str | None:
    """--on-builder: the address of the node to build on (None: the local node is a builder)."""
    from formation.commands.capability_cli import ON_BUILDER, builder_address

    if node_address is not None:
        raise FormationError(f"{ON_BUILDER}: not with --node (it picks the node itself)")

    async def ask() -> str | None:
        async with obj.client(None) as client:
            return await builder_address(client)

    return run(ask)


def _builder_hint(obj: Context, node_address: str | None) -> None:
    """After a build that failed or did not start: name the nodes with the builder capability
    when the node asked has not got it (formation/commands/capability_cli.py), on stderr."""
    from formation.commands.capability_cli import builder_hint_of

    async def ask() -> str | None:
        try:
            async with obj.client(node_address) as client:
                return await builder_hint_of(client)
        except FormationError:
            return None

    hint = run(ask)
    if hint:
        click.echo(hint, err=True)


def _report(build: Any) -> None:
    how = "reused" if build.reused else "built"
    click.echo(f"{how} image {build.name} {build.image}")


@click.command("build", short_help="Build a Formfile into a workload image on a node.")
@click.argument("directory", default=".", metavar="[DIR]")
@click.option("--name", metavar="NAME", help="The image's name (default: the Formfile's NAME).")
@click.option("--no-reuse", is_flag=True, help="Build even when an image of the same Formfile "
              "and context exists.")
@click.option("--on-builder", is_flag=True, help="Build on a node with the builder capability "
              "(this node if it has it; else the first such node, the context uploaded as with "
              "--node).")
@json_option
@node_option
@click.pass_obj
def build(obj: Context, directory: str, name: str | None, no_reuse: bool, on_builder: bool,
          as_json: bool, node_address: str | None) -> None:
    """Build DIR/Formfile (DIR: the build context) into a workload image on the node.

    The node builds one Formfile at a time (others wait, queued), shows each step here, and
    adds the image to the network with its Formfile (image.add). A failed step prints its
    Formfile line and the reason; nothing of it stays in the image store. Over --node the
    context is uploaded (a tar, up to about 700 KiB).
    """
    spec, context = _load(directory)
    node_address = _builder_node(obj, node_address) if on_builder else node_address
    try:
        result = run(lambda: build_on_node(obj, node_address, context, name, not no_reuse,
                                           ProgressView(as_json)))
    except FormationError:
        _builder_hint(obj, node_address)
        raise
    if as_json:
        emit_json(result)
    if result.state != "done":
        _builder_hint(obj, node_address)
        raise _failed(result, spec, as_json)
    if not as_json:
        _report(result)


@click.command("ship", short_help="Build (or reuse) a Formfile's image and run it.")
@click.argument("directory", default=".", metavar="[DIR]")
@click.option("--name", metavar="NAME", help="The image's name (default: the Formfile's NAME).")
@click.option("--instance", "instance_name", metavar="NAME",
              help="The instance's name (default: from the image's).")
@click.option("--watch", is_flag=True, help="Wait until it runs; print its address and name.")
@click.option("--timeout", "timeout_s", type=float, default=600.0, show_default=True,
              metavar="SECONDS", help="With --watch: give up waiting after this long.")
@json_option
@node_option
@click.pass_obj
def ship(obj: Context, directory: str, name: str | None, instance_name: str | None,
         watch: bool, timeout_s: float, as_json: bool, node_address: str | None) -> None:
    """Build DIR/Formfile (or reuse the image built from the same Formfile and context) and
    create an instance of it with the Formfile's vCPUs, memory, disk and EXPOSEd ports."""
    spec, context = _load(directory)
    view = ProgressView(as_json)

    async def go() -> tuple[Any, Any]:
        built = await build_on_node(obj, node_address, context, name, True, view)
        if built.state != "done":
            return built, None
        if not as_json:
            _report(built)
        instance = await _create(obj, node_address, built, instance_name)
        if watch:
            instance = await _watch(obj, node_address, instance.id, timeout_s, view)
        return built, instance

    built, instance = run(go)
    if built.state != "done":
        _builder_hint(obj, node_address)
        if as_json:
            emit_json({"build": built.model_dump(mode="json"), "instance": None})
        raise _failed(built, spec, as_json)
    if as_json:
        emit_json({"build": built.model_dump(mode="json"),
                   "instance": instance.model_dump(mode="json")})
        return
    if instance.state == "running":
        where = instance.node_name or instance.node or "?"
        click.echo(f"{instance.name} running at {instance.address} on {where}"
                   if instance.address else
                   f"{instance.name} running on {where} (no address in the network yet)")
    else:
        click.echo(f"created {instance.name} ({instance.id[:12]}): {instance.state}"
                   + (f" - {instance.reason}" if instance.reason else ""))


async def _create(obj: Context, node_address: str | None, built: Any,
                  instance_name: str | None) -> Any:
    from pydantic import ValidationError

    from formation.api import vm_models, vm_routes

    res = built.resources
    try:
        body = vm_models.VmCreate(image=built.image, name=instance_name, vcpus=res.vcpus,
                                  memory_mb=res.memory_mb,
                                  disk_gb=res.disk_gb or DEFAULT_DISK_GB, gpus=res.gpus,
                                  ports=res.ports)
    except ValidationError as exc:
        err = exc.errors()[0]
        raise FormationError(f"{'--instance' if err['loc'][0] == 'name' else err['loc'][0]}: "
                             f"{err['msg']}") from None
    async with obj.client(node_address, timeout_s=30.0) as client:
        return await client.call(vm_routes.vm_create, body)


async def _watch(obj: Context, node_address: str | None, instance_id: str, timeout_s: float,
                 view: ProgressView) -> Any:
    """The instance once running (and with an address, when the network gives one); a failed
    one ends the command with its reason."""
    import asyncio
    import time

    from formation.api import vm_routes

    deadline = time.monotonic() + timeout_s
    said = ""
    async with obj.client(node_address, timeout_s=30.0) as client:
        while True:
            inst = (await client.call(vm_routes.vm_show, instance=instance_id)).instance
            if inst.state != said:
                view.note(f"{inst.name}: {inst.state}"
                          + (f" - {inst.reason}" if inst.reason else ""))
                said = inst.state
            if inst.state == "running":
                return inst
            if inst.state == "failed":
                tail = "; ".join(inst.serial_tail[-3:])
                raise FormationError(f"{inst.name} failed: {inst.reason or 'no reason'}"
                                     + (f" (serial: {tail})" if tail else ""))
            if time.monotonic() > deadline:
                raise FormationError(f"{inst.name}: still {inst.state} after {timeout_s:.0f} s"
                                     f" (see `formation vm show {inst.name}`)")
            await asyncio.sleep(1.0)
