"""`formation account invite|invites|uninvite|join`: an admin invites a person into an account
with a token (FMA1-...), like a host is invited into the network; the person runs
`formation account join TOKEN` on their own machine, which makes their key (if missing), has it
join the account through the inviting node (an `account.redeem` op signed by the new key, with
the token's proof), and saves a profile so the next `formation tenant ...` needs no flags."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import click

from formation.commands.account import AccountError, _call
from formation.commands.common import Context, json_option, node_option, run
from formation.commands.key import DEFAULT_KEY

REDEEM = "account.redeem"


def _emit_json(value: Any) -> None:
    from formation.cli_output import emit_json

    emit_json(value)


def _when(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%d %H:%M UTC")


@click.command("invite")
@click.argument("name")
@click.option("--expires", default="24h", show_default=True,
              help="How long the token is valid: 90s, 30m, 24h, 7d (at most 30 days).")
@click.option("--endpoint", "endpoints", multiple=True, metavar="HOST:PORT",
              help="Where the person reaches this node (repeat; default: what it advertises).")
@json_option
@click.pass_obj
def invite(obj: Context, name: str, expires: str, endpoints: tuple[str, ...],
           as_json: bool) -> None:
    """Invite a person into account NAME: prints a one-time token for `formation account
    join`. Whoever holds the whole token can add one key to the account, once, until it
    expires or is revoked (`formation account uninvite`)."""
    from formation.api import account_invite_models as im
    from formation.api import account_invite_routes as air
    from formation.commands.join import parse_duration

    seconds = parse_duration(expires)
    if not 1 <= seconds <= im.MAX_EXPIRES_S:
        raise AccountError(f"--expires {expires}: expected between 1 second and 30 days")
    result = _call(obj, None, air.account_invite_create,
                   im.AccountInviteRequest(expires_s=seconds,
                                           endpoints=list(endpoints) or None), name=name)
    if as_json:
        _emit_json(result)
        return
    click.echo(result.token)
    click.echo(f"(one-time invite into account {name}, valid until {_when(result.until_ms)}, "
               f"via {', '.join(result.endpoints)}; admin {result.admin_fingerprint}; the "
               f"person runs: formation account join TOKEN)", err=True)


@click.command("invites")
@click.argument("name")
@json_option
@node_option
@click.pass_obj
def invites(obj: Context, name: str, as_json: bool, node_address: str | None) -> None:
    """An account's open invites (neither redeemed nor revoked)."""
    from formation.api import account_invite_routes as air

    found = _call(obj, node_address, air.account_invite_list, name=name)
    if as_json:
        _emit_json(found)
        return
    if not found.items:
        click.echo("(no open invites)")
    for item in found.items:
        state = "expired" if item.expired else f"until {_when(item.until_ms)}"
        click.echo(f"{item.invite_key}  {state}")


@click.command("uninvite")
@click.argument("name")
@click.argument("invite_key", metavar="INVITE_KEY")
@json_option
@click.pass_obj
def uninvite(obj: Context, name: str, invite_key: str, as_json: bool) -> None:
    """Revoke an open invite of account NAME (INVITE_KEY as `account invites` lists it)."""
    from formation.api import account_invite_routes as air

    if len(invite_key) != 64 or any(c not in "0123456789abcdef" for c in invite_key):
        raise AccountError(f"INVITE_KEY {invite_key[:70]!r}: expected 64 hex characters, as "
                           "`formation account invites NAME` lists it")
    done = _call(obj, None, air.account_uninvite, name=name, invite_key=invite_key)
    if as_json:
        _emit_json(done)
    else:
        click.echo(f"revoked invite {invite_key[:16]} of account {name}: op {done.op[:12]}")


@click.command("join")
@click.argument("token")
@click.option("--key", "key_file", default=DEFAULT_KEY, show_default=True, metavar="FILE|agent:",
              help="Your key file, made (mode 0600) if missing; or agent:[NAME], an Ed25519 "
              "key of your ssh-agent.")
@click.option("--profile", metavar="NAME",
              help="The profile to save in ~/.config/formation/client.yaml (default: the "
              "account's name).")
