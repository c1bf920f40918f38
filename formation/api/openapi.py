"""Generates the OpenAPI 3.1 document from `routes.ENDPOINTS`; it is never written by hand."""

from __future__ import annotations

from typing import Any

from pydantic.json_schema import models_json_schema

from formation import __version__
from formation.api import routes
from formation.api.endpoint import Endpoint
from formation.api.models import Empty, ErrorBody

REF = "#/components/schemas/{model}"
SECURITY: dict[str, list[str]] = {"FormationSignature": []}


def _error_responses(endpoint: Endpoint[Any, Any]) -> dict[str, Any]:
    error = {"application/json": {"schema": {"$ref": REF.format(model="ErrorBody")}}}
    codes = {"400": "Invalid request", "500": "Internal error",
             "503": "That part of the node is not running here"}
    if not endpoint.public:
        codes["401"] = ("Missing, bad, stale or replayed signature, or one for another node, "
                        "or an unknown key (TCP only)")
        codes["403"] = f"The caller is not in this route's audience ({endpoint.audience})"
    codes |= {str(status): text for status, text in endpoint.errors}
    return {code: {"description": text, "content": error} for code, text in codes.items()}


def _query_parameters(endpoint: Endpoint[Any, Any]) -> list[dict[str, Any]]:
    if endpoint.query is None:
        return []
    schema = endpoint.query.model_json_schema()
    required = set(schema.get("required", []))
    return [
        {"name": name, "in": "query", "required": name in required, "schema": prop}
        for name, prop in schema["properties"].items()
    ]


def _path_parameters(endpoint: Endpoint[Any, Any]) -> list[dict[str, Any]]:
    names = [part[1:-1] for part in endpoint.path.split("/") if part.startswith("{")]
    patterns = dict(endpoint.path_patterns)

    def schema(name: str) -> dict[str, str]:
        return {"type": "string", "pattern": patterns[name]} if name in patterns else {
            "type": "string"}

    return [{"name": n, "in": "path", "required": True, "schema": schema(n)} for n in names]


def _operation(endpoint: Endpoint[Any, Any]) -> dict[str, Any]:
    media = "text/event-stream" if endpoint.stream else "application/json"
    response_schema: dict[str, Any] = {"$ref": REF.format(model=endpoint.response.__name__)}
    if endpoint.stream:
        response_schema = {"type": "string", "description": "data: lines, each an Event"}
    raw_media = getattr(endpoint.response, "MEDIA_TYPE", None)  # a non-JSON answer (blobs)
    if isinstance(raw_media, str):
        media, response_schema = raw_media, {"type": "string", "format": "binary"}
    op: dict[str, Any] = {
        "operationId": endpoint.name,
        "summary": endpoint.summary,
        "parameters": _path_parameters(endpoint) + _query_parameters(endpoint),
        "responses": {
            "200": {"description": "OK", "content": {media: {"schema": response_schema}}},
            **_error_responses(endpoint),
        },
    }
    if endpoint.request is not Empty:
        op["requestBody"] = {
            "required": True,
            "content": {"application/json": {"schema": {"$ref": REF.format(
                model=endpoint.request.__name__)}}},
        }
    op["security"] = [] if endpoint.public else [SECURITY]
    op["x-formation-audience"] = str(endpoint.audience)
    return op


def _plain(summary: str, media: str) -> dict[str, Any]:
    return {
        "get": {
            "operationId": summary.split()[0].lower(),
            "summary": summary,
            "security": [],
            "x-formation-audience": "public",
            "responses": {"200": {"description": "OK", "content": {
                media: {"schema": {"type": "string"}}}}},
        }
    }


def build_openapi() -> dict[str, Any]:
    models = {e.request for e in routes.ENDPOINTS} | {e.response for e in routes.ENDPOINTS}
    models.add(ErrorBody)
    _, defs = models_json_schema(
        [(model, "serialization") for model in sorted(models, key=lambda m: m.__name__)],
        ref_template=REF,
    )
    paths: dict[str, dict[str, Any]] = {}
    for endpoint in routes.ENDPOINTS:
        paths.setdefault(endpoint.path, {})[endpoint.method.lower()] = _operation(endpoint)
    paths[routes.OPENAPI_PATH] = _plain("Openapi document of this API", "application/json")
    paths[routes.METRICS_PATH] = _plain("Metrics in Prometheus text format", "text/plain")
    return {
        "openapi": "3.1.0",
        "info": {"title": "Formation node API", "version": __version__},
        "paths": paths,
        "components": {
            "schemas": defs.get("$defs", {}),
            "securitySchemes": {
                "FormationSignature": {
                    "type": "apiKey",
                    "in": "header",
                    "name": "X-Formation-Signature",
                    "description": "Ed25519 request signature; see docs/protocol.md. "
                    "Required over TCP; the unix socket is authorized by its permissions.",
                }
            },
        },
    }
