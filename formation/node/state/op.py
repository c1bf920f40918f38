"""A state operation: its canonical binary encoding, signature, id and size limits.

Wire form (docs/protocol.md, "State operations"): an envelope, the canonical CBOR array
`[body, signature]`, where `body` is itself the canonical CBOR encoding of

    [version, network, author, seq, prev, parents, hlc, kind, payload]

The author signs `SIGNING_CONTEXT || body` with Ed25519; the op id is BLAKE2b-256 of the
envelope bytes. Encodings are checked to be canonical on decode, so one op has exactly one byte
form and therefore one id."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import cbor2

from formation.errors import OpError as OpError  # re-exported: node/state imports it from here

VERSION = 1
SIGNING_CONTEXT = b"formation-state-op-v1\x00"
ID_BYTES = 32
KEY_BYTES = 32
NETWORK_BYTES = 16
SIG_BYTES = 64

MAX_OP_BYTES = 16 * 1024
MAX_PAYLOAD_BYTES = 12 * 1024
MAX_PARENTS = 32
MAX_KIND_CHARS = 32
MAX_STRING_BYTES = 2048
MAX_LIST_ITEMS = 128
MAX_DEPTH = 6
MAX_SEQ = 2**53
MAX_HLC_MS = 2**48
MAX_HLC_COUNTER = 2**32


def op_id_of(envelope: bytes) -> bytes:
    return hashlib.blake2b(envelope, digest_size=ID_BYTES).digest()


def encode(value: Any) -> bytes:
    return cbor2.dumps(value, canonical=True)


@dataclass(slots=True, eq=False)
class Op:
    """A decoded, structurally valid op. `raw` is the envelope as received; `id` its hash.
    Treat as immutable (not frozen only because frozen dataclasses are slow to build)."""

    id: bytes
    raw: bytes
    body: bytes
    signature: bytes
    network: bytes
    author: bytes
    seq: int
    prev: bytes | None
    parents: tuple[bytes, ...]
    hlc: tuple[int, int]
    kind: str
    payload: dict[str, Any]

    @property
    def deps(self) -> tuple[bytes, ...]:
        """Every op that must be present before this one: parents and the author's previous."""
        if self.prev is None or self.prev in self.parents:
            return self.parents
        return (*self.parents, self.prev)

    @property
    def order_key(self) -> tuple[int, int, bytes]:
        """Last-writer-wins order: HLC, then op id."""
        return (self.hlc[0], self.hlc[1], self.id)

    def summary(self) -> dict[str, Any]:
        return {
            "id": self.id.hex(), "author": self.author.hex(), "seq": self.seq,
            "prev": self.prev.hex() if self.prev else None,
            "parents": [p.hex() for p in self.parents], "hlc": list(self.hlc),
            "kind": self.kind, "payload": _jsonable(self.payload),
        }


def _jsonable(value: Any) -> Any:
    if isinstance(value, bytes):
        return value.hex()
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_jsonable(v) for v in value]
    return value


def build_body(network: bytes, author: bytes, seq: int, prev: bytes | None, parents: list[bytes],
               hlc: tuple[int, int], kind: str, payload: dict[str, Any]) -> bytes:
    return encode([VERSION, network, author, seq, prev, sorted(set(parents)), list(hlc), kind,
                   payload])


def sign_body(body: bytes, sign: Callable[[bytes], bytes]) -> bytes:
    """`sign` is NodeIdentity.sign (or a SigningKey's). Returns the envelope bytes."""
    return encode([body, sign(SIGNING_CONTEXT + body)])


