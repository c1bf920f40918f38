"""`formation tenant`: deploy with your account key through any node's TCP API, from anywhere.
Every write is an op signed by your key on this machine (the node drafts it, you sign it, the
node relays it), so the node cannot forge or alter it."""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Any

import click

from formation.commands.common import json_option, run
from formation.errors import FormationError


class TenantError(FormationError):
    pass


def target_options(fn: Any) -> Any:
    fn = click.option("--profile", metavar="NAME",
                      help="A profile of ~/.config/formation/client.yaml (default: its "
                      "`default`).")(fn)
    fn = click.option("--key", "key_file", metavar="FILE|agent:[NAME]",
                      help="Your account key file (made by `formation key create`), or "
                      "agent: for the Ed25519 key of your ssh-agent (agent:SHA256:... or "
                      "agent:COMMENT when it holds several).")(fn)
    return click.option("--node", "node_address", metavar="HOST:PORT",
                        help="The node to ask (any node of the network).")(fn)


def as_option(fn: Any) -> Any:
    return click.option("--as", "as_account", metavar="ACCOUNT",
                        help="Act for ACCOUNT with a grant it gave your key (formation grants)."
                        )(fn)


@click.group()
def tenant() -> None:
    """Deploy with your account key through any node (signed ops; the node only relays).

    \b
      formation tenant whoami --node HOST:PORT --key ~/.config/formation/account.key
      formation tenant whoami --node HOST:PORT --key agent:   (your ssh-agent's Ed25519 key)
      formation tenant create web --image DIGEST --vcpus 1 --memory-mb 512 --disk-gb 5
      formation tenant ls
      formation tenant stop web | start web | rm web
    """


def with_tenant_client(node_address: str | None, key_file: str | None, profile: str | None,
                 work: Callable[[Any, Any], Coroutine[Any, Any, Any]]) -> Any:
    from formation.api.client import NodeClient
    from formation.client_profile import load_signer, resolve

    target = resolve(node_address, key_file, profile)
    identity = load_signer(target.key)

    async def go() -> Any:
        async with NodeClient.tcp(target.node, identity, timeout_s=20) as client:
            return await work(client, identity)

    return run(go)


def emit_result(value: Any, as_json: bool, line: str) -> None:
    if as_json:
        from formation.cli_output import emit_json

        emit_json(value)
    else:
        click.echo(line)


@tenant.command("whoami")
@target_options
@json_option
def whoami(node_address: str | None, key_file: str | None, profile: str | None,
           as_json: bool) -> None:
    """Your account: roles, quotas and what your instances use."""
    from formation.api import account_routes as ar

    async def work(client: Any, _identity: Any) -> Any:
        return await client.call(ar.tenant_account)

    found = with_tenant_client(node_address, key_file, profile, work)
    usage = " ".join(f"{k}={v}/{found.quotas.get(k, '-')}" for k, v in sorted(found.usage.items()))
    emit_result(found, as_json, f"{found.name} ({', '.join(found.roles)}) {usage}")


@tenant.command("ls")
@target_options
@json_option
def ls(node_address: str | None, key_file: str | None, profile: str | None,
       as_json: bool) -> None:
    """Your account's instances."""
    from formation.api import account_routes as ar

    async def work(client: Any, _identity: Any) -> Any:
        return await client.call(ar.tenant_instances)

    found = with_tenant_client(node_address, key_file, profile, work)
    if as_json:
        from formation.cli_output import emit_json

        emit_json(found)
        return
    for i in found.items:
        spec = i.get("spec", {})
        click.echo(f"{i.get('name', '?'):<24} {i['key'][:12]}  {i.get('desired', '?'):<8} "
                   f"{spec.get('vcpus')} vCPU {spec.get('memory_mb')} MiB "
                   f"{spec.get('disk_gb')} GB")
    if not found.items:
        click.echo("(no instances)")


