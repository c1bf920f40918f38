"""Numbers the state store keeps as SQLite integers are bounded in the API models: a log
position or a version-vector sequence beyond 2**63 - 1 is a 400 naming the field, where main
answered 500 (OverflowError from sqlite3). Found by the schemathesis run."""

from __future__ import annotations

import aiohttp

from formation.node.service import NodeService


async def _get(node: NodeService, target: str, body: bytes = b"") -> tuple[int, dict]:
    connector = aiohttp.UnixConnector(path=str(node.settings.api.socket))
    async with aiohttp.ClientSession(connector=connector) as session:
        method = "POST" if body else "GET"
        headers = {"Content-Type": "application/json"} if body else {}
        async with session.request(method, "http://node" + target, data=body or None,
                                   headers=headers) as resp:
            return resp.status, await resp.json()


async def test_log_position_beyond_sqlite_is_a_400(node: NodeService) -> None:
    status, body = await _get(node, "/v1/state/log?after=9223372036854775807")
    assert status == 200, body  # the largest SQLite integer is a valid position
    status, body = await _get(node, "/v1/state/log?after=9223372036854775808")
    assert status == 400, body
    assert body["fields"][0]["field"] == "after"


async def test_version_vector_beyond_sqlite_is_a_400(node: NodeService) -> None:
    payload = b'{"vv": {"' + b"ab" * 32 + b'": 9223372036854775808}}'
    status, body = await _get(node, "/v1/state/sync/range", payload)
    assert status == 400, body
    assert body["fields"][0]["field"].startswith("vv.")