def _check_value(value: Any, depth: int, where: str) -> None:
    if depth > MAX_DEPTH:
        raise OpError("oversized", f"{where}: nested deeper than {MAX_DEPTH}")
    if isinstance(value, str | bytes):
        size = len(value.encode()) if isinstance(value, str) else len(value)
        if size > MAX_STRING_BYTES:
            raise OpError("oversized", f"{where}: {size} bytes, at most {MAX_STRING_BYTES}")
    elif isinstance(value, list):
        if len(value) > MAX_LIST_ITEMS:
            raise OpError("oversized", f"{where}: {len(value)} items, at most {MAX_LIST_ITEMS}")
        for i, item in enumerate(value):
            _check_value(item, depth + 1, f"{where}[{i}]")
    elif isinstance(value, dict):
        if len(value) > MAX_LIST_ITEMS:
            raise OpError("oversized", f"{where}: {len(value)} keys, at most {MAX_LIST_ITEMS}")
        keys = list(value)
        if len(keys) > 1 and keys != sorted(keys, key=_canonical_key):
            raise OpError("malformed", f"{where}: map keys not in canonical order")
        for key, item in value.items():
            if not isinstance(key, str):
                raise OpError("malformed", f"{where}: map keys must be text")
            _check_value(key, depth + 1, f"{where}.<key>")
            _check_value(item, depth + 1, f"{where}.{key}")
    elif isinstance(value, bool) or value is None:
        return
    elif isinstance(value, int):
        if not -(2**63) <= value < 2**64:
            raise OpError("malformed", f"{where}: integer out of 64-bit range")
    else:
        raise OpError("malformed", f"{where}: {type(value).__name__} is not allowed "
                      "(text, bytes, integers, booleans, null, arrays, maps)")


def _fits(value: Any, depth: int) -> bool:
    """What _check_value checks, without building field paths: the common case, all fine."""
    if depth > MAX_DEPTH:
        return False
    kind = type(value)
    if kind is str:
        return _short_text(value)
    if kind is int:
        number: int = value
        return -(2**63) <= number < 2**64
    if kind is bytes:
        return len(value) <= MAX_STRING_BYTES
    if value is None or kind is bool:
        return True
    if kind is dict:
        if len(value) > MAX_LIST_ITEMS:
            return False
        last = None
        for key, item in value.items():
            if type(key) is not str or not _short_text(key):
                return False
            order = _canonical_key(key)
            if last is not None and order < last:
                return False
            last = order
            if not _fits(item, depth + 1):
                return False
        return True
    if kind is list:
        return len(value) <= MAX_LIST_ITEMS and all(_fits(item, depth + 1) for item in value)
    return False


def _short_text(text: str) -> bool:
    return len(text) <= MAX_STRING_BYTES // 4 or len(text.encode()) <= MAX_STRING_BYTES


def _canonical_key(key: Any) -> tuple[int, bytes]:
    """RFC 8949 length-first order of text keys (what cbor2's canonical mode produces)."""
    data = key.encode() if isinstance(key, str) else b""
    return (len(data), data)


def _loads_canonical(data: bytes, what: str) -> Any:
    try:
        value = cbor2.loads(data)
    except Exception as exc:  # cbor2 raises several types for garbage
        raise OpError("malformed", f"{what}: not CBOR ({type(exc).__name__})") from None
    # Decoding keeps map order, and plain encoding is minimal (shortest heads, definite
    # lengths), so this round trip plus the key-order check in _check_value is the canonical
    # check, at half the cost of re-encoding in canonical mode. Some decodable input cannot be
    # encoded again (a shared reference that makes a cycle, say): that is malformed too.
    try:
        again = cbor2.dumps(value)
    except Exception as exc:
        raise OpError("malformed", f"{what}: not canonical CBOR ({type(exc).__name__} when "
                      "encoding it again)") from None
    if again != data:
        raise OpError("malformed", f"{what}: not in canonical CBOR form")
    return value


def _bytes_field(value: Any, size: int, name: str) -> bytes:
    if not isinstance(value, bytes) or len(value) != size:
        raise OpError("malformed", f"{name}: expected {size} bytes")
    return value


