"""`formation grant`, `formation grants`, `formation revoke`: delegation with your account key.
A grant lets another key (a colleague's, a CI job's) do some actions on some of your instances
until a time; it is a `grant.set` op signed by your key, so no node can forge or widen it, and
`revoke` ends it everywhere the revocation is known. The grantee then uses its own key with
`--as ACCOUNT` on `formation tenant` commands (docs/operations.md, "Delegation")."""

from __future__ import annotations

import re
import time
from datetime import UTC, datetime
from typing import Any

import click

from formation.commands.common import json_option
from formation.commands.tenant import TenantError, emit_result, target_options, with_tenant_client

ACTIONS = ("instance.create", "instance.delete", "instance.start", "instance.stop",
           "instance.update", "image.add", "image.remove")
_RELATIVE = re.compile(r"^\+?(\d+)([mhdw])$")
_UNIT_MS = {"m": 60_000, "h": 3_600_000, "d": 86_400_000, "w": 7 * 86_400_000}


def until_ms(text: str, now_ms: int | None = None) -> int:
    """--until: an ISO 8601 time (2026-12-10T00:00Z; without a zone: UTC) or a span from now
    (30m, 12h, 7d, 2w)."""
    now_ms = int(time.time() * 1000) if now_ms is None else now_ms
    span = _RELATIVE.match(text.strip())
    if span:
        return now_ms + int(span.group(1)) * _UNIT_MS[span.group(2)]
    try:
        when = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        raise TenantError(f"--until {text}: expected a time such as 2026-12-10T00:00Z or a "
                          "span such as 12h or 7d") from None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    found = int(when.timestamp() * 1000)
    if found <= now_ms:
        raise TenantError(f"--until {text}: expected a time in the future")
    return found


def parse_actions(text: str) -> list[str]:
    """--allow: actions separated by commas; `start` is short for `instance.start`; image
    actions are named in full (`image.add`, `image.remove`)."""
    out = []
    for word in (w.strip() for w in text.split(",")):
        name = word if word.startswith(("instance.", "image.")) else f"instance.{word}"
        if name not in ACTIONS:
            raise TenantError(f"--allow {word}: expected actions from "
                              + ", ".join(a.removeprefix("instance.") for a in ACTIONS))
        if name not in out:
            out.append(name)
    return out


def covers(grant: dict[str, Any], action: str, name: str) -> bool:
    """Does a grants-view record allow `action` on the instance `name` (the rules decide; this
    only picks which grant to name)?"""
    allowed = set(grant.get("actions", ()))
    if "instance.update" in allowed:
        allowed |= {"instance.start", "instance.stop"}
    if action not in allowed:
        return False
    return name == grant["on"] if "on" in grant else name.startswith(str(grant.get("prefix")))


def pick_grant(grants: list[dict[str, Any]], account: str, action: str, name: str) -> str:
    """The id of a live grant of `account` that allows `action` on `name`, or one line why
    none does."""
    mine = [g for g in grants if g.get("account") == account and g.get("live")]
    fit = [g for g in mine if covers(g, action, name)]
    if not fit:
        raise TenantError(f"--as {account}: no live grant of account {account!r} to this key "
                          f"allows {action.removeprefix('instance.')} on {name!r}")
    return str(max(fit, key=lambda g: int(g.get("until_ms", 0)))["key"])


@click.command("grant")
@click.argument("grantee")
@click.option("--allow", "allow", required=True, metavar="ACTIONS",
              help="Comma-separated: create, delete, start, stop, update.")
@click.option("--on", "on", metavar="NAME", help="One instance, by name.")
@click.option("--prefix", metavar="PREFIX", help="Every instance whose name starts so.")
@click.option("--until", "until", required=True, metavar="TIME",
              help="When it ends: 2026-12-10T00:00Z, or a span such as 12h or 7d.")
@target_options
@json_option
def grant(grantee: str, allow: str, on: str | None, prefix: str | None, until: str,
          node_address: str | None, key_file: str | None, profile: str | None,
          as_json: bool) -> None:
    """Let another key act for your account: some actions, some instances, until a time.

    GRANTEE is its public key: 64 hex or a KEY.pub file.

    \b
      formation grant ci.key.pub --allow create,delete --prefix ci- --until 7d
      formation grant 3f2a...e1 --allow start,stop --on web-1 --until 2026-12-10T00:00Z
    """
    from formation.api import account_routes as ar
    from formation.client_profile import public_key_of
    from formation.tenant_client import relay

    if (on is None) == (prefix is None):
        raise TenantError("--on/--prefix: expected exactly one (an instance name, or the start "
                          "of instance names)")
    target = {"on": on} if on is not None else {"prefix": prefix}
    payload: dict[str, Any] = {"grantee": public_key_of(grantee), "actions": parse_actions(allow),
                               **target, "until_ms": until_ms(until)}

    async def work(client: Any, identity: Any) -> Any:
        me = await client.call(ar.tenant_account)
        return await relay(client, identity, "grant.set", {"account": me.name, **payload})

    done = with_tenant_client(node_address, key_file, profile, work)
    emit_result(done, as_json, f"granted {done.id}")


@click.command("grants")
@target_options
@json_option
def grants(node_address: str | None, key_file: str | None, profile: str | None,
           as_json: bool) -> None:
    """Your account's grants, or those your key holds.

    An admin account's key lists every grant of the network."""
    from formation.api import grant_routes as gr

    async def work(client: Any, _identity: Any) -> Any:
        return await client.call(gr.tenant_grants)

    found = with_tenant_client(node_address, key_file, profile, work)
    if as_json:
        from formation.cli_output import emit_json

        emit_json(found)
        return
    for g in found.items:
        state = "revoked" if g.get("revoked") else ("live" if g.get("live") else "expired")
        target = f"on {g['on']}" if "on" in g else f"prefix {g.get('prefix')}"
        until = datetime.fromtimestamp(int(g.get("until_ms", 0)) / 1000, UTC)
        acts = ",".join(a.removeprefix("instance.") for a in g.get("actions", ()))
        click.echo(f"{g['key'][:16]}  {g.get('account', '?'):<12} {g.get('grantee', '')[:16]}  "
                   f"{acts:<20} {target:<20} until {until:%Y-%m-%dT%H:%MZ}  {state}")
    if not found.items:
        click.echo("(no grants)")


@click.command("revoke")
@click.argument("grant_id")
@target_options
@json_option
def revoke(grant_id: str, node_address: str | None, key_file: str | None, profile: str | None,
           as_json: bool) -> None:
    """End a grant everywhere the revocation is known.

    GRANT_ID is its id, or a unique start of it of 6 characters or more."""
    from formation.api import grant_routes as gr
    from formation.tenant_client import relay

    async def work(client: Any, identity: Any) -> Any:
        items = (await client.call(gr.tenant_grants)).items
        found = [g for g in items if g["key"] == grant_id
                 or (len(grant_id) >= 6 and g["key"].startswith(grant_id))]
        if len(found) != 1:
            raise TenantError(f"grant {grant_id!r}: " + ("no such grant of your account"
                                                          if not found else "ambiguous"))
        return await relay(client, identity, "grant.revoke", {"grant": found[0]["key"]})

    done = with_tenant_client(node_address, key_file, profile, work)
    emit_result(done, as_json, f"revoked {grant_id}: {done.status}")
