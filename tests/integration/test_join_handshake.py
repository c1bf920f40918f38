"""The admin's side of the join handshake, called directly over real TCP on loopback by a node
that is no member (two real node services, no root): the join paths accept its signed requests,
every other path still refuses its key, and each kind of bad handshake is refused with its
reason. Then the same node joins with the token through its own API and is a member."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import aiohttp
import pytest
from nacl.signing import SigningKey
from settings_factory import make_settings
from waiting import until

from formation.api import join_models as jm
from formation.api import join_routes as jr
from formation.api import state_models as sm
from formation.api import state_routes as sr
from formation.api.client import ApiError, NodeClient
from formation.discovery import token as tokens
from formation.node.service import NodeService
from formation.node.state import wire
from tests.ports import free_port


@pytest.fixture
async def pair(short_tmp: Path):
    services = []
    for name in ("admin", "joiner"):
        settings = make_settings(
            short_tmp / name, name=name,
            api={"socket": str(short_tmp / f"{name}.sock"),
                 "listen": f"127.0.0.1:{free_port()}"})
        services.append(NodeService(settings))
    for service in services:
        await service.start()
    yield services
    for service in services:
        await service.stop()


def _address(service: NodeService) -> str:
    return next(a for a in service.listen_addresses() if a.startswith("tcp:"))[4:]


async def _until_served(service: NodeService) -> None:
    """The token needs the admin's TCP address, known once discovery saw the bound port."""
    await until(lambda: _address_known(service), 4, 0.02, what="the admin's TCP address")


def _address_known(service: NodeService) -> bool:
    return any(a.startswith("tcp:") for a in service.listen_addresses())


async def test_handshake_refusals_then_join(pair):
    admin, joiner = pair
    await _until_served(admin)
    local = NodeClient.unix(admin.settings.api.socket)
    await local.call(sr.state_create_network, sm.CreateNetworkRequest(name="t", cidr="10.9.0.0/24"))
    short = tokens.decode((await local.call(jr.invite_create,
                                            jm.InviteRequest(expires_s=1))).token)
    good = await local.call(jr.invite_create, jm.InviteRequest(expires_s=600))
    token = tokens.decode(good.token)
    await local.close()
    me = joiner.identity.public_key_hex
    network = bytes.fromhex(good.network)

    def hello(t: tokens.InviteToken, **changes) -> jm.JoinHandshake:
        proof = SigningKey(t.seed).sign(tokens.handshake_proof_message(network, t.token_key, me))
        fields = {"network": network.hex(), "token_key": t.token_key.hex(),
                  "proof": proof.signature.hex(), **changes}
        return jm.JoinHandshake(**fields)

    async with NodeClient.tcp(_address(admin), joiner.identity) as remote:
        # Not a member: every other route refuses the key.
        with pytest.raises(ApiError) as exc:
            await remote.call(sr.state_heads)
        assert exc.value.status == 401 and "unknown key" in str(exc.value)

        async def refused(body: jm.JoinHandshake, status: int, text: str) -> None:
            with pytest.raises(ApiError) as exc:
                await remote.call(jr.join_handshake, body)
            assert exc.value.status == status and text in str(exc.value), str(exc.value)

        await refused(hello(token, network="00" * 16), 403, "Wrong network")
        await refused(hello(token, token_key="11" * 32), 403, "Unknown invite")
        await refused(hello(token, proof="22" * 64), 403, "proof does not verify")
        other = SigningKey.generate().sign(tokens.handshake_proof_message(
            network, token.token_key, me)).signature.hex()
        await refused(hello(token, proof=other), 403, "proof does not verify")
        # The proof binds the joiner's key: one made for another node does not verify.
        stolen = SigningKey(token.seed).sign(tokens.handshake_proof_message(
            network, token.token_key, "33" * 32)).signature.hex()
        await refused(hello(token, proof=stolen), 403, "proof does not verify")
        await asyncio.sleep(max(0.0, short.expires_s - time.time()) + 1.2)
        await refused(hello(short), 403, "Token expired")
        await refused(hello(token, consume=sm.OpBatch(ops=wire.pack([b"x"]), count=1)),
                      400, "expected one invite.consume op")
        # A valid proof gets the state, but no admission.
        answer = await remote.call(jr.join_handshake, hello(token))
        assert not answer.admitted and answer.batch.count >= 3
        assert answer.invite == good.invite  # found by the token's key

    # Unsigned, the join path is refused before any handler runs.
    async with aiohttp.ClientSession() as http:
        async with http.post(f"http://{_address(admin)}{jr.join_handshake.path}",
                             json=hello(token).model_dump()) as response:
            assert response.status == 401

    async with NodeClient.unix(joiner.settings.api.socket) as client:
        result = await client.call(jr.join_token, jm.JoinTokenRequest(token=good.token))
    assert result.network == good.network and result.network_name == "t"
    async with NodeClient.tcp(_address(admin), joiner.identity) as remote:
        heads = await remote.call(sr.state_heads)  # a member now
    assert heads.network == good.network
