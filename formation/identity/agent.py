"""An account key held by a running ssh-agent: `--key agent:` (its only Ed25519 key),
`agent:SHA256:FINGERPRINT` (as `ssh-add -l` shows it) or `agent:COMMENT`.

The secret never enters this process: each signature is asked of the agent at SSH_AUTH_SOCK,
over the agent protocol (asyncssh's client). An ssh-ed25519 agent signature is the plain
Ed25519 signature over the bytes given, so requests and ops signed this way verify exactly as
those signed with a key file. Each signature is checked here against the public key before use:
an agent that answered with another key's signature would otherwise make every node refuse the
request with a less useful error.

Each call opens its own short connection to the agent, so a signer outlives event loops (the
CLI resolves the key before its command's loop starts) and needs no lock."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import os
import struct
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, TypeVar

from nacl.exceptions import BadSignatureError
from nacl.signing import VerifyKey

from formation.errors import FormationError

if TYPE_CHECKING:
    from asyncssh import SSHAgentClient

PREFIX = "agent:"
ED25519 = b"ssh-ed25519"
LIST_TIMEOUT_S = 10.0  # listing keys needs no person: an agent silent this long is stuck
SIGN_TIMEOUT_S = 120.0  # a signature may wait for a person to confirm it (ssh-add -c)
T = TypeVar("T")


class AgentError(FormationError):
    pass


def is_agent_spec(spec: str) -> bool:
    return spec.startswith(PREFIX)


def ssh_fingerprint(blob: bytes) -> str:
    """OpenSSH's form (`ssh-add -l`, `ssh-keygen -lf`): SHA256 of the key blob, base64, no
    padding."""
    return "SHA256:" + base64.b64encode(hashlib.sha256(blob).digest()).decode().rstrip("=")


@dataclass(frozen=True)
class AgentKey:
    """One Ed25519 key the agent holds: its public half, as the agent names it."""

    public_key: bytes
    comment: str
    blob: bytes

    @property
    def fingerprint(self) -> str:
        return ssh_fingerprint(self.blob)


@dataclass(frozen=True, repr=False)
class AgentSigner:
    """Signs with a key held by the ssh-agent at `socket`. Satisfies identity.signer.Signer
    (and AsyncSigner: inside an event loop it asks the agent without blocking)."""

    key: AgentKey
    socket: str

    @property
    def public_key(self) -> bytes:
        return self.key.public_key

    @property
    def public_key_hex(self) -> str:
        return self.key.public_key.hex()

    async def sign_async(self, message: bytes) -> bytes:
        async def ask(agent: SSHAgentClient) -> bytes:
            return await agent.sign(self.key.blob, message)

        try:
            answer = await _with_agent(self.socket, ask, SIGN_TIMEOUT_S)
        except AgentError:
            raise
        except ValueError as exc:  # SSH_AGENT_FAILURE, or an answer that is no SIGN_RESPONSE
            raise AgentError(f"the ssh-agent refused to sign with {self.key.fingerprint} ({exc}; "
                             "was the key removed, or a confirmation declined?)") from None
        signature = _ed25519_signature(answer)
        try:
            VerifyKey(self.key.public_key).verify(message, signature)
        except BadSignatureError:
            raise AgentError(f"the ssh-agent answered a signature that does not verify for "
                             f"{self.key.fingerprint}; nothing was sent") from None
        return signature

    def sign(self, message: bytes) -> bytes:
        """For code outside an event loop only: inside one, use sign_async (signer.sign_in_loop).
        """
        _no_running_loop("AgentSigner.sign")
        return asyncio.run(self.sign_async(message))

    def __repr__(self) -> str:
        return f"AgentSigner({self.key.fingerprint} {self.key.comment!r})"

    __str__ = __repr__


async def agent_keys(socket: str | None = None) -> list[AgentKey]:
    """The Ed25519 keys of the agent (other kinds are skipped: they cannot sign ops)."""
    where = _socket(socket)

    async def ask(agent: SSHAgentClient) -> list[AgentKey]:
        found: list[AgentKey] = []
        try:
            pairs = await agent.get_keys()
        except ValueError as exc:  # a malformed or unexpected answer (PacketDecodeError too)
            raise AgentError(f"the ssh-agent at {where} answered no readable key list ({exc})"
                             ) from None
        for pair in pairs:
            if pair.algorithm != ED25519:
                continue
            public = _ed25519_public(pair.public_data)
            comment = (pair.get_comment_bytes() or b"").decode(errors="replace")
            found.append(AgentKey(public, comment, pair.public_data))
        return found

    return await _with_agent(where, ask, LIST_TIMEOUT_S)


async def find_agent_signer(spec: str, socket: str | None = None) -> AgentSigner:
    """The signer for `agent:`, `agent:SHA256:...` or `agent:COMMENT`; one line if none or
    several fit."""
    where = _socket(socket)
    name = spec.removeprefix(PREFIX)
    keys = await agent_keys(where)
    if not keys:
        raise AgentError(f"--key {spec}: the ssh-agent holds no Ed25519 key (add one: "
                         "ssh-keygen -t ed25519, then ssh-add)")
    fit = keys if not name else [k for k in keys if name in (k.fingerprint, k.comment)]
    if not fit:
        raise AgentError(f"--key {spec}: no Ed25519 key of the ssh-agent has that fingerprint "
                         f"or comment (it holds {_names(keys)})")
    if len(fit) > 1:
        raise AgentError(f"--key {spec}: the ssh-agent holds {len(fit)} Ed25519 keys "
                         f"({_names(fit)}); name one: agent:SHA256:... or agent:COMMENT")
    return AgentSigner(fit[0], where)


def agent_signer(spec: str, socket: str | None = None) -> AgentSigner:
    """`find_agent_signer` for code outside an event loop (the CLI, before its command runs)."""
    _no_running_loop("agent_signer")
    return asyncio.run(find_agent_signer(spec, socket))


def _no_running_loop(what: str) -> None:
    """Waiting on the agent inside a loop would stall it: a programming error, said loudly."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return
    raise RuntimeError(f"{what} called inside an event loop; await its async form instead")


