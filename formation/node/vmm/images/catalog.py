"""The network's images as this node knows them: the `images` view of the replicated state (one
element per image.add, de-duplicated by digest), completed from the manifests this node keeps
of the images it holds, and the peers to ask for an image's blobs."""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from formation.node.vmm.images.blob import HEX64
from formation.node.vmm.images.fetch import Peer


def images(view: list[dict[str, Any]], manifests: dict[str, dict[str, Any]]
           ) -> list[dict[str, Any]]:
    """image.add payloads (plus `added_by`) of the images in the view, first add per digest."""
    found: dict[str, dict[str, Any]] = {}
    for element in view:
        digest = element.get("key") or element.get("digest")
        if not isinstance(digest, str) or digest in found:
            continue
        local = manifests.get(digest, {})
        found[digest] = {
            "digest": digest, "name": element.get("name", ""),
            "size": element.get("size", 0),
            "parts": element.get("parts") or local.get("parts") or {},
            "cmdline": element.get("cmdline", local.get("cmdline", "")),
            "added_by": element.get("added_by", ""),
        }
    return list(found.values())


def find(catalog: Iterable[dict[str, Any]], ref: str) -> dict[str, Any] | None:
    """By name, digest, or a unique digest prefix of 6+ hex."""
    catalog = list(catalog)
    for image in catalog:
        if ref in (image["name"], image["digest"]):
            return image
    if len(ref) >= 6:
        hits = [i for i in catalog if i["digest"].startswith(ref)]
        if len(hits) == 1:
            return hits[0]
    return None


def peers_for(image: dict[str, Any], nodes: list[dict[str, Any]],
              extra: Iterable[tuple[str, str]], me: str,
              address_of: Callable[[str, str], str]) -> list[Peer]:
    """Who to ask: the node that added the image first (it had every part), then the other
    members with an API endpoint in their record, then configured replication peers.
    `address_of(key, underlay)` prefers the mesh address where the mesh reaches the node."""
    peers: dict[str, Peer] = {}
    ordered = sorted(nodes, key=lambda n: n.get("key") != image.get("added_by"))
    for node in ordered:
        key, endpoints = node.get("key"), node.get("endpoints") or []
        if key and key != me and endpoints and key not in peers:
            peers[key] = Peer(key, address_of(key, endpoints[0]), node.get("name") or "")
    for key, address in extra:
        if key and key != me and key not in peers:
            peers[key] = Peer(key, address)
    return list(peers.values())


class Manifests:
    """`root/manifests/<digest>.json`: the payload of each image this node holds, so it can
    list, boot and clean up an image whatever the replicated view carries, and after the
    image was removed from the network (to free its blobs)."""

    def __init__(self, root: Path) -> None:
        self.dir = root / "manifests"

    def save(self, payload: dict[str, Any]) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)
        keep = {k: payload[k] for k in ("digest", "name", "size", "parts", "cmdline")}
        tmp = self.dir / f".{payload['digest']}.tmp"
        tmp.write_text(json.dumps(keep, sort_keys=True))
        os.replace(tmp, self.dir / f"{payload['digest']}.json")

    def load(self) -> dict[str, dict[str, Any]]:
        found: dict[str, dict[str, Any]] = {}
        if not self.dir.exists():
            return found
        for path in self.dir.glob("*.json"):
            if not HEX64.match(path.stem):
                continue
            try:
                found[path.stem] = json.loads(path.read_text())
            except (OSError, ValueError):
                continue
        return found

    def drop(self, digest: str) -> None:
        if HEX64.match(digest):
            (self.dir / f"{digest}.json").unlink(missing_ok=True)
