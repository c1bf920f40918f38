"""The Formfile an image was built from, as its image.add op records it (`formfile`), and the
node that built it (`builder`). Kept beside image_manifest.py: the rules check the shape on
every replica, the pack part writes it, `pack ship` reads `digest` to reuse an image.

The source text is carried as a list of chunks: an op's strings are at most 2048 bytes each and
its payload 12 KiB (op.py), so one string could not hold a Formfile, and the whole source is
bounded below the payload limit with room for the rest of image.add (parts, a 2048-byte
cmdline, the builder key)."""

from __future__ import annotations

import re
from typing import Any

FIELDS = frozenset({"name", "digest", "source"})
MAX_SOURCE_BYTES = 8 * 1024  # the Formfile text, UTF-8; what fits in an op beside the rest
CHUNK_BYTES = 2048  # op.py MAX_STRING_BYTES
MAX_NAME = 255
_HEX64 = re.compile(r"^[0-9a-f]{64}$")


def source_chunks(text: str) -> list[str]:
    """The text split into pieces of at most CHUNK_BYTES UTF-8 bytes, never inside a
    character; "".join() gives the text back."""
    chunks: list[str] = []
    current: list[str] = []
    size = 0
    for char in text:
        width = len(char.encode())
        if size + width > CHUNK_BYTES:
            chunks.append("".join(current))
            current, size = [], 0
        current.append(char)
        size += width
    if current or not chunks:
        chunks.append("".join(current))
    return chunks


def source_text(record: dict[str, Any]) -> str:
    return "".join(record.get("source") or [])


def record(name: str, digest: str, source: str) -> dict[str, Any]:
    """The `formfile` value of an image.add; ValueError when the source is too long for an op."""
    size = len(source.encode())
    if size > MAX_SOURCE_BYTES:
        raise ValueError(f"Formfile: {size} bytes; an image records at most {MAX_SOURCE_BYTES}")
    return {"name": name, "digest": digest, "source": source_chunks(source)}


def formfile_problem(value: Any) -> str | None:
    """What is wrong with an image.add `formfile` value, as "FIELD: expected ..." (FIELD after
    `payload.formfile`), or None."""
    if not isinstance(value, dict) or set(value) != FIELDS:
        return ": expected a map of exactly name, digest and source"
    name, digest, source = value["name"], value["digest"], value["source"]
    if not isinstance(name, str) or not 0 < len(name) <= MAX_NAME:
        return f".name: expected the Formfile's NAME, 1-{MAX_NAME} characters"
    if not isinstance(digest, str) or not _HEX64.match(digest):
        return ".digest: expected the build context's SHA-256, 64 lowercase hex"
    if not isinstance(source, list) or not source \
            or not all(isinstance(c, str) for c in source):
        return ".source: expected the Formfile text as a list of strings"
    if sum(len(c.encode()) for c in source) > MAX_SOURCE_BYTES:
        return f".source: expected at most {MAX_SOURCE_BYTES} bytes of Formfile text"
    return None
