"""Making and checking gossip envelopes. The signed bytes are a canonical JSON of every field but
`hops`, `id` and `signature`; the id is their SHA-256, so a relay cannot alter a message without
changing its id and breaking its signature."""

from __future__ import annotations

import hashlib
import json
import secrets
import time
from collections.abc import Callable
from typing import Any

from nacl.exceptions import BadSignatureError
from nacl.exceptions import ValueError as NaclValueError
from nacl.signing import VerifyKey

from formation.api.p2p_models import Envelope
from formation.identity import NodeIdentity, node_id_for

SCHEME = "formation-gossip-v1"
FUTURE_SKEW_S = 60.0
# One envelope must fit a request body (1 MiB) with room for the batch around it.
MAX_SIGNED_BYTES = 768 * 1024


class Rejected(Exception):
    """Why an envelope was not accepted."""


class TooLarge(ValueError):
    """A payload too big for one gossip envelope."""


def signed_bytes(topic: str, origin_key: str, created: float, nonce: str,
                 payload: dict[str, Any]) -> bytes:
    body = {"scheme": SCHEME, "topic": topic, "origin_key": origin_key, "created": created,
            "nonce": nonce, "payload": payload}
    return json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def make_envelope(identity: NodeIdentity, topic: str, payload: dict[str, Any],
                  hops: int) -> Envelope:
    created = round(time.time(), 6)
    nonce = secrets.token_hex(8)
    raw = signed_bytes(topic, identity.public_key_hex, created, nonce, payload)
    if len(raw) > MAX_SIGNED_BYTES:
        raise TooLarge(f"gossip payload of {len(raw)} bytes; at most {MAX_SIGNED_BYTES}")
    return Envelope(id=hashlib.sha256(raw).hexdigest(), topic=topic,
                    origin_key=identity.public_key_hex, created=created, nonce=nonce,
                    payload=payload, hops=hops, signature=identity.sign(raw).hex())


def origin_id(envelope: Envelope) -> str:
    return node_id_for(bytes.fromhex(envelope.origin_key))


def verify_envelope(envelope: Envelope, is_known: Callable[[str], bool], max_age_s: float,
                    now: float | None = None) -> None:
    """Raises Rejected unless the id matches, the signature verifies, the author is known and
    the message is neither stale nor from the future."""
    now = time.time() if now is None else now
    age = now - envelope.created
    if age > max_age_s:
        raise Rejected(f"stale: {age:.1f} s old")
    if age < -FUTURE_SKEW_S:
        raise Rejected("created in the future")
    raw = signed_bytes(envelope.topic, envelope.origin_key, envelope.created, envelope.nonce,
                       envelope.payload)
    if hashlib.sha256(raw).hexdigest() != envelope.id:
        raise Rejected("id does not match the content")
    try:
        VerifyKey(bytes.fromhex(envelope.origin_key)).verify(raw,
                                                              bytes.fromhex(envelope.signature))
    except (ValueError, NaclValueError, BadSignatureError):
        raise Rejected("bad signature") from None
    if not is_known(envelope.origin_key):
        raise Rejected("unknown author")
