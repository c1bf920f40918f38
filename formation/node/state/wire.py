"""Ops in transit between nodes: a canonical CBOR array of envelopes, zlib-compressed, base64 in
the JSON body. Signatures and hashes do not compress, but the repeated author keys, network ids
and parent links do, which about pays for base64."""

from __future__ import annotations

import base64
import zlib

import cbor2

from formation.node.state.op import MAX_OP_BYTES, Op, decode

MAX_BATCH_OPS = 5000
MAX_BATCH_RAW_BYTES = 16 * 1024 * 1024


class WireError(ValueError):
    pass


def pack(raws: list[bytes]) -> str:
    return base64.b64encode(zlib.compress(cbor2.dumps(raws), 6)).decode()


def unpack(text: str) -> list[bytes]:
    """Bounded: a batch may not inflate beyond MAX_BATCH_RAW_BYTES (a zip bomb is refused)."""
    try:
        packed = base64.b64decode(text, validate=True)
        inflater = zlib.decompressobj()
        data = inflater.decompress(packed, MAX_BATCH_RAW_BYTES)
        if inflater.unconsumed_tail:
            raise WireError(f"ops: inflates beyond {MAX_BATCH_RAW_BYTES} bytes")
        raws = cbor2.loads(data)
    except WireError:
        raise
    except Exception as exc:
        raise WireError(f"ops: not a packed op batch ({type(exc).__name__})") from None
    if not isinstance(raws, list) or len(raws) > MAX_BATCH_OPS or not all(
            isinstance(r, bytes) and len(r) <= MAX_OP_BYTES for r in raws):
        raise WireError(f"ops: expected at most {MAX_BATCH_OPS} op envelopes")
    return raws


class OpWire:
    """Packing, unpacking and decoding together: what the join handshake is given
    (discovery/needs.py, `OpWire`), since discovery does not import the node."""

    def pack(self, raws: list[bytes]) -> str:
        return pack(raws)

    def unpack(self, text: str) -> list[bytes]:
        return unpack(text)

    def decode(self, raw: bytes) -> Op:
        return decode(raw)
