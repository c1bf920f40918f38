"""The join door against outsiders, over real TCP on loopback (a real admin node service, signed
requests from throwaway keys, several source addresses): pending joins are capped per address
and in total, expire, and survive the admin's restart; failed handshakes from one address are
answered 429 with Retry-After."""

from __future__ import annotations

import json
from pathlib import Path

import aiohttp
from settings_factory import make_settings

from formation.api import join_models as jm
from formation.api import join_routes as jr
from formation.api import state_models as sm
from formation.api import state_routes as sr
from formation.api.auth import sign_request
from formation.api.client import NodeClient
from formation.config.settings import NodeSettings
from formation.identity import NodeIdentity
from formation.node.service import NodeService
from tests.waiting import until


def admin_settings(base: Path, **api) -> NodeSettings:
    return make_settings(base, name="admin", api=api, discovery={"mdns": False})


async def founded(settings: NodeSettings) -> NodeService:
    service = NodeService(settings)
    await service.start()
    async with NodeClient.unix(settings.api.socket) as local:
        await local.call(sr.state_create_network,
                         sm.CreateNetworkRequest(name="t", cidr="10.9.0.0/24"))
    return service


async def restarted(settings: NodeSettings) -> NodeService:
    service = NodeService(settings)
    await service.start()
    return service


def tcp_of(service: NodeService) -> str:
    return next(a for a in service.listen_addresses() if a.startswith("tcp:"))[4:]


async def post(service: NodeService, path: str, body: bytes, source: str = "127.0.0.1",
               identity: NodeIdentity | None = None) -> tuple[int, dict, dict]:
    """A signed POST from `source` by `identity` (a new throwaway key by default)."""
    identity = identity or NodeIdentity.generate()
    headers = {"Content-Type": "application/json",
               **sign_request(identity, "POST", path, body, service.identity.public_key_hex)}
    connector = aiohttp.TCPConnector(local_addr=(source, 0))
    async with aiohttp.ClientSession(connector=connector) as session, session.post(
            f"http://{tcp_of(service)}{path}", data=body, headers=headers) as resp:
        return resp.status, dict(resp.headers), json.loads(await resp.read())


async def knock(service: NodeService, source: str = "127.0.0.1",
                identity: NodeIdentity | None = None) -> tuple[int, dict, dict]:
    body = jm.JoinKnock(name="stranger", address="").model_dump_json().encode()
    return await post(service, jr.join_knock.path, body, source, identity)


async def pending_ids(service: NodeService) -> list[str]:
    async with NodeClient.unix(service.settings.api.socket) as local:
        return [p.id for p in (await local.call(jr.join_pending)).pending]


async def test_pending_joins_are_capped_per_address_and_in_total_and_survive_a_restart(
        short_tmp: Path) -> None:
    settings = admin_settings(short_tmp, pending_joins_per_source=3, pending_joins_max=5)
    admin = await founded(settings)
    try:
        for _ in range(3):
            status, _, answer = await knock(admin)
            assert status == 200 and answer["status"] == "pending", answer
        status, headers, answer = await knock(admin)
        assert status == 429, answer
        assert "from 127.0.0.1" in answer["message"] and int(headers["Retry-After"]) > 0
        # One host asking again is no new entry.
        again = NodeIdentity.generate()
        for _ in range(2):
            status, _, _ = await knock(admin, "127.0.0.2", again)
            assert status == 200
        assert (await knock(admin, "127.0.0.2"))[0] == 200
        status, _, answer = await knock(admin, "127.0.0.3")
        assert status == 503 and "Too many pending joins" in answer["message"], answer
        before = await pending_ids(admin)
        assert len(before) == 5
    finally:
        await admin.stop()
    back = await restarted(settings)
    try:
        assert sorted(await pending_ids(back)) == sorted(before), "lost in the restart"
        async with NodeClient.unix(settings.api.socket) as local:
            decision = await local.call(jr.join_reject, id=before[0])
        assert decision.status == "rejected"
    finally:
        await back.stop()
    again_back = await restarted(settings)
    try:
        assert len(await pending_ids(again_back)) == 4
        assert (await knock(again_back, "127.0.0.4"))[0] == 200, "the rejected one's place"
    finally:
        await again_back.stop()


async def test_a_rejected_key_stays_rejected_after_a_restart(short_tmp: Path) -> None:
    settings = admin_settings(short_tmp)
    admin = await founded(settings)
    who = NodeIdentity.generate()
    try:
        await knock(admin, identity=who)
        async with NodeClient.unix(settings.api.socket) as local:
            await local.call(jr.join_reject, id=(await pending_ids(admin))[0])
    finally:
        await admin.stop()
    back = await restarted(settings)
    try:
        status, _, answer = await knock(back, identity=who)
        assert status == 200 and answer["status"] == "rejected", answer
    finally:
        await back.stop()


async def test_pending_joins_expire(short_tmp: Path) -> None:
    admin = await founded(admin_settings(short_tmp, pending_join_expiry_s=0.5,
                                         pending_joins_max=1))
    try:
        assert (await knock(admin))[0] == 200
        assert (await knock(admin))[0] == 503  # full

        async def expired() -> bool:
            return await pending_ids(admin) == []

        await until(expired, timeout_s=5)
        assert (await knock(admin))[0] == 200, "an expired join's place is free again"
    finally:
        await admin.stop()


async def test_failed_handshakes_from_one_address_are_throttled(short_tmp: Path) -> None:
    admin = await founded(admin_settings(short_tmp, join_guesses=3, join_guess_every_s=30))
    try:
        async with NodeClient.unix(admin.settings.api.socket) as local:
            network = (await local.call(sr.state_status)).network
        guess = jm.JoinHandshake(network=network, token_key="11" * 32,
                                 proof="22" * 64).model_dump_json().encode()
        for _ in range(3):
            status, _, answer = await post(admin, jr.join_handshake.path, guess)
            assert status == 403 and "Unknown invite" in answer["message"], answer
        status, headers, answer = await post(admin, jr.join_handshake.path, guess)
        assert status == 429, answer
        assert 0 < int(headers["Retry-After"]) <= 30
        # Knocks from that address are guesses at the same door.
        assert (await knock(admin))[0] == 429
        # Another address is not slowed by the first one's guesses.
        status, _, _ = await post(admin, jr.join_handshake.path, guess, "127.0.0.2")
        assert status == 403
    finally:
        await admin.stop()
