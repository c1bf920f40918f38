"""Account keys held by a real OpenSSH ssh-agent: found by `agent:`, by fingerprint or by
comment; their signatures are plain Ed25519 ones that verify as a key file's do (requests and
ops alike); every way of getting it wrong (no agent, a dead one, no Ed25519 key, several and
none named, a key removed after selection) is one line; and a hostile agent that answers with
another key's signature is caught before anything is sent."""

from __future__ import annotations

import asyncio
import base64
import struct
import subprocess

import pytest
from nacl.signing import VerifyKey
from ssh_agents import Agent, start_agent

from formation.api import account_models as am
from formation.api.auth import NonceCache, sign_request_async, verify_request
from formation.client_profile import (
    ProfileError,
    load_signer,
    load_signer_async,
    public_key_of,
    resolve,
)
from formation.identity import agent as agent_module
from formation.identity.agent import (
    AgentError,
    AgentSigner,
    agent_keys,
    agent_signer,
    find_agent_signer,
    ssh_fingerprint,
)
from formation.identity.keys import NodeIdentity
from formation.identity.signer import sign_in_loop
from formation.node.state.op import SIGNING_CONTEXT, build_body, decode, split_envelope
from formation.tenant_client import DraftMismatch, sign_draft_async

NODE = NodeIdentity.from_seed(bytes([9]) * 32).public_key_hex


@pytest.fixture
def agent(short_tmp, monkeypatch):
    made = start_agent(short_tmp / "agent")
    monkeypatch.setenv("SSH_AUTH_SOCK", str(made.socket))
    yield made
    made.stop()


def _fingerprint_by_ssh_keygen(agent: Agent, name: str) -> str:
    out = subprocess.run(["ssh-keygen", "-lf", str(agent.dir / f"{name}.pub")],
                         capture_output=True, text=True, check=True).stdout
    return out.split()[1]


def _one_line(exc: pytest.ExceptionInfo[BaseException]) -> str:
    text = str(exc.value)
    assert "\n" not in text and text
    return text


def test_the_agents_only_ed25519_key_signs_and_verifies_as_a_plain_signature(agent) -> None:
    public = agent.add("alice", comment="alice@laptop")
    agent.add("ops", kind="ecdsa")  # another kind beside it is not a choice to make
    signer = load_signer("agent:")
    assert isinstance(signer, AgentSigner)
    assert signer.public_key_hex == public
    assert signer.key.comment == "alice@laptop"
    assert signer.key.fingerprint == _fingerprint_by_ssh_keygen(agent, "alice")
    signature = signer.sign(b"an op body")
    VerifyKey(signer.public_key).verify(b"an op body", signature)
    assert len(signature) == 64
    assert "SHA256:" in repr(signer) and public not in repr(signer)


async def test_a_request_signed_through_the_agent_verifies_like_a_key_files(agent) -> None:
    agent.add("alice")
    signer = await load_signer_async("agent:")
    headers = await sign_request_async(signer, "POST", "/v1/x?a=1", b"{}", NODE)
    who = verify_request(headers, "POST", "/v1/x?a=1", b"{}", is_known=lambda k: True,
                         nonces=NonceCache(window_s=60), node_key=NODE)
    assert who == signer.public_key_hex
    # inside a loop the sync path refuses loudly instead of blocking it
    with pytest.raises(RuntimeError):
        signer.sign(b"x")
    assert len(await sign_in_loop(signer, b"x")) == 64


def test_several_keys_are_named_by_fingerprint_or_comment(agent) -> None:
    alice = agent.add("alice", comment="alice@laptop")
    ci = agent.add("ci", comment="ci-runner")
    with pytest.raises(AgentError) as several:
        agent_signer("agent:")
    line = _one_line(several)
    assert "2 Ed25519 keys" in line and "alice@laptop" in line and "ci-runner" in line
    assert agent_signer("agent:ci-runner").public_key_hex == ci
    by_print = agent_signer("agent:" + _fingerprint_by_ssh_keygen(agent, "alice"))
    assert by_print.public_key_hex == alice
    with pytest.raises(AgentError) as unknown:
        agent_signer("agent:bob")
    assert "no Ed25519 key of the ssh-agent" in _one_line(unknown)


def test_an_agent_without_an_ed25519_key_is_one_line(agent) -> None:
    with pytest.raises(AgentError) as empty:
        agent_signer("agent:")
    assert "holds no Ed25519 key" in _one_line(empty)
    agent.add("ops", kind="ecdsa")
    with pytest.raises(AgentError) as other_kind:
        agent_signer("agent:")
    assert "holds no Ed25519 key" in _one_line(other_kind)


