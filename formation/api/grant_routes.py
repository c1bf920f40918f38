"""Endpoints for delegation (docs/protocol.md, "Delegation"): grants are written like any
tenant op (drafted here, signed by the account's key, relayed through tenant_submit); this
lists them. Audience TENANT: an account's key (its account's grants; an admin account's: all)
or a grantee's key (the grants it holds)."""

from __future__ import annotations

from typing import Any

from formation.api import grant_models as gm
from formation.api.account_routes import REFUSED
from formation.api.caller import Audience as A
from formation.api.endpoint import Endpoint
from formation.api.models import Empty

tenant_grants = Endpoint(
    "tenant_grants", "GET", "/v1/tenant/grants", Empty, gm.TenantGrants,
    "The grants the signing key's account gave, or the grants the signing key holds",
    errors=REFUSED, audience=A.TENANT,
)

ENDPOINTS: tuple[Endpoint[Any, Any], ...] = (tenant_grants,)
