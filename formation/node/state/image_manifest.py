"""A workload image's identity. An image is up to three blobs (kernel, initrd, disk), each known
by the SHA-256 of its bytes; the image's digest is the SHA-256 of its manifest, a canonical JSON
encoding of those blob digests and sizes and the default kernel command line. So one hash names
every byte a VM boots from, and a node verifies each blob it fetches against it."""

from __future__ import annotations

import hashlib
import json
import re
from typing import Any

PARTS = ("kernel", "initrd", "disk")  # kernel is required
_HEX64 = re.compile(r"^[0-9a-f]{64}$")
MAX_CMDLINE = 2048


def manifest_bytes(parts: dict[str, dict[str, Any]], cmdline: str) -> bytes:
    """`parts`: {"kernel": {"digest": hex, "size": n}, optional "initrd", "disk"}."""
    doc = {"cmdline": cmdline,
           "parts": {k: {"digest": v["digest"], "size": v["size"]} for k, v in parts.items()}}
    return json.dumps(doc, sort_keys=True, separators=(",", ":")).encode()


def image_digest(parts: dict[str, dict[str, Any]], cmdline: str) -> str:
    return hashlib.sha256(manifest_bytes(parts, cmdline)).hexdigest()


def parts_problem(parts: Any) -> str | None:
    """What is wrong with an image.add `parts` value, or None."""
    if not isinstance(parts, dict) or "kernel" not in parts:
        return "a map with at least `kernel`"
    for name, part in parts.items():
        if name not in PARTS:
            return f"unknown part {name!r} (expected kernel, initrd, disk)"
        if not isinstance(part, dict) or set(part) != {"digest", "size"}:
            return f"{name}: a map of `digest` and `size`"
        if not isinstance(part["digest"], str) or not _HEX64.match(part["digest"]):
            return f"{name}.digest: a SHA-256, 64 hex"
        if isinstance(part["size"], bool) or not isinstance(part["size"], int) \
                or part["size"] < 0:
            return f"{name}.size: a size in bytes"
    return None
