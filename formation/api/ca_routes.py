"""The network CA's root, for anyone (formation/node/state/ca_handlers.py): a certificate is
public, and people and programs outside the network (a tenant's laptop, a CI job) need it to
trust `.fog` names before they hold any key of the network. The CA's key is never served."""

from __future__ import annotations

from typing import Any

from pydantic import Field

from formation.api.caller import Audience as A
from formation.api.endpoint import Endpoint
from formation.api.models import Empty, Model


class NetworkCa(Model):
    fingerprint: str = Field(description="SHA-256 of the root's DER, hex: compare it with the "
                             "one an admin's `formation ca show --json` prints")
    root_pem: str = Field(description="the root certificate, PEM")


ca_root = Endpoint(
    "ca_root", "GET", "/v1/ca/root", Empty, NetworkCa,
    "The network CA's root certificate (for .fog names); 404 until an admin makes one",
    errors=((404, "The network has no CA"),),
    audience=A.PUBLIC,
)

ENDPOINTS: tuple[Endpoint[Any, Any], ...] = (ca_root,)
