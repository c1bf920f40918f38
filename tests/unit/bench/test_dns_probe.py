"""bench/support/dns_probe.py: the time until the LAST server answers the new address, and a
clear error naming the ones that never do. Two real DNS servers on loopback."""

from __future__ import annotations

import asyncio
import time

import pytest

from bench.support.dns_probe import dns_move_s, resolve
from formation.node.dns.records import StaticRecords
from formation.node.dns.server import DnsResolver, DnsServer


async def test_waits_for_every_server_and_names_the_late_ones() -> None:
    records = [StaticRecords({("web", "lab"): ["10.42.1.2"]}) for _ in range(2)]
    first = DnsServer(DnsResolver(records[0]))
    await first.start(["127.0.0.1"], 0)
    port = first.bound[0][1]
    second = DnsServer(DnsResolver(records[1]))
    await second.start(["127.0.0.2"], port)
    servers: list[tuple[str | None, str]] = [(None, "127.0.0.1"), (None, "127.0.0.2")]
    try:
        assert await resolve(None, "127.0.0.1", "web.lab.fog", port) == ["10.42.1.2"]
        assert await resolve(None, "127.0.0.1", "nope.lab.fog", port) == []
        since = time.monotonic()
        probe = asyncio.ensure_future(dns_move_s(servers, "web.lab.fog", "10.42.2.2",
                                                 timeout_s=10, since=since, port=port))
        records[0].set("web", "lab", ["10.42.2.2"])
        await asyncio.sleep(0.4)  # the second host converges later: that is what is measured
        assert not probe.done()
        records[1].set("web", "lab", ["10.42.2.2"])
        took = await probe
        assert 0.4 <= took < 5
        records[1].set("web", "lab", [])
        with pytest.raises(TimeoutError, match=r"127\.0\.0\.2 in this namespace answered "
                                               r"nothing") as failed:
            await dns_move_s(servers, "web.lab.fog", "10.42.2.2", timeout_s=0.5, port=port)
        assert "127.0.0.1 " not in str(failed.value)
    finally:
        await first.stop()
        await second.stop()
