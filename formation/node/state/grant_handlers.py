"""What the tenant endpoints do for delegation (tenant_handlers.py calls these): which ops a
grantee's key may have drafted and relayed, and the grants and instances a key may list.

A grantee's key is no account's: it may relay only uses (instance ops naming a grant and the
account it acts for); whether the grant allows the op is the rules' verdict, on every replica,
not this node's. Listings are for convenience and judge expiry by this node's clock."""

from __future__ import annotations

import time
from typing import Any

from formation.api.errors import Forbidden
from formation.node.state import grant_rules, grant_view
from formation.node.state.accounts import Account

RELAYED_KINDS = grant_rules.KINDS  # beside tenant_rules.TENANT_KINDS


def check_relay(kind: str, payload: Any, account: Account | None) -> None:
    """Raises Forbidden for what no key of this kind may relay (the rules judge the rest)."""
    if account is not None:
        return
    if kind not in grant_rules.USE_KINDS or not isinstance(payload, dict) \
            or grant_rules.GRANT not in payload:
        raise Forbidden("payload.grant: a grantee's key may relay only instance and image ops "
                        "that name the grant they use (and the account it is for)")


def visible_grants(grants: list[dict[str, Any]], key: str,
                   account: Account | None) -> list[dict[str, Any]]:
    """An account's grants (an admin account's: all), or those held by the grantee `key`."""
    now = int(time.time() * 1000)
    if account is None:
        mine = [g for g in grants if g.get("grantee") == key]
    elif account.admin:
        mine = list(grants)
    else:
        mine = [g for g in grants if g.get("account") == account.name]
    return [{**g, "live": grant_view.live(g, now)} for g in mine]


def granted_instances(instances: list[dict[str, Any]],
                      grants: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The instances a grantee's live grants name (an exact name, or a prefix), of the accounts
    that granted them."""
    live = [g for g in grants if g.get("live")]
    return [i for i in instances if any(
        i.get("account") == g.get("account")
        and (i.get("name") == g["on"] if "on" in g else
             str(i.get("name", "")).startswith(str(g.get("prefix"))))
        for g in live)]