@json_option
def join(token: str, key_file: str, profile: str | None, as_json: bool) -> None:
    """Join an account with an invite token (FMA1-...) from its admin; run on your machine."""
    from formation.client_profile import create_key, load_key, load_signer
    from formation.discovery import account_token
    from formation.identity.agent import is_agent_spec

    tok = account_token.decode(token)
    if tok.expires_s < time.time():
        raise AccountError(f"token: expired at {_when(tok.expires_s * 1000)}; ask the admin "
                           "for a new one")
    agent = is_agent_spec(key_file)  # an ssh-agent's key joins as it is; a file is made if new
    path: Path | str = key_file if agent else Path(key_file).expanduser()
    created = not agent and not Path(path).exists()
    identity = (load_signer(key_file) if agent
                else create_key(Path(path)) if created else load_key(Path(path)))
    endpoint, relayed = run(lambda: _redeem(tok, identity))
    name = profile or tok.account
    saved, default = _save_profile(name, endpoint, path)
    record = {"account": tok.account, "key": identity.public_key_hex, "key_file": str(path),
              "key_created": created, "node": endpoint, "op": relayed.id,
              "status": relayed.status, "profile": name, "profile_file": str(saved),
              "default_profile": default}
    if as_json:
        _emit_json(record)
        return
    click.echo(f"joined account {tok.account} with key {identity.public_key_hex[:16]} "
               f"({'new, ' if created else ''}{path}) through {endpoint}")
    how = "formation tenant whoami" if default else f"formation tenant whoami --profile {name}"
    click.echo(f"profile {name} saved in {saved}: `{how}` works now")


async def _redeem(tok: Any, identity: Any) -> tuple[str, Any]:
    """Through the first endpoint that answers as the inviting admin node (its key hashes to
    the token's pin): the node drafts the redeem, this side checks and signs it, the node
    relays it."""
    from formation.api import account_invite_models as im
    from formation.api import account_invite_routes as air
    from formation.api import account_models as am
    from formation.api import discovery_routes
    from formation.api.client import ApiError, NodeClient, NodeUnreachable
    from formation.discovery.account_token import proof_message
    from formation.tenant_client import sign_draft_async

    failures: list[str] = []
    for endpoint in tok.endpoints:
        async with NodeClient.tcp(endpoint, identity, timeout_s=20) as client:
            try:
                hello = await client.call(discovery_routes.discovery_hello)
            except (NodeUnreachable, ApiError) as exc:
                failures.append(f"{endpoint} ({exc})")
                continue
            if not tok.matches(bytes.fromhex(hello.public_key)):
                failures.append(f"{endpoint} (answered as another node, {hello.name})")
                continue
            try:
                network = bytes.fromhex(hello.network)
            except ValueError:
                network = b""
            if len(network) != 16:
                failures.append(f"{endpoint} ({hello.name} belongs to no network)")
                continue
            client.node_key = hello.public_key  # sign for the pinned node, nobody else
            proof = tok.invite_key.sign(proof_message(network, tok.account,
                                                      identity.public_key_hex)).signature
            request = im.RedeemRequest(account=tok.account, invite_key=tok.invite_key_hex,
                                       proof=proof.hex())
            draft = await client.call(air.account_redeem_draft, request)
            payload = {"account": tok.account, "key": identity.public_key_hex,
                       "invite_key": tok.invite_key_hex, "proof": proof.hex()}
            signed = await sign_draft_async(draft, identity, REDEEM, payload)
            if bytes.fromhex(draft.network) != network:
                raise AccountError("the node drafted the redeem for another network; nothing "
                                   "was sent")
            relayed = await client.call(air.account_redeem, am.SignedOp(op=signed))
            return endpoint, relayed
    raise AccountError("no endpoint of the token answered as the inviting admin node: "
                       + "; ".join(failures))


def _save_profile(name: str, node: str, key: Path | str) -> tuple[Path, bool]:
    """Adds (or replaces) profile `name` in client.yaml, the default when there is none;
    returns the file and whether `name` is the default."""
    import yaml

    from formation.client_profile import config_path

    path = config_path()
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except FileNotFoundError:
        data = {}
    except (OSError, yaml.YAMLError) as exc:
        raise AccountError(f"{path}: cannot be read ({type(exc).__name__}); the key joined "
                           "the account, but no profile was saved") from None
    if not isinstance(data, dict) or not isinstance(data.get("profiles", {}), dict):
        raise AccountError(f"{path}: expected a map with profiles; the key joined the account, "
                           "but no profile was saved")
    data.setdefault("profiles", {})[name] = {"node": node, "key": str(key)}
    data.setdefault("default", name)
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    temporary = path.with_name(path.name + ".new")
    temporary.write_text(yaml.safe_dump(data, sort_keys=True))
    temporary.replace(path)
    return path, data["default"] == name
