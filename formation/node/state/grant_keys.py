"""Which keys hold a grant (grant_rules.py), for the API's TENANT audience: a grantee is no
account's key, yet it must reach the tenant routes to draft and relay the ops it was granted.

This only lets a request in; what it may write is the rules' business (every use is judged
against its grant on every replica). Kept up to date from the applied ops (the store's
subscription) rather than by reading the grants view per request: a request's authentication
must not scan a view that may hold 100,000 grants. A key stays in while one of its grants is
neither revoked nor expired by this node's clock."""

from __future__ import annotations

import time
from collections.abc import Iterable
from typing import Any

from formation.node.state.op import Op


class GranteeKeys:
    def __init__(self) -> None:
        self._by_grantee: dict[str, dict[str, int]] = {}  # grantee -> live grant id -> until
        self._grantee_of: dict[str, str] = {}  # live grant id -> grantee
        self._revoked: set[str] = set()  # revoked grant ids (a revocation may come first)

    @classmethod
    def from_view(cls, grants: Iterable[dict[str, Any]]) -> GranteeKeys:
        keys = cls()
        for g in grants:
            if g.get("revoked"):
                keys._revoked.add(g["key"])
            elif isinstance(g.get("grantee"), str):
                keys._add(g["key"], g["grantee"], int(g.get("until_ms", 0)))
        return keys

    def note(self, ops: list[Op], _origin: str | None = None) -> None:
        """A store listener: after every batch of applied ops."""
        for op in ops:
            if op.kind == "grant.set":
                if op.id.hex() not in self._revoked:
                    self._add(op.id.hex(), op.payload["grantee"], op.payload["until_ms"])
            elif op.kind == "grant.revoke":
                self._revoked.add(op.payload["grant"])
                self._drop(op.payload["grant"])

    def __contains__(self, key: object) -> bool:
        mine = self._by_grantee.get(key) if isinstance(key, str) else None
        if not mine:
            return False
        now = int(time.time() * 1000)
        return any(until > now for until in mine.values())

    def _add(self, grant: str, grantee: str, until_ms: int) -> None:
        self._by_grantee.setdefault(grantee, {})[grant] = until_ms
        self._grantee_of[grant] = grantee

    def _drop(self, grant: str) -> None:
        grantee = self._grantee_of.pop(grant, None)
        if grantee is not None:
            mine = self._by_grantee[grantee]
            mine.pop(grant, None)
            if not mine:
                del self._by_grantee[grantee]