def split_envelope(raw: bytes) -> tuple[bytes, bytes]:
    """The envelope has one canonical shape, parsed by hand (it is on the hot path):
    0x82, a byte string (the body; minimal length header), 0x58 0x40 and 64 signature bytes."""
    if len(raw) < 3 + SIG_BYTES or raw[0] != 0x82:
        raise OpError("malformed", "envelope: expected the CBOR array [body, signature]")
    head = raw[1]
    if 0x40 <= head < 0x58:
        size, start = head - 0x40, 2
    elif head == 0x58:
        size, start = raw[2], 3
        if size < 24:
            raise OpError("malformed", "envelope: not in canonical CBOR form")
    elif head == 0x59:
        size, start = int.from_bytes(raw[2:4], "big"), 4
        if size < 256:
            raise OpError("malformed", "envelope: not in canonical CBOR form")
    else:
        raise OpError("malformed", "envelope.body: expected a byte string")
    end = start + size
    if raw[end:end + 2] != b"\x58\x40" or len(raw) != end + 2 + SIG_BYTES:
        raise OpError("malformed", "envelope.signature: expected 64 bytes, then nothing")
    return raw[start:end], raw[end + 2:]


def decode(raw: bytes) -> Op:
    """Parses and checks structure and limits. Does not verify the signature (see verify).
    Raises OpError and nothing else, whatever the bytes: a hostile op is refused alone."""
    try:
        return _decode(raw)
    except OpError:
        raise
    except Exception as exc:  # a decoded value no check foresaw; never let it escape
        raise OpError("malformed", f"op: cannot be read ({type(exc).__name__})") from None


def _decode(raw: bytes) -> Op:
    if len(raw) > MAX_OP_BYTES:
        raise OpError("oversized", f"op: {len(raw)} bytes, at most {MAX_OP_BYTES}")
    body, signature = split_envelope(raw)
    fields = _loads_canonical(body, "body")
    if not isinstance(fields, list) or len(fields) != 9:
        raise OpError("malformed", "body: expected an array of 9 fields")
    version, network, author, seq, prev, parents, hlc, kind, payload = fields
    if version != VERSION:
        raise OpError("malformed", f"version: expected {VERSION}, this replica reads no other")
    _bytes_field(network, NETWORK_BYTES, "network")
    _bytes_field(author, KEY_BYTES, "author")
    if not isinstance(seq, int) or isinstance(seq, bool) or not 1 <= seq < MAX_SEQ:
        raise OpError("malformed", "seq: expected an integer from 1")
    if (prev is None) != (seq == 1):
        raise OpError("malformed", "prev: must be null exactly when seq is 1")
    if prev is not None:
        _bytes_field(prev, ID_BYTES, "prev")
    if not isinstance(parents, list) or len(parents) > MAX_PARENTS:
        raise OpError("oversized" if isinstance(parents, list) else "malformed",
                      f"parents: expected a list of at most {MAX_PARENTS} op ids")
    for parent in parents:
        _bytes_field(parent, ID_BYTES, "parents[]")
    if parents != sorted(set(parents)):
        raise OpError("malformed", "parents: must be sorted and unique")
    if (not isinstance(hlc, list) or len(hlc) != 2
            or not all(isinstance(x, int) and not isinstance(x, bool) for x in hlc)
            or not 0 <= hlc[0] < MAX_HLC_MS or not 0 <= hlc[1] < MAX_HLC_COUNTER):
        raise OpError("malformed", "hlc: expected [milliseconds, counter]")
    if not isinstance(kind, str) or not 0 < len(kind) <= MAX_KIND_CHARS:
        raise OpError("malformed", f"kind: expected text of 1 to {MAX_KIND_CHARS} characters")
    if not isinstance(payload, dict):
        raise OpError("malformed", "payload: expected a map")
    payload_size = len(body) - 200  # cheap upper bound before walking the payload
    if payload_size > MAX_PAYLOAD_BYTES and len(encode(payload)) > MAX_PAYLOAD_BYTES:
        raise OpError("oversized", f"payload: more than {MAX_PAYLOAD_BYTES} bytes")
    if not _fits(payload, 1):
        _check_value(payload, 1, "payload")  # raises, naming the field
    return Op(op_id_of(raw), raw, body, signature, network, author, seq, prev,
              tuple(parents), (hlc[0], hlc[1]), kind, payload)
