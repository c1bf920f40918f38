"""`formation account`: admins create, list, change and remove accounts (tenants). Each change
is an `account.set` or `account.remove` op signed by this node, which must be a network admin:
changes go through the local socket (writing ops as the node is for its operators only);
`ls` and `show` may also ask another node (`--node`)."""

from __future__ import annotations

from typing import Any

import click

from formation.commands.common import Context, json_option, node_option, run
from formation.errors import FormationError

QUOTA_OPTIONS = (("vcpus", "--vcpus"), ("memory_mb", "--memory-mb"), ("disk_gb", "--disk-gb"),
                 ("instances", "--instances"))


class AccountError(FormationError):
    pass


def quota_options(fn: Any) -> Any:
    for name, flag in reversed(QUOTA_OPTIONS):
        fn = click.option(flag, name, type=click.IntRange(0), default=None,
                          help=f"Quota: at most this many {name} (default: no limit).")(fn)
    return fn


@click.group()
def account() -> None:
    """Accounts: people who deploy with their own keys, their roles and quotas (admins only).

    \b
      formation account create alice --key KEY.pub --instances 3
      formation account ls
      formation account show alice
      formation account quota alice --vcpus 8
      formation account rm alice
      formation account invite alice --expires 24h   a token for `account join`
      formation account join TOKEN                   (on the person's machine)
    """


def _call(obj: Context, node_address: str | None, endpoint: Any, body: Any = None,
          **params: Any) -> Any:
    async def go() -> Any:
        async with obj.client(node_address) as client:
            return await client.call(endpoint, body, **params)

    return run(go)


def _accounts(obj: Context, node_address: str | None) -> dict[str, dict[str, Any]]:
    from formation.api import state_routes as sr

    view = _call(obj, node_address, sr.state_view, collection="accounts")
    return {a["key"]: a for a in view.items}


def _usage(obj: Context, node_address: str | None, name: str) -> dict[str, int]:
    from formation.api import state_routes as sr
    from formation.api.account_usage import account_usage

    view = _call(obj, node_address, sr.state_view, collection="instances")
    return account_usage(view.items, name)


def _set(obj: Context, node_address: str | None, payload: dict[str, Any]) -> None:
    from formation.api import state_models as sm
    from formation.api import state_routes as sr

    _call(obj, node_address, sr.state_append, sm.AppendRequest(kind="account.set",
                                                                payload=payload))


def _emit(record: dict[str, Any], as_json: bool) -> None:
    if as_json:
        from formation.cli_output import emit_json

        emit_json(record)
        return
    click.echo(f"account  {record['name']}")
    click.echo(f"roles    {', '.join(record['roles'])}")
    for k in record["keys"]:
        click.echo(f"key      {k}")
    quotas = record.get("quotas") or {}
    usage = record.get("usage") or {}
    for name, _flag in QUOTA_OPTIONS:
        limit = quotas.get(name)
        click.echo(f"{name:<10} {usage.get(name, 0)} used of "
                   f"{limit if limit is not None else 'no limit'}")


@account.command("create")
@click.argument("name")
@click.option("--key", "keys", multiple=True, required=True, metavar="PUBKEY",
              help="The account's public key: 64 hex or a KEY.pub file (repeat, up to 8).")
@click.option("--role", type=click.Choice(["user", "admin"]), default="user", show_default=True,
              help="admin: sees and controls every instance.")
@quota_options
@json_option
@click.pass_obj
def create(obj: Context, name: str, keys: tuple[str, ...], role: str, as_json: bool,
           **quotas: int | None) -> None:
    """Create (or replace) an account with its keys, role and quotas."""
    from formation.client_profile import public_key_of

    payload: dict[str, Any] = {"name": name, "keys": [public_key_of(k) for k in keys],
                               "roles": [role]}
    given = {k: v for k, v in quotas.items() if v is not None}
    if given:
        payload["quotas"] = given
    _set(obj, None, payload)
    _emit({**payload, "quotas": given, "usage": {}}, as_json)


@account.command("ls")
@json_option
@node_option
@click.pass_obj
def ls(obj: Context, as_json: bool, node_address: str | None) -> None:
    """List the accounts of the network."""
    accounts = _accounts(obj, node_address)
    items = [{"name": n, "roles": a.get("roles", []), "keys": a.get("keys", []),
              "quotas": a.get("quotas", {})} for n, a in sorted(accounts.items())]
    if as_json:
        from formation.cli_output import emit_json

        emit_json({"accounts": items})
        return
    if not items:
        click.echo("(no accounts)")
    for a in items:
        quotas = " ".join(f"{k}={v}" for k, v in sorted(a["quotas"].items())) or "no quotas"
        click.echo(f"{a['name']:<24} {','.join(a['roles']):<8} {len(a['keys'])} key(s)  "
                   f"{quotas}")


def _one(obj: Context, node_address: str | None, name: str) -> dict[str, Any]:
    found = _accounts(obj, node_address).get(name)
    if found is None:
        raise AccountError(f"account {name!r}: no such account")
    return {"name": name, "roles": found.get("roles", []), "keys": found.get("keys", []),
            "quotas": found.get("quotas", {})}


@account.command("show")
@click.argument("name")
@json_option
@node_option
@click.pass_obj
def show(obj: Context, name: str, as_json: bool, node_address: str | None) -> None:
    """An account's keys, roles, quotas and what its instances use."""
    record = _one(obj, node_address, name)
    _emit({**record, "usage": _usage(obj, node_address, name)}, as_json)


@account.command("quota")
@click.argument("name")
@quota_options
@click.option("--clear", is_flag=True, help="Remove every quota first (then set those given).")
@json_option
@click.pass_obj
def quota(obj: Context, name: str, clear: bool, as_json: bool,
          **quotas: int | None) -> None:
    """Show or change an account's quotas (only the figures given change)."""
    record = _one(obj, None, name)
    given = {k: v for k, v in quotas.items() if v is not None}
    if given or clear:
        merged = {} if clear else dict(record["quotas"])
        merged.update(given)
        record["quotas"] = merged
        payload = {"name": name, "keys": record["keys"], "roles": record["roles"]}
        if merged:
            payload["quotas"] = merged
        _set(obj, None, payload)
    _emit({**record, "usage": _usage(obj, None, name)}, as_json)


@account.command("rm")
@click.argument("name")
@json_option
@click.pass_obj
def rm(obj: Context, name: str, as_json: bool) -> None:
    """Remove an account: its keys are refused from then on, on every node that knows it."""
    from formation.api import state_models as sm
    from formation.api import state_routes as sr

    _one(obj, None, name)
    op = _call(obj, None, sr.state_append,
               sm.AppendRequest(kind="account.remove", payload={"name": name}))
    if as_json:
        from formation.cli_output import emit_json

        emit_json({"removed": name, "op": op.id})
    else:
        click.echo(f"removed account {name}")


def _register_invites() -> None:
    """`account invite|invites|uninvite|join` live in account_invite.py (a module per idea)."""
    from formation.commands import account_invite

    for command in (account_invite.invite, account_invite.invites, account_invite.uninvite,
                    account_invite.join):
        account.add_command(command)


_register_invites()
