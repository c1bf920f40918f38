"""`formation image`: workload images (a kernel, an optional initramfs and root disk) in the
network, content-addressed by SHA-256; the node imports files from its own disk."""

from __future__ import annotations

import os
from pathlib import Path

import click

from formation.cli_output import emit_json
from formation.commands.common import Context, json_option, node_option, run
from formation.errors import FormationError

IMPORT_TIMEOUT_S = 6 * 3600.0  # the node copies and hashes a disk of any size in one call


@click.group()
def image() -> None:
    """Workload images: the kernel, initramfs and root disk a VM boots from.

    \b
      formation image import vmlinuz --initrd initrd.img --disk root.img --name web
      formation image ls              every image of the network, and which are here
      formation image rm web          remove it from the network (by name or digest)

    An image is named by the SHA-256 of its manifest (each part's SHA-256 and size, and the
    kernel command line). Other nodes fetch its parts by digest from a node that has them
    and verify every byte before a VM boots from it.
    """


def _call(obj: Context, node_address: str | None, endpoint, body=None, timeout_s: float = 30.0,
          **params):
    async def go():
        async with obj.client(node_address, timeout_s=timeout_s) as client:
            return await client.call(endpoint, body, **params)

    return run(go)


def _size(n: int) -> str:
    value = float(n)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if value < 1024 or unit == "GiB":
            return f"{n} B" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{n} B"


def _local_file(flag: str, value: str | None) -> str | None:
    """An absolute path (the node service does not share this shell's directory), checked
    here first so a typo is named before the node copies anything."""
    if value is None:
        return None
    path = Path(os.path.abspath(value))
    if not path.is_file():
        what = "does not exist" if not path.exists() else "is not a regular file"
        raise FormationError(f"{flag}: {value} {what}")
    return str(path)


@image.command("import", short_help="Import a kernel, initrd and disk as an image.")
@click.argument("kernel", metavar="KERNEL")
@click.option("--initrd", metavar="FILE", help="An initramfs (cpio, optionally compressed).")
@click.option("--disk", metavar="FILE", help="A raw root disk; each VM gets a copy-on-write "
              "overlay of it.")
@click.option("--cmdline", default="console=ttyS0", show_default=True, metavar="TEXT",
              help="The kernel command line VMs of this image boot with by default.")
@click.option("--name", required=True, metavar="NAME",
              help="Unique in the network: lowercase letters, digits and '-'.")
@json_option
@node_option
@click.pass_obj
def import_(obj: Context, kernel: str, initrd: str | None, disk: str | None, cmdline: str,
            name: str, as_json: bool, node_address: str | None) -> None:
    """Import KERNEL (a bzImage/vmlinuz) and optional --initrd and --disk as image NAME.

    The node copies the files into its image store (data_dir/images), hashing them as it
    copies, and adds the image to the network (an image.add op). The files must be readable
    by the node service, on its own disk: import runs on the node's unix socket.
    """
    from pydantic import ValidationError

    from formation.api import vm_models as vm
    from formation.api import vm_routes

    files = {"KERNEL": _local_file("KERNEL", kernel), "--initrd": _local_file("--initrd", initrd),
             "--disk": _local_file("--disk", disk)}
    try:
        body = vm.ImageImport(name=name, kernel=files["KERNEL"] or kernel,
                              initrd=files["--initrd"], disk=files["--disk"], cmdline=cmdline)
    except ValidationError as exc:
        err = exc.errors()[0]
        flag = f"--{err['loc'][0]}" if err["loc"] else "input"
        expected = ("lowercase letters, digits and '-', starting with a letter"
                    if flag == "--name" else err["msg"])
        raise FormationError(f"{flag}: expected {expected}, got {err.get('input')!r}") from None
    if not as_json:
        for flag, path in files.items():
            if path is not None:
                click.echo(f"{flag.strip('-').lower():<7} {_size(os.path.getsize(path)):>10}  "
                           f"{path}")
        total = sum(os.path.getsize(p) for p in files.values() if p is not None)
        click.echo(f"importing {_size(total)} as {name} (the node copies and hashes every "
                   f"byte)...")
    result = _call(obj, node_address, vm_routes.image_import, body, timeout_s=IMPORT_TIMEOUT_S)
    if as_json:
        emit_json(result)
        return
    for part, info in result.parts.items():
        click.echo(f"{part:<7} {_size(info.size):>10}  sha256:{info.digest}")
    click.echo(f"image {result.name} {result.digest} ({_size(result.size)})")


@image.command("ls", short_help="List the images of the network.")
@json_option
@node_option
@click.pass_obj
def ls(obj: Context, as_json: bool, node_address: str | None) -> None:
    """List the network's images: name, digest, size, parts, and whether this node holds
    every part (here: yes) or would fetch them before a VM boots (here: no)."""
    from formation.api import vm_routes

    result = _call(obj, node_address, vm_routes.image_list)
    if as_json:
        emit_json(result)
        return
    if not result.images:
        click.echo("no images yet: formation image import KERNEL --name NAME")
        return
    click.echo(f"{'NAME':<20} {'DIGEST':<14} {'SIZE':>10}  {'HERE':<4}  PARTS")
    for i in sorted(result.images, key=lambda i: i.name):
        click.echo(f"{i.name:<20} {i.digest[:12]:<14} {_size(i.size):>10}  "
                   f"{'yes' if i.local else 'no':<4}  {','.join(i.parts)}")


@image.command("rm", short_help="Remove an image from the network.")
@click.argument("ref", metavar="NAME|DIGEST")
@json_option
@node_option
@click.pass_obj
def rm(obj: Context, ref: str, as_json: bool, node_address: str | None) -> None:
    """Remove an image from the network (image.remove; only who added it or an admin).

    Every node then frees its blobs, except those another image or an instance still uses.
    """
    from formation.api import vm_routes

    if not ref or len(ref) > 64 or not all(c.isalnum() or c == "-" for c in ref) \
            or ref != ref.lower():
        raise FormationError(f"NAME|DIGEST: expected an image name or digest, got {ref!r}")
    _call(obj, node_address, vm_routes.image_delete, image=ref)
    if as_json:
        emit_json({"removed": ref})
        return
    click.echo(f"removed image {ref}")
