"""Endpoints for tenants: people with an account key, who need not own a node. Their audience
is TENANT: the unix socket, or a request signed by a key of an account of the replicated state
(any other key: 401 unknown key, a node's: 403). The handler finds which account and what it
owns."""

from __future__ import annotations

from typing import Any

from formation.api import account_models as am
from formation.api.caller import Audience as A
from formation.api.endpoint import Endpoint
from formation.api.models import Empty

REFUSED = ((403, "The account may not do this (owner, quota, kind, another key's op)"),
           (409, "The op waits for ops this node does not have yet: draft it again"))

tenant_draft = Endpoint(
    "tenant_draft", "POST", "/v1/tenant/draft", am.DraftRequest, am.Draft,
    "An op body for the signing account key to sign: its seq, parents and time from this node",
    errors=REFUSED, audience=A.TENANT,
)
tenant_submit = Endpoint(
    "tenant_submit", "POST", "/v1/tenant/ops", am.SignedOp, am.Relayed,
    "Relay an op signed by an account key into the store (refused: 403 and nothing written)",
    errors=REFUSED, audience=A.TENANT,
)
tenant_account = Endpoint(
    "tenant_account", "GET", "/v1/tenant/account", Empty, am.TenantAccount,
    "The signing key's account: roles, quotas and what its instances use",
    errors=REFUSED, audience=A.TENANT,
)
tenant_instances = Endpoint(
    "tenant_instances", "GET", "/v1/tenant/instances", Empty, am.TenantInstances,
    "The signing key's account's instances (an admin account's: every instance)",
    errors=REFUSED, audience=A.TENANT,
)

tenant_images = Endpoint(
    "tenant_images", "GET", "/v1/tenant/images", Empty, am.TenantImages,
    "The signing key's account's images (an admin account's: every image)",
    errors=REFUSED, audience=A.TENANT,
)

ENDPOINTS: tuple[Endpoint[Any, Any], ...] = (
    tenant_draft, tenant_submit, tenant_account, tenant_instances, tenant_images)
