"""A host's underlay address changes, on the lab (root, real node processes, each host in its own
network and mount namespace, mesh off: this is what peers and new joiners use before the mesh is
up). The nodes listen on every address (`0.0.0.0:7170`, as the appliance does), so what they
advertise is derived from the host's addresses. After h1 founds and h2 joins, h2's address is
replaced with pyroute2; then
- h2's mDNS service, resolved from h1's namespace by a fresh zeroconf query, has the new address;
- h2's node record, replicated to h1, names the new API endpoint, and its other fields stay;
- h2 logged both, and its event stream carried them."""

from __future__ import annotations

import asyncio
import contextlib
import json
import sys

import pytest
from lab_running import running_lab
from pyroute2 import NetNS
from waiting import until

from formation.api import discovery_routes, state_routes
from formation.lab import Lab
from formation.lab.names import API_PORT, PREFIXLEN
from tests.conftest import needs_root

pytestmark = [needs_root(), pytest.mark.root, pytest.mark.timeout(150)]

OVERRIDES = {"api": {"listen": f"0.0.0.0:{API_PORT}"}, "discovery": {"addresses": []}}
MOVED = "10.77.0.112"  # h2's new address, in the lab's own subnet

# Resolves one node's mDNS service from scratch (no cache shared with the node on this host).
RESOLVE = """import json, sys
from zeroconf import IPVersion, ServiceInfo, Zeroconf
zc = Zeroconf(interfaces=[sys.argv[1]], ip_version=IPVersion.V4Only)
try:
    info = ServiceInfo("_formation._udp.local.", sys.argv[2] + "._formation._udp.local.")
    found = info.request(zc, 3000)
    print(json.dumps(info.parsed_addresses(IPVersion.V4Only) if found else None))
finally:
    zc.close()"""


@pytest.fixture(scope="module")
def lab():
    with running_lab(2, pretrust=False, node_overrides=OVERRIDES) as instance:
        yield instance


async def h2_record_on_h1(lab: Lab) -> dict:
    async with lab.client("h1") as client:
        view = await client.call(state_routes.state_view, collection="nodes")
    return next((n for n in view.items if n.get("name") == "h2"), {})


async def mdns_addresses_of(lab: Lab, node_id: str) -> list[str] | None:
    """h2's addresses as an mDNS query from h1's namespace finds them."""
    done = await asyncio.to_thread(
        lab.exec, "h1", [sys.executable, "-c", RESOLVE, lab.host("h1").address, node_id],
        capture_output=True, text=True, timeout=20)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


async def h2_events(lab: Lab) -> set[tuple[str, str]]:
    """The (topic, kind) of every event h2 still holds, read from its stream from the start."""
    kinds: set[tuple[str, str]] = set()
    async with lab.client("h2") as client:
        events = client.events(since=0)
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(3):
                async for event in events:
                    kinds.add((event.topic, event.kind))
        await events.aclose()
    return kinds


def move_address(netns: str, old: str, new: str) -> None:
    """What a new DHCP lease does: the old address goes, a new one comes."""
    with NetNS(netns, flags=0) as ns:
        eth0 = ns.link_lookup(ifname="eth0")[0]
        ns.addr("del", index=eth0, address=old, prefixlen=PREFIXLEN)
        ns.addr("add", index=eth0, address=new, prefixlen=PREFIXLEN)


@pytest.mark.network(joiners=("h2",))
async def test_an_underlay_change_is_advertised_by_mdns_and_the_node_record(lab: Lab, network):
    old = lab.host("h2").address
    async with lab.client("h2") as client:
        node_id = (await client.call(discovery_routes.discovery_hello)).node_id

    async def recorded(endpoint: str) -> bool:
        return (await h2_record_on_h1(lab)).get("endpoints") == [endpoint]

    await until(lambda: recorded(f"{old}:{API_PORT}"), 30)
    assert await mdns_addresses_of(lab, node_id) == [old]
    before = await h2_record_on_h1(lab)

    await asyncio.to_thread(move_address, lab.host("h2").netns, old, MOVED)

    seen: dict[str, object] = {}

    async def advertised() -> bool:
        seen["record"] = (await h2_record_on_h1(lab)).get("endpoints")
        seen["mdns"] = await mdns_addresses_of(lab, node_id)
        return seen == {"record": [f"{MOVED}:{API_PORT}"], "mdns": [MOVED]}

    try:
        await until(advertised, 30)
    except AssertionError:
        tail = lab.log_path("h2").read_text().splitlines()[-15:]
        raise AssertionError(f"h2 as h1 sees it: {seen}; h2's log ends: {tail}") from None
    assert await h2_events(lab) >= {("host", "underlay_changed"), ("discovery", "readvertised"),
                                    ("join", "endpoints_changed")}
    after = await h2_record_on_h1(lab)
    assert after["resources"] == before["resources"] and after["key"] == before["key"]
    log = lab.log_path("h2").read_text()
    assert "underlay addresses changed" in log
    assert "mDNS record registered again" in log
    assert "node record: the API endpoints changed" in log
