"""The mesh's endpoints."""

from __future__ import annotations

from formation.api import models as m
from formation.api.caller import Audience as A
from formation.api.endpoint import Endpoint
from formation.api.mesh_models import MeshStatus

mesh_status = Endpoint(
    "mesh_status", "GET", "/v1/mesh", m.Empty, MeshStatus,
    "The WireGuard mesh: interface, and per peer its endpoint, handshake age and bytes",
    audience=A.MEMBER,
)

MESH_ENDPOINTS = (mesh_status,)
