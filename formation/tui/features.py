"""Which parts of the network API the attached node offers, read from its /openapi.json, so the
peers, instances and enrollment screens say truthfully what is not there yet."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

from formation.api import routes
from formation.errors import FormationError

if TYPE_CHECKING:
    from formation.tui.link import NodeLink

NETWORK_PREFIXES = {
    "peers": ("/v1/peers", "/v1/mesh", "/v1/nodes"),
    "instances": ("/v1/instances",),
    "enroll": ("/v1/network", "/v1/join", "/v1/invites", "/v1/discovery"),
}


async def offered_paths(link: NodeLink) -> set[str] | str:
    """The API paths of the node, or a sentence saying why they could not be read."""
    try:
        document = json.loads(await link.raw_get(routes.OPENAPI_PATH))
    except FormationError as exc:  # the API client's ApiError and NodeUnreachable
        return str(exc)
    except ValueError:
        return "the node's API document is not valid JSON"
    return set(document.get("paths", {}))


def matching(paths: set[str], area: str) -> list[str]:
    return sorted(p for p in paths if p.startswith(NETWORK_PREFIXES[area]))
