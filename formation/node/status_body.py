"""The node status response, serialized once and reused. A status request is the API's most
frequent call (every console refreshes it), yet only the uptime changes per request; identity,
listen addresses and capabilities change rarely and resources at most once a second. So the JSON
is rendered when one of those changes, with the uptime left as a slot filled per request."""

from __future__ import annotations

from collections.abc import Callable

from formation.api import models as m

_SLOT_VALUE = -1.0  # no real uptime is negative, so this value marks the slot unambiguously
_SLOT = b'"uptime_s":-1.0'


class StatusBody:
    def __init__(self, build: Callable[[float], m.NodeStatus]) -> None:
        """`build(uptime_s)` returns the full, validated status model."""
        self._build = build
        self._inputs: tuple[object, ...] | None = None
        self._parts: tuple[bytes, bytes] = (b"", b"")

    def render(self, inputs: tuple[object, ...], uptime_s: float) -> bytes:
        """`inputs` are the objects that rarely change (the capabilities, the resource sample);
        the template is rebuilt whenever one of them is not the very object used last time.
        They are held, not just their ids, so a new object can never pass for an old one."""
        if self._inputs is None or len(inputs) != len(self._inputs) or any(
                new is not old for new, old in zip(inputs, self._inputs, strict=True)):
            template = self._build(_SLOT_VALUE).model_dump_json().encode()
            before, slot, after = template.partition(_SLOT)
            if not slot or _SLOT in after:
                raise RuntimeError("status template: the uptime slot must appear exactly once")
            self._parts = (before, after)
            self._inputs = inputs
        before, after = self._parts
        return b"".join((before, b'"uptime_s":', repr(float(uptime_s)).encode(), after))
