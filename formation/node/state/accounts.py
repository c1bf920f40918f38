"""Accounts (tenants) as the state store knows them: people who deploy without owning a node.

An account is written by `account.set` (name, 1..8 Ed25519 keys, roles, quotas) and ended by
`account.remove`, both signed by a network admin. They are authority ops (authority.py): the
accounts an op is judged against are those of its causal past, folded in (HLC, id) order, so
every replica gives a tenant's op the same verdict, and an op whose past holds the removal of
its account (or a set that dropped its key) is refused everywhere."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from formation.node.state.layered import GONE, Gone, Layered

ACCOUNT_KINDS = frozenset({"account.set", "account.remove"})
ACCOUNT_ROLES = frozenset({"admin", "user", "member"})  # "member": the older name for "user"
ADMIN = "admin"
MAX_KEYS = 8
QUOTA_FIELDS = ("vcpus", "memory_mb", "disk_gb", "instances")
MAX_QUOTA = 2**40
_HEX64 = re.compile(r"^[0-9a-f]{64}$")
_NAME = re.compile(r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$")


@dataclass(frozen=True)
class Account:
    name: str
    keys: tuple[str, ...]
    roles: frozenset[str]
    quotas: dict[str, int] = field(default_factory=dict)  # a missing figure: no limit

    @property
    def admin(self) -> bool:
        return ADMIN in self.roles


def payload_problem(p: dict[str, Any]) -> str | None:
    """What is wrong with an account.set payload, as "payload.FIELD: expected ...", or None."""
    extra = set(p) - {"name", "keys", "roles", "quotas"}
    if extra:
        return f"payload.{sorted(extra)[0]}: not a field of this kind"
    if not (isinstance(p.get("name"), str) and _NAME.match(p["name"])):
        return "payload.name: expected an account name (lowercase letters, digits, '-')"
    keys = p.get("keys")
    if not (isinstance(keys, list) and 1 <= len(keys) <= MAX_KEYS
            and all(isinstance(k, str) and _HEX64.match(k) for k in keys)
            and len(set(keys)) == len(keys)):
        return f"payload.keys: expected 1 to {MAX_KEYS} distinct Ed25519 keys, 64 hex each"
    roles = p.get("roles")
    if not (isinstance(roles, list) and roles and len(set(roles)) == len(roles)
            and all(r in ACCOUNT_ROLES for r in roles)):
        return "payload.roles: expected a list of roles from admin, user"
    if "quotas" in p:
        quotas = p["quotas"]
        if not isinstance(quotas, dict):
            return "payload.quotas: expected a map of " + ", ".join(QUOTA_FIELDS)
        for name, value in quotas.items():
            if name not in QUOTA_FIELDS:
                return f"payload.quotas.{name}: not a quota (expected {', '.join(QUOTA_FIELDS)})"
            if not (isinstance(value, int) and not isinstance(value, bool)
                    and 0 <= value <= MAX_QUOTA):
                return f"payload.quotas.{name}: expected an integer from 0 to {MAX_QUOTA}"
    return None


def from_payload(p: dict[str, Any]) -> Account:
    return Account(p["name"], tuple(p["keys"]), frozenset(p["roles"]), dict(p.get("quotas", {})))


class Accounts:
    """The accounts of one authority fold: by name, and which account each key belongs to.
    A key names at most one account: the later set (by the fold's order) takes it.

    Persistent (layered.py): every context has its own fold, and a copy costs O(1), a step
    O(log N), so folding N accounts one context at a time is not quadratic."""

    def __init__(self, names: Layered[str, Account] | None = None,
                 keys: Layered[str, str] | None = None) -> None:
        self._names: Layered[str, Account] = names if names is not None else Layered()
        self._keys: Layered[str, str] = keys if keys is not None else Layered()

    @property
    def by_name(self) -> Mapping[str, Account]:
        return self._names

    @property
    def by_key(self) -> Mapping[str, str]:
        return self._keys

    def copy(self) -> Accounts:
        return Accounts(self._names, self._keys)

    def of_key(self, key_hex: str) -> Account | None:
        name = self._keys.get(key_hex)
        return self._names.get(name) if name is not None else None

    def step(self, kind: str, payload: dict[str, Any]) -> None:
        """One account op, in fold order (its validity decided before)."""
        name = payload["name"]
        names: dict[str, Account | Gone] = {}
        keys: dict[str, str | Gone] = {}
        old = self._names.get(name)
        if old is not None:
            names[name] = GONE
            for key in old.keys:
                if self._keys.get(key) == name:
                    keys[key] = GONE
        if kind == "account.set":
            account = from_payload(payload)
            names[name] = account
            for key in account.keys:
                keys[key] = name
        self._names = self._names.updated(names)
        self._keys = self._keys.updated(keys)

    def redeem(self, name: str, key: str) -> None:
        """An account.redeem, in fold order: the key joins the account, unless the account is
        gone or full (a redeem concurrent with its removal, or with other redeems, adds
        nothing) or already has it. Like a set, it takes the key from any other account."""
        account = self._names.get(name)
        if account is None or key in account.keys or len(account.keys) >= MAX_KEYS:
            return
        self._names = self._names.updated({name: replace(account, keys=(*account.keys, key))})
        self._keys = self._keys.updated({key: name})


def keys_after(ops: list[Any]) -> tuple[str, ...] | None:
    """The keys of one account after its ops (set, remove, redeem; in (HLC, id) order), as the
    fold gives them; None: no account. For revocations (tenant_revocation.py)."""
    keys: tuple[str, ...] | None = None
    for op in ops:
        if op.kind == "account.set":
            keys = tuple(op.payload["keys"])
        elif op.kind == "account.remove":
            keys = None
        elif keys is not None and op.payload["key"] not in keys and len(keys) < MAX_KEYS:
            keys = (*keys, op.payload["key"])
    return keys