def test_no_agent_or_a_dead_one_is_one_line(agent, monkeypatch) -> None:
    monkeypatch.delenv("SSH_AUTH_SOCK")
    with pytest.raises(AgentError) as unset:
        load_signer("agent:")
    assert "SSH_AUTH_SOCK is not set" in _one_line(unset)
    monkeypatch.setenv("SSH_AUTH_SOCK", str(agent.socket))
    agent.add("alice")
    signer = agent_signer("agent:")
    agent.stop()
    with pytest.raises(AgentError) as dead:
        signer.sign(b"x")
    assert "none answers at" in _one_line(dead)
    with pytest.raises(AgentError):
        agent_signer("agent:")


def test_a_key_removed_from_the_agent_after_selection_is_refused_in_one_line(agent) -> None:
    agent.add("alice")
    signer = agent_signer("agent:")
    agent.ssh_add("-D")
    with pytest.raises(AgentError) as refused:
        signer.sign(b"x")
    assert "refused to sign" in _one_line(refused)


def test_profiles_and_flags_keep_an_agent_spec_as_given(agent, short_tmp) -> None:
    config = short_tmp / "client.yaml"
    config.write_text("default: lab\nprofiles:\n  lab: {node: '127.0.0.1:1', "
                      "key: 'agent:SHA256:ab/cd+ef'}\n")
    assert resolve(None, None, None, config).key == "agent:SHA256:ab/cd+ef"
    assert resolve("h:1", "agent:", None, config).key == "agent:"
    assert resolve("h:1", "~/k", None, config).key.endswith("/k")
    # where a public key goes (account create --key, grant): the agent key's public half
    public = agent.add("alice")
    assert public_key_of("agent:") == public
    with pytest.raises(ProfileError):
        load_signer(str(short_tmp / "missing.key"))