def _names(keys: list[AgentKey]) -> str:
    return ", ".join(f"{k.fingerprint} {k.comment}".strip() for k in keys)


def _socket(given: str | None) -> str:
    where = given or os.environ.get("SSH_AUTH_SOCK", "")
    if not where:
        raise AgentError("--key agent: expected a running ssh-agent, but SSH_AUTH_SOCK is not "
                         "set (start one: eval $(ssh-agent), then ssh-add your Ed25519 key)")
    return where


async def _with_agent(where: str, work: Callable[[SSHAgentClient], Awaitable[T]],
                      timeout_s: float) -> T:
    import asyncssh

    agent = asyncssh.SSHAgentClient(where)
    try:
        async with asyncio.timeout(timeout_s):
            await agent.connect()
            return await work(agent)
    except TimeoutError:
        raise AgentError(f"--key agent: the ssh-agent at {where} did not answer within "
                         f"{timeout_s:g} s") from None
    except OSError as exc:
        raise AgentError(f"--key agent: expected a running ssh-agent, but none answers at "
                         f"{where} ({exc.strerror or type(exc).__name__}); is SSH_AUTH_SOCK "
                         "stale?") from None
    finally:
        agent.close()
        await agent.wait_closed()


def _strings(data: bytes) -> list[bytes]:
    """The SSH wire form: each field a 4-byte big-endian length then the bytes."""
    out: list[bytes] = []
    at = 0
    while at < len(data):
        if at + 4 > len(data):
            raise AgentError("the ssh-agent answered a malformed key or signature (truncated)")
        (size,) = struct.unpack_from(">I", data, at)
        at += 4
        if at + size > len(data):
            raise AgentError("the ssh-agent answered a malformed key or signature (truncated)")
        out.append(data[at : at + size])
        at += size
    return out


def _ed25519_public(blob: bytes) -> bytes:
    fields = _strings(blob)
    if len(fields) != 2 or fields[0] != ED25519 or len(fields[1]) != 32:
        raise AgentError("the ssh-agent listed a malformed ssh-ed25519 key")
    return fields[1]


def _ed25519_signature(answer: bytes) -> bytes:
    fields = _strings(answer)
    if len(fields) != 2 or fields[0] != ED25519 or len(fields[1]) != 64:
        raise AgentError("the ssh-agent answered something other than an ssh-ed25519 signature")
    return fields[1]
