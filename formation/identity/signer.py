"""What client code needs of a key: its public half and a signature over some bytes. A key
file (NodeIdentity) and a key held by a running ssh-agent (identity/agent.py) both are one, so
requests and ops are signed the same way whichever holds the secret, and verify unchanged:
an ssh-ed25519 agent signature is the plain Ed25519 signature over the same bytes.

`sign` is synchronous because a key file signs in microseconds; code inside an event loop
signs through `sign_in_loop`, which lets a signer that asks another process (the agent) do so
without blocking the loop."""

from __future__ import annotations

from typing import Protocol, cast


class Signer(Protocol):
    @property
    def public_key(self) -> bytes: ...

    @property
    def public_key_hex(self) -> str: ...

    def sign(self, message: bytes) -> bytes: ...


class AsyncSigner(Signer, Protocol):
    """A signer whose secret lives in another process: `sign` would wait on it."""

    async def sign_async(self, message: bytes) -> bytes: ...


async def sign_in_loop(signer: Signer, message: bytes) -> bytes:
    """The signature, without blocking the running loop on another process. (A look at the
    class, not isinstance on a runtime protocol: that costs more than the signature itself, and
    every request a node sends to a peer comes through here.)"""
    if getattr(type(signer), "sign_async", None) is None:
        return signer.sign(message)
    return await cast(AsyncSigner, signer).sign_async(message)
