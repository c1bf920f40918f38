"""Models of the delegation endpoints (grant_routes.py)."""

from typing import Any

from pydantic import Field

from formation.api.models import Model


class TenantGrants(Model):
    account: str | None = Field(description="the signing key's account (none: a grantee's key)")
    items: list[dict[str, Any]] = Field(description="records of the grants view: key (the "
                                        "grant's id), account, grantee, actions, on or prefix, "
                                        "until_ms, granted_by, revoked, live (by this node's "
                                        "clock)")
