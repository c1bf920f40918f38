"""`formation tenant images | image-add | image-rm`: images owned by your account.

An image is content addressed: `image-add` hashes your files here (the same manifest as a node's
`image import`), uploads each file the node asked does not hold yet (tenant_blob_upload.py:
chunks over the signed TCP API, verified there), then signs an image.add naming that content as
your account's. The other nodes fetch the blobs by digest from the node that holds them. Other
accounts neither see nor boot nor remove your images (docs/protocol.md, "Tenants")."""

from __future__ import annotations

import hashlib
from typing import Any

import click

from formation.commands.common import json_option
from formation.commands.tenant import (
    TenantError,
    _granted,
    as_option,
    emit_result,
    target_options,
    tenant,
    with_tenant_client,
)

CHUNK = 1 << 20


def _part(path: str) -> dict[str, Any]:
    digest, size = hashlib.sha256(), 0
    try:
        with open(path, "rb") as f:
            while data := f.read(CHUNK):
                digest.update(data)
                size += len(data)
    except OSError as exc:
        raise TenantError(f"{path}: cannot read: {exc.strerror or exc}") from None
    return {"digest": digest.hexdigest(), "size": size}


def manifest(name: str, files: dict[str, str | None], cmdline: str) -> dict[str, Any]:
    """The image.add payload of local files (without `account`)."""
    from formation.node.state.image_manifest import image_digest

    parts = {part: _part(path) for part, path in files.items() if path}
    return {"digest": image_digest(parts, cmdline), "name": name,
            "size": sum(p["size"] for p in parts.values()), "parts": parts, "cmdline": cmdline}


async def resolve(client: Any, ref: str) -> str:
    """An image reference as a digest: 64 hex as is, else the name (or a unique digest start
    of 6+) of one of your account's images."""
    from formation.api import account_routes as ar

    if len(ref) == 64 and all(c in "0123456789abcdef" for c in ref):
        return ref
    items = (await client.call(ar.tenant_images)).items
    found = {i["key"] for i in items if i.get("name") == ref
             or (len(ref) >= 6 and i["key"].startswith(ref))}
    if len(found) != 1:
        raise TenantError(f"--image: {ref!r} is " + ("ambiguous" if found else "neither a "
                          "digest (64 hex) nor the name of one of your account's images"))
    return found.pop()


@tenant.command("images")
@target_options
@json_option
def images(node_address: str | None, key_file: str | None, profile: str | None,
           as_json: bool) -> None:
    """Your account's images (an admin account's: all)."""
    from formation.api import account_routes as ar

    async def work(client: Any, _identity: Any) -> Any:
        return await client.call(ar.tenant_images)

    found = with_tenant_client(node_address, key_file, profile, work)
    if as_json:
        from formation.cli_output import emit_json

        emit_json(found)
        return
    for i in found.items:
        click.echo(f"{i.get('name', '?'):<24} {i['key'][:12]}  {i.get('size', 0)} B  "
                   f"{i.get('account', '(node)')}")
    if not found.items:
        click.echo("(no images)")


@tenant.command("image-add")
@click.argument("name")
@click.option("--kernel", required=True, type=click.Path(dir_okay=False),
              help="The kernel file.")
@click.option("--initrd", type=click.Path(dir_okay=False), help="An initrd file.")
@click.option("--disk", type=click.Path(dir_okay=False), help="A disk image file.")
@click.option("--cmdline", default="console=ttyS0", show_default=True)
@target_options
@as_option
@json_option
def image_add(name: str, kernel: str, initrd: str | None, disk: str | None, cmdline: str,
              node_address: str | None, key_file: str | None, profile: str | None,
              as_account: str | None, as_json: bool) -> None:
    """Upload the files the node lacks, then name the image made of them as your account's (an
    op signed by your key); or, with --as, as the account whose grant allows your key image.add
    on NAME (only account keys upload: the files must then be on a node already)."""
    from formation.api import account_routes as ar
    from formation.commands.tenant_blob_upload import upload_missing
    from formation.tenant_client import relay

    files = {"kernel": kernel, "initrd": initrd, "disk": disk}
    payload = manifest(name, files, cmdline)

    async def work(client: Any, identity: Any) -> Any:
        if as_account is not None:
            used = await _granted(client, as_account, "image.add", name)
            return await relay(client, identity, "image.add", {**payload, **used})
        me = await client.call(ar.tenant_account)
        await upload_missing(client, {part: (path, payload["parts"][part])
                                      for part, path in files.items() if path})
        return await relay(client, identity, "image.add", {**payload, "account": me.name})

    done = with_tenant_client(node_address, key_file, profile, work)
    emit_result({"digest": payload["digest"], **done.model_dump()}, as_json,
          f"added {name} ({payload['digest']})")


@tenant.command("image-rm")
@click.argument("ref", metavar="NAME|DIGEST")
@target_options
@json_option
def image_rm(ref: str, node_address: str | None, key_file: str | None, profile: str | None,
             as_json: bool) -> None:
    """Remove one of your account's images (every add of it by your account)."""
    from formation.api import account_routes as ar
    from formation.tenant_client import relay

    async def work(client: Any, identity: Any) -> Any:
        items = (await client.call(ar.tenant_images)).items
        found = [i for i in items if ref in (i.get("name"), i["key"])
                 or (len(ref) >= 6 and i["key"].startswith(ref))]
        if len({i["key"] for i in found}) != 1:
            raise TenantError(f"image {ref!r}: " + ("no such image of your account"
                                                    if not found else "ambiguous"))
        return [await relay(client, identity, "image.remove", {"image": i["id"]})
                for i in found]

    done = with_tenant_client(node_address, key_file, profile, work)
    emit_result([d.model_dump() for d in done], as_json, f"removed {ref}")
