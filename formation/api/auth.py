"""Request signatures between nodes. The client signs; the server verifies. One canonical string:

    formation-request-v2 \n METHOD \n PATH?QUERY \n sha256(body) hex \n TIMESTAMP \n NONCE \n KEY
    \n NODE

NODE is the public key of the node the request is for: a request signed for node A is refused
by node B, so A cannot replay what it received to another node within the freshness window.
Headers carry the key, timestamp, nonce, node and signature. See docs/protocol.md."""

from __future__ import annotations

import hashlib
import re
import secrets
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from nacl.exceptions import BadSignatureError
from nacl.exceptions import ValueError as NaclValueError
from nacl.signing import VerifyKey

from formation.identity.signer import Signer, sign_in_loop

SCHEME = "formation-request-v2"
H_KEY = "X-Formation-Key"
H_TIMESTAMP = "X-Formation-Timestamp"
H_NONCE = "X-Formation-Nonce"
H_SIGNATURE = "X-Formation-Signature"
H_NODE = "X-Formation-Node"  # request: the node it is signed for; response: the answering node
NONCE_BYTES = 16
_TIMESTAMP = re.compile(r"[0-9]{1,12}(\.[0-9]{1,9})?")  # seconds since the epoch, decimal
_NONCE = re.compile(f"[0-9a-f]{{{2 * NONCE_BYTES}}}")
_NODE = re.compile("[0-9a-f]{64}")


def canonical(method: str, target: str, body: bytes, timestamp: str, nonce: str, key: str,
              node: str) -> bytes:
    body_hash = hashlib.sha256(body).hexdigest()
    parts = (SCHEME, method.upper(), target, body_hash, timestamp, nonce, key, node)
    return "\n".join(parts).encode()


def sign_request(identity: Signer, method: str, target: str, body: bytes,
                 node: str) -> dict[str, str]:
    """Headers to add to a request for `target` (path and query, exactly as sent) to the node
    whose public key (hex) is `node`."""
    headers, message = _unsigned(identity, method, target, body, node)
    return headers | {H_SIGNATURE: identity.sign(message).hex()}


async def sign_request_async(identity: Signer, method: str, target: str, body: bytes,
                             node: str) -> dict[str, str]:
    """`sign_request` inside an event loop: a key held by an ssh-agent is asked without
    blocking the loop."""
    headers, message = _unsigned(identity, method, target, body, node)
    return headers | {H_SIGNATURE: (await sign_in_loop(identity, message)).hex()}


def _unsigned(identity: Signer, method: str, target: str, body: bytes,
              node: str) -> tuple[dict[str, str], bytes]:
    timestamp = f"{time.time():.3f}"
    nonce = secrets.token_hex(NONCE_BYTES)
    key = identity.public_key_hex
    headers = {H_KEY: key, H_TIMESTAMP: timestamp, H_NONCE: nonce, H_NODE: node}
    return headers, canonical(method, target, body, timestamp, nonce, key, node)


class AuthFailure(Exception):
    """Why a request was refused; the message goes into the 401 body."""


@dataclass
class NonceCache:
    """Remembers nonces for as long as their timestamps are acceptable, and no more: a bounded
    memory of what was seen, so a replay inside the window is caught."""

    window_s: float
    max_entries: int = 200_000

    def __post_init__(self) -> None:
        self._seen: OrderedDict[tuple[str, str], float] = OrderedDict()

    def check_and_add(self, key: str, nonce: str, now: float) -> None:
        while self._seen:
            oldest, stamp = next(iter(self._seen.items()))
            if stamp >= now - 2 * self.window_s and len(self._seen) < self.max_entries:
                break
            self._seen.pop(oldest)
        if (key, nonce) in self._seen:
            raise AuthFailure("replayed request: this nonce was already used")
        self._seen[(key, nonce)] = now


def verify_request(
    headers: Mapping[str, str],
    method: str,
    target: str,
    body: bytes,
    *,
    is_known: Callable[[str], bool],
    nonces: NonceCache,
    node_key: str,
    now: float | None = None,
) -> str:
    """Returns the caller's public key (hex) or raises AuthFailure with the reason. `node_key`
    is this node's public key (hex): the request must be signed for it."""
    get = headers.get
    key, stamp, nonce, sig = (get(h) for h in (H_KEY, H_TIMESTAMP, H_NONCE, H_SIGNATURE))
    node = get(H_NODE)
    if not (key and stamp and nonce and sig):
        raise AuthFailure("unsigned request: signature headers missing")
    if not node or not _NODE.fullmatch(node):
        raise AuthFailure(f"no target node: the request must name the node it is for ({H_NODE})")
    if node != node_key:
        raise AuthFailure("wrong node: the request was signed for another node")
    now = time.time() if now is None else now
    if not _TIMESTAMP.fullmatch(stamp):  # also keeps out "nan", which no window comparison stops
        raise AuthFailure("malformed timestamp")
    age = now - float(stamp)
    if abs(age) > nonces.window_s:
        when = f"{age:.0f} s in the past" if age > 0 else f"{-age:.0f} s in the future"
        raise AuthFailure(f"stale request: timestamp {when}, outside the accepted "
                          f"{nonces.window_s:g} s (check the clocks)")
    if not _NONCE.fullmatch(nonce):
        raise AuthFailure("malformed nonce")
    try:
        verify_key = VerifyKey(bytes.fromhex(key))
        verify_key.verify(canonical(method, target, body, stamp, nonce, key, node),
                          bytes.fromhex(sig))
    except (ValueError, NaclValueError, BadSignatureError):
        raise AuthFailure("bad signature") from None
    if not is_known(key):
        raise AuthFailure("unknown key: not a member of this node's network")
    nonces.check_and_add(key, nonce, now)
    return key
