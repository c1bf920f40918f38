"""Relaying an op signed by an account key: the node drafts the body, this side checks it says
exactly what was asked (author, kind, payload) and signs it. The secret key never leaves this
process (or the ssh-agent holding it); a node that drafted something else gets no signature,
and one that alters the signed op afterwards makes it fail every replica's signature check."""

from __future__ import annotations

import base64
from typing import Any

import cbor2

from formation.api import account_models as am
from formation.api import account_routes as ar
from formation.api.client import NodeClient
from formation.errors import FormationError
from formation.identity.signer import Signer, sign_in_loop

SIGNING_CONTEXT = b"formation-state-op-v1\x00"  # node/state/op.py: what every op's author signs


class DraftMismatch(FormationError):
    pass


def sign_draft(draft: am.Draft, identity: Signer, kind: str,
               payload: dict[str, Any]) -> str:
    """The signed envelope (base64) for a draft, after checking the draft is what was asked."""
    body = checked_body(draft, identity, kind, payload)
    return envelope(body, identity.sign(SIGNING_CONTEXT + body))


async def sign_draft_async(draft: am.Draft, identity: Signer, kind: str,
                           payload: dict[str, Any]) -> str:
    """`sign_draft` inside an event loop: an agent-held key is asked without blocking it."""
    body = checked_body(draft, identity, kind, payload)
    return envelope(body, await sign_in_loop(identity, SIGNING_CONTEXT + body))


def checked_body(draft: am.Draft, identity: Signer, kind: str,
                 payload: dict[str, Any]) -> bytes:
    """The draft's op body, once it is known to say what was asked and nothing else."""
    body = base64.b64decode(draft.body)
    fields = cbor2.loads(body)
    if not (isinstance(fields, list) and len(fields) == 9):
        raise DraftMismatch("the node's draft is not an op body; nothing was signed")
    _version, _network, author, _seq, _prev, _parents, _hlc, got_kind, got_payload = fields
    if author != identity.public_key or got_kind != kind or got_payload != payload:
        raise DraftMismatch("the node drafted another op than the one asked for; nothing was "
                            "signed")
    return body


def envelope(body: bytes, signature: bytes) -> str:
    return base64.b64encode(cbor2.dumps([body, signature], canonical=True)).decode()


async def relay(client: NodeClient, identity: Signer, kind: str,
                payload: dict[str, Any]) -> am.Relayed:
    draft = await client.call(ar.tenant_draft, am.DraftRequest(kind=kind, payload=payload))
    signed = await sign_draft_async(draft, identity, kind, payload)
    return await client.call(ar.tenant_submit, am.SignedOp(op=signed))