@tenant.command("create")
@click.argument("name")
@click.option("--image", required=True, metavar="DIGEST|NAME",
              help="The image digest (64 hex), or the name of one of your account's images.")
@click.option("--vcpus", type=click.IntRange(1), default=1, show_default=True)
@click.option("--memory-mb", type=click.IntRange(1), default=512, show_default=True)
@click.option("--disk-gb", type=click.IntRange(1), default=5, show_default=True)
@target_options
@as_option
@json_option
def create(name: str, image: str, vcpus: int, memory_mb: int, disk_gb: int,
           node_address: str | None, key_file: str | None, profile: str | None,
           as_account: str | None, as_json: bool) -> None:
    """Create an instance owned by your account (an op signed by your key)."""
    from formation.api import account_routes as ar
    from formation.tenant_client import relay

    spec = {"image": image, "vcpus": vcpus, "memory_mb": memory_mb, "disk_gb": disk_gb}

    async def work(client: Any, identity: Any) -> Any:
        spec["image"] = await _tenant_images.resolve(client, image)
        if as_account is not None:
            used = await _granted(client, as_account, "instance.create", name)
            return await relay(client, identity, "instance.create",
                               {"name": name, "spec": spec, **used})
        me = await client.call(ar.tenant_account)
        return await relay(client, identity, "instance.create",
                           {"name": name, "spec": spec, "account": me.name})

    done = with_tenant_client(node_address, key_file, profile, work)
    emit_result(done, as_json, f"created {name} ({done.id})")


def _change(name: str, node_address: str | None, key_file: str | None, profile: str | None,
            kind: str, fields: dict[str, Any], as_account: str | None = None,
            action: str = "") -> Any:
    from formation.api import account_routes as ar
    from formation.tenant_client import relay

    async def work(client: Any, identity: Any) -> Any:
        items = (await client.call(ar.tenant_instances)).items
        if as_account is not None:
            items = [i for i in items if i.get("account") == as_account]
        found = [i for i in items if i.get("name") == name or i["key"] == name]
        if not found and len(name) >= 6:
            found = [i for i in items if i["key"].startswith(name)]
        if len(found) != 1:
            whose = "your account" if as_account is None else "your grants"
            raise TenantError(f"instance {name!r}: " + (f"no such instance of {whose}"
                                                        if not found else "ambiguous"))
        used = {} if as_account is None else await _granted(
            client, as_account, action or kind, str(found[0].get("name", "")))
        return await relay(client, identity, kind, {"instance": found[0]["key"], **fields,
                                                    **used})

    return with_tenant_client(node_address, key_file, profile, work)


async def _granted(client: Any, account: str, action: str, name: str) -> dict[str, str]:
    """The payload fields of a use: the grant that allows it, and the account it acts for."""
    from formation.api import grant_routes as gr
    from formation.commands.grant import pick_grant

    grants = (await client.call(gr.tenant_grants)).items
    return {"grant": pick_grant(grants, account, action, name), "account": account}


def _simple(command: str, kind: str, fields: dict[str, Any], help_text: str) -> None:
    @tenant.command(command, help=help_text)
    @click.argument("name")
    @target_options
    @as_option
    @json_option
    def _cmd(name: str, node_address: str | None, key_file: str | None, profile: str | None,
             as_account: str | None, as_json: bool) -> None:
        action = {"start": "instance.start", "stop": "instance.stop"}.get(command, kind)
        done = _change(name, node_address, key_file, profile, kind, fields, as_account, action)
        emit_result(done, as_json, f"{command} {name}: {done.status}")


_simple("start", "instance.update", {"desired": "running"}, "Start one of your instances.")
_simple("stop", "instance.update", {"desired": "stopped"}, "Stop one of your instances.")
_simple("rm", "instance.delete", {}, "Delete one of your instances.")


from formation.commands import tenant_images as _tenant_images  # noqa: E402  (its commands)