def _string(data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + data


def _signature(alg: bytes, sig: bytes) -> bytes:
    return bytes([14]) + _string(_string(alg) + _string(sig))


LISTED, SIGNING = NodeIdentity.generate(), NodeIdentity.generate()
BLOB = struct.pack(">I", 11) + b"ssh-ed25519" + struct.pack(">I", 32) + LISTED.public_key
HOSTILE_SIGNS = {  # what a hostile agent answers a SIGN_REQUEST for `data`, and what is said
    "another key": (lambda data: _signature(b"ssh-ed25519", SIGNING.sign(data)),
                    "does not verify"),
    "truncated": (lambda data: bytes([14]) + _string(_string(b"ssh-ed25519")
                                                     + struct.pack(">I", 64) + b"x" * 10),
                  "malformed key or signature (truncated)"),
    "another algorithm": (lambda data: _signature(b"rsa-sha2-256", b"s" * 64),
                          "other than an ssh-ed25519 signature"),
    "failure": (lambda data: bytes([5]), "refused to sign"),
    "nonsense type": (lambda data: bytes([99]), "refused to sign"),
}


async def _hostile_agent(path, identities: bytes, sign) -> asyncio.AbstractServer:
    """Whatever listens at SSH_AUTH_SOCK: an agent that answers as it likes."""

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while True:
            try:
                size = struct.unpack(">I", await reader.readexactly(4))[0]
            except asyncio.IncompleteReadError:
                break
            request = await reader.readexactly(size)
            if request[0] == 11:  # REQUEST_IDENTITIES
                answer = identities
            else:  # SIGN_REQUEST: string key, string data, uint32 flags
                key_len = struct.unpack_from(">I", request, 1)[0]
                data_at = 1 + 4 + key_len
                data_len = struct.unpack_from(">I", request, data_at)[0]
                answer = sign(request[data_at + 4 : data_at + 4 + data_len])
            writer.write(struct.pack(">I", len(answer)) + answer)
            await writer.drain()
        writer.close()

    return await asyncio.start_unix_server(serve, path=str(path))


@pytest.mark.parametrize("how", sorted(HOSTILE_SIGNS))
async def test_a_hostile_agents_signature_is_refused_in_one_line(short_tmp, how) -> None:
    """An agent that lists one key and answers a sign request with another key's signature,
    a truncated one, another algorithm's or nonsense: caught here, so nothing unverifiable is
    ever sent to a node."""
    sign, said = HOSTILE_SIGNS[how]
    identities = bytes([12]) + struct.pack(">I", 1) + _string(BLOB) + _string(b"evil\xff")
    path = short_tmp / "hostile.sock"
    async with await _hostile_agent(path, identities, sign):
        [key] = await agent_keys(str(path))
        assert key.public_key == LISTED.public_key and key.comment == "evil\ufffd"
        assert key.fingerprint == ssh_fingerprint(BLOB)
        signer = await find_agent_signer("agent:", str(path))
        with pytest.raises(AgentError) as caught:
            await signer.sign_async(b"an op body")
        assert said in _one_line(caught)


async def test_an_agent_that_never_answers_is_one_line_not_a_hang(short_tmp,
                                                                 monkeypatch) -> None:
    monkeypatch.setattr(agent_module, "LIST_TIMEOUT_S", 0.3)
    monkeypatch.setattr(agent_module, "SIGN_TIMEOUT_S", 0.3)
    path = short_tmp / "silent.sock"
    silent = asyncio.Event()

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await silent.wait()  # reads nothing, answers nothing
        writer.close()

    server = await asyncio.start_unix_server(serve, path=str(path))
    async with server:
        with pytest.raises(AgentError) as listing:
            await find_agent_signer("agent:", str(path))
        assert "did not answer within 0.3 s" in _one_line(listing)
        key = AgentSigner(agent_module.AgentKey(LISTED.public_key, "x", BLOB), str(path))
        with pytest.raises(AgentError) as signing:
            await key.sign_async(b"x")
        assert "did not answer within 0.3 s" in _one_line(signing)
        silent.set()


@pytest.mark.parametrize("identities", [
    bytes([12]) + struct.pack(">I", 1) + struct.pack(">I", 400) + b"short",  # truncated list
    bytes([12]) + struct.pack(">I", 1) + _string(BLOB[:-5]) + _string(b"cut"),  # short key
    bytes([99]),  # not an identities answer
], ids=["truncated list", "short key", "other answer"])
async def test_a_hostile_agents_key_list_is_refused_in_one_line(short_tmp, identities) -> None:
    path = short_tmp / "hostile.sock"
    async with await _hostile_agent(path, identities, HOSTILE_SIGNS["failure"][0]):
        with pytest.raises(AgentError) as caught:
            await find_agent_signer("agent:", str(path))
        assert "ssh-agent" in _one_line(caught)


def test_the_public_key_matches_the_openssh_public_key_file(agent) -> None:
    public = agent.add("alice")
    line = (agent.dir / "alice.pub").read_text().split()
    assert ssh_fingerprint(base64.b64decode(line[1])) == _fingerprint_by_ssh_keygen(agent,
                                                                                     "alice")
    assert agent_signer("agent:").public_key_hex == public


def _draft(author: bytes, kind: str, payload: dict) -> am.Draft:
    body = build_body(bytes(16), author, 1, None, [], (1, 0), kind, payload)
    return am.Draft(body=base64.b64encode(body).decode(), network="00" * 16,
                    author=author.hex(), seq=1, parents=[], hlc=[1, 0], kind=kind,
                    payload=payload)


async def test_a_draft_is_signed_in_the_agent_only_when_it_says_what_was_asked(agent) -> None:
    """The op signed through the agent decodes as authored by the agent's key; a relaying node
    that drafts another payload, or the op for another author, gets nothing signed."""
    agent.add("alice")
    signer = await load_signer_async("agent:")
    asked = {"name": "web", "account": "alice"}
    signed = await sign_draft_async(_draft(signer.public_key, "instance.create", asked), signer,
                                    "instance.create", asked)
    op = decode(base64.b64decode(signed))
    assert op.author == signer.public_key and op.payload == asked
    body, signature = split_envelope(base64.b64decode(signed))
    VerifyKey(signer.public_key).verify(SIGNING_CONTEXT + body, signature)
    swapped = _draft(signer.public_key, "instance.create", {**asked, "account": "mallory"})
    with pytest.raises(DraftMismatch):
        await sign_draft_async(swapped, signer, "instance.create", asked)
    other = _draft(NodeIdentity.generate().public_key, "instance.create", asked)
    with pytest.raises(DraftMismatch):
        await sign_draft_async(other, signer, "instance.create", asked)


async def test_a_key_file_signs_inline_through_the_same_path() -> None:
    ident = NodeIdentity.from_seed(bytes([5]) * 32)
    assert await sign_in_loop(ident, b"x") == ident.sign(b"x")
