"""What the Accounts screen shows of each account, as plain text: pure functions of the
accounts and instances views (what the app's network read holds), so the columns that fit
80x24 and the figures are tested without a terminal. Usage is counted by the API's own
definition (formation/api/account_usage.py), the one `formation account show` and the node's
tenant endpoint use."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from formation.api.account_usage import FIGURES, usage_by_account
from formation.tui.instance_rows import memory_text, truncate

COLUMNS = (("account", 14), ("roles", 6), ("keys", 17), ("vCPU", 7), ("memory", 11),
           ("disk", 10), ("instances", 9))
# At 80 columns everything but the disk figures shows; the keys go first on narrower ones.
PRIORITY = ("account", "instances", "vCPU", "memory", "roles", "keys", "disk")
MAX_QUOTA = 1 << 40  # the store's own bound is checked by its rules; this keeps typos short
KEYS_TEXT = "enter instances · m quotas · x remove"
EMPTY_TEXT = ("No accounts in this network yet. An admin creates one with `formation account "
              "create NAME --key KEY.pub` (the person makes the key with `formation key "
              "create`).")


@dataclass
class AccountRow:
    name: str
    roles: list[str] = field(default_factory=list)
    keys: list[str] = field(default_factory=list)
    quotas: dict[str, int] = field(default_factory=dict)
    usage: dict[str, int] = field(default_factory=dict)

    def cells(self) -> tuple[str, ...]:
        """One table row, in COLUMNS order, each cut to its column's width."""
        cells = (self.name, ",".join(self.roles) or "-", keys_text(self.keys),
                 figure_text(self, "vcpus"), figure_text(self, "memory_mb"),
                 figure_text(self, "disk_gb"), figure_text(self, "instances"))
        return tuple(truncate(c, w) for c, (_, w) in zip(cells, COLUMNS, strict=True))


def short_key(key: str) -> str:
    """The first 8 hex of a key: enough to tell a person's keys apart on screen."""
    return key[:8]


def keys_text(keys: Sequence[str]) -> str:
    if not keys:
        return "-"
    if len(keys) <= 2:
        return " ".join(short_key(k) for k in keys)
    return f"{short_key(keys[0])} +{len(keys) - 1}"


def _amount(name: str, value: int) -> str:
    if name == "memory_mb":
        return memory_text(value)
    if name == "disk_gb":
        return f"{value}G"
    return str(value)


def figure_text(row: AccountRow, name: str) -> str:
    """'used/limit' (2/8), or 'used' alone where there is no quota; a figure past its quota is
    marked with '!' (the quota was lowered after the account's instances were made)."""
    used = row.usage.get(name, 0)
    limit = row.quotas.get(name)
    if limit is None:
        return _amount(name, used)
    mark = "!" if used > limit else ""
    return f"{_amount(name, used)}/{_amount(name, limit)}{mark}"


def _str_list(value: Any) -> list[str]:
    return [str(v) for v in value] if isinstance(value, list) else []


def _quotas(value: Any) -> dict[str, int]:
    if not isinstance(value, Mapping):
        return {}
    return {str(k): v for k, v in value.items() if isinstance(v, int) and k in FIGURES}


def account_rows(accounts: Sequence[Mapping[str, Any]],
                 instances: Sequence[Mapping[str, Any]]) -> list[AccountRow]:
    """One row per account of the view, by name, each with what its instances use."""
    usage = usage_by_account(instances)
    empty = dict.fromkeys(FIGURES, 0)
    rows = [AccountRow(name=str(a.get("key", "?")), roles=_str_list(a.get("roles")),
                       keys=_str_list(a.get("keys")), quotas=_quotas(a.get("quotas")),
                       usage=usage.get(str(a.get("key")), empty))
            for a in accounts]
    return sorted(rows, key=lambda r: r.name)


def count_text(rows: Sequence[AccountRow]) -> str:
    if not rows:
        return EMPTY_TEXT
    admins = sum(1 for r in rows if "admin" in r.roles)
    return f"{len(rows)} account(s), {admins} admin (used/quota) · {KEYS_TEXT}"


def selected_text(row: AccountRow | None) -> str:
    """The line under the table: the highlighted account's keys in full length order and its
    quotas in words (the table cuts both)."""
    if row is None:
        return ""
    quotas = " ".join(f"{k}={row.quotas[k]}" for k in FIGURES if k in row.quotas)
    keys = ", ".join(short_key(k) + "…" for k in row.keys) or "no keys"
    return f"{row.name}: {len(row.keys)} key(s) {keys} · {quotas or 'no quotas'}"


def role_note(role: str | None, remote: bool) -> str:
    """Why changes may be refused here, in one line; empty when this console may make them."""
    if remote:
        return ("attached to another node: changes are made on a node's own console "
                "(or `formation account` there)")
    if role is not None and role != "admin":
        return f"this node is not a network admin (role: {role}): changes are refused"
    return ""


def quota_payload(row: AccountRow, quotas: Mapping[str, int]) -> dict[str, Any]:
    """The `account.set` payload that gives `row` exactly `quotas` and keeps its keys and
    roles (what `formation account quota NAME --clear ...` writes)."""
    payload: dict[str, Any] = {"name": row.name, "keys": list(row.keys), "roles": list(row.roles)}
    if quotas:
        payload["quotas"] = {k: quotas[k] for k in FIGURES if k in quotas}
    return payload


def parse_quota(name: str, text: str) -> int | str | None:
    """A quota field: empty is no limit (None), else a whole number >= 0; anything else is the
    one-line problem (a str)."""
    text = text.strip()
    if not text:
        return None
    if not text.isdigit():
        return f"{name}: expected a whole number >= 0, or empty for no limit"
    value = int(text)
    if value > MAX_QUOTA:
        return f"{name}: expected at most {MAX_QUOTA}"
    return value
