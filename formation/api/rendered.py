"""Answers a handler has already serialized. The server writes the bytes as they are, so a hot
route can cache its JSON (node status) and a non-JSON document (Prometheus text) passes through
without the handler touching HTTP. Generic in the model the bytes are, so the server's start-up
check still ties the handler to its endpoint's response model."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Generic, TypeVar

from pydantic import BaseModel

M = TypeVar("M", bound=BaseModel)


@dataclass(frozen=True)
class Rendered(Generic[M]):
    """`body` is exactly what `M.model_dump_json()` would give (or, for a non-JSON endpoint,
    the document in `content_type`). With `file`, the answer is that file, streamed from disk
    by the server (an image blob: gigabytes never read into memory), and `body` is unused."""

    body: bytes
    content_type: str = "application/json"
    file: Path | None = None
