"""Who gets the console over SSH. sshd asks `formation ssh-keys`, which asks this part: the admin
accounts of the replicated state (their Ed25519 keys, written as `ssh-ed25519` lines, since an
OpenSSH Ed25519 key is the same 32-byte public key) and this node's `admin_ssh_keys` setting
(for a host not yet in a network). Computed on every request, so a removed admin is refused at
the next login; with no node running, nobody logs in."""

from __future__ import annotations

import base64
import struct
from typing import TYPE_CHECKING, Any

from formation.api import models as m
from formation.api import ssh_models as sm
from formation.api.caller import Caller
from formation.api.models import HealthCheck

if TYPE_CHECKING:
    from formation.node.service import NodeService
    from formation.node.state.component import StateComponent

ADMIN_ROLE = "admin"


def ssh_ed25519_line(public_key_hex: str, comment: str) -> str:
    """The OpenSSH public key line of a raw Ed25519 public key (RFC 8709 wire format)."""
    raw = bytes.fromhex(public_key_hex)
    blob = b"".join(struct.pack(">I", len(part)) + part for part in (b"ssh-ed25519", raw))
    return f"ssh-ed25519 {base64.b64encode(blob).decode()} {comment}"


def admin_account_keys(accounts: list[dict[str, Any]]) -> list[sm.AuthorizedKey]:
    """Every key of every admin account of the accounts view (removed accounts are not in it)."""
    found = []
    for account in accounts:
        if ADMIN_ROLE not in account.get("roles", []):
            continue
        name = account["key"]
        found += [sm.AuthorizedKey(line=ssh_ed25519_line(key, f"formation:{name}"),
                                   source=f"account:{name}") for key in account.get("keys", [])]
    return found


class SshAccess:
    name = "ssh-access"

    def __init__(self, state: StateComponent | None = None) -> None:
        """`state`: the state store's part, whose admin accounts may log in (without it, or
        before the node is in a network, only the `admin_ssh_keys` setting)."""
        self.state = state
        self.service: NodeService | None = None

    async def start(self, service: NodeService) -> None:
        self.service = service

    async def stop(self) -> None:
        pass

    def api_handlers(self) -> object:
        return SshAccessHandlers(self)

    def health(self) -> list[HealthCheck]:
        return []


class SshAccessHandlers:
    def __init__(self, part: SshAccess) -> None:
        self.part = part

    async def ssh_authorized_keys(self, body: m.Empty, caller: Caller) -> sm.AuthorizedKeys:
        service = self.part.service
        assert service is not None, "handlers are served only after start"
        keys = [sm.AuthorizedKey(line=key, source="setting")
                for key in service.settings.admin_ssh_keys]
        accounts = await _accounts(self.part.state)
        if accounts is None:
            return sm.AuthorizedKeys(keys=keys, network=False)
        return sm.AuthorizedKeys(keys=keys + admin_account_keys(accounts), network=True)


async def _accounts(state: StateComponent | None) -> list[dict[str, Any]] | None:
    """The accounts view, or None when this node runs no store or is in no network yet."""
    if state is None or state.store is None:
        return None
    store = state.store
    if not await store.view("network"):
        return None
    return await store.view("accounts")
