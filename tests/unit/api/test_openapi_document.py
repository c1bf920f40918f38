"""The served /openapi.json is a valid OpenAPI 3.1 document generated from ENDPOINTS."""

from __future__ import annotations

import json

from openapi_spec_validator import validate

from formation.api import routes
from formation.api.client import NodeClient
from formation.api.openapi import build_openapi


async def test_served_document_is_valid_and_lists_every_route(client: NodeClient) -> None:
    document = json.loads(await client.raw_get(routes.OPENAPI_PATH))
    validate(document)
    listed = {(method.upper(), path) for path, ops in document["paths"].items() for method in ops}
    expected = {(e.method, e.path) for e in routes.ENDPOINTS}
    expected |= {("GET", routes.OPENAPI_PATH), ("GET", routes.METRICS_PATH)}
    assert listed == expected
    assert document == json.loads(json.dumps(build_openapi()))


async def test_operations_carry_models_and_security(client: NodeClient) -> None:
    document = json.loads(await client.raw_get(routes.OPENAPI_PATH))
    schemas = document["components"]["schemas"]
    for endpoint in routes.ENDPOINTS:
        op = document["paths"][endpoint.path][endpoint.method.lower()]
        assert op["operationId"] == endpoint.name
        assert (op["security"] == []) == endpoint.public
        raw = getattr(endpoint.response, "MEDIA_TYPE", None)
        if raw is not None:  # raw bytes (image blobs): documented as binary of that type
            schema = op["responses"]["200"]["content"][raw]["schema"]
            assert schema == {"type": "string", "format": "binary"}
        elif not endpoint.stream:
            ref = op["responses"]["200"]["content"]["application/json"]["schema"]["$ref"]
            assert ref.rsplit("/", 1)[1] == endpoint.response.__name__ in schemas
        if not endpoint.public:
            assert "401" in op["responses"]
    ids = [op["operationId"] for ops in document["paths"].values() for op in ops.values()]
    assert len(ids) == len(set(ids)), "operationIds are unique"
