"""form-dns names from real state stores: nodes by their claimed mesh address, instances by the
address their CURRENT placement reports, only while placed and not deleted, only in this
replica's network. Two stores (two nodes) so that a re-placement is a real one."""

from __future__ import annotations

import pytest

from formation.errors import OpError
from formation.identity import NodeIdentity
from formation.node.dns.records import NOTHING, Found
from formation.node.dns.state_records import StateRecords, build_table
from formation.node.state.store import StateStore

SPEC = {"image": "ab" * 32, "vcpus": 1, "memory_mb": 512, "disk_gb": 5,
        "ports": ["80/tcp", "53/udp"]}
PORTS = ((80, "tcp"), (53, "udp"))


async def sync(to: StateStore, frm: StateStore) -> None:
    await to.ingest([raw for _, raw in await frm.log(0, 10_000)], origin="test")


async def status(store: StateStore, inst: str, place: str, address: str) -> None:
    await store.append("instance.status", {"instance": inst, "placement": place,
                                           "observed": {"state": "running", "address": address}})


async def test_nodes_and_instances_resolve_from_the_views(short_tmp) -> None:
    store = await StateStore.open(short_tmp / "s.db", NodeIdentity.generate())
    try:
        records = StateRecords(store)
        assert await records("h1", "lab") == NOTHING  # no network yet
        await store.create_network("lab", "10.42.0.0/16")
        await store.append("node.record", {"name": "h1"})
        assert await records("h1", "lab") == NOTHING  # no address claimed yet
        await store.ensure_address()
        [me] = await store.view("nodes")
        assert me["address"]
        assert await records("H1", "lab") == Found((me["address"],))
        assert await records("h1", "other") == NOTHING
        assert await records("nobody", "lab") == NOTHING
        create = await store.append("instance.create", {"name": "web", "spec": SPEC})
        assert await records("web", "lab") == NOTHING  # not placed: no name
        place = await store.append("instance.place", {"instance": create.id.hex(),
                                                      "node": store.identity.public_key_hex})
        assert await records("web", "lab") == NOTHING  # placed, nothing reported yet
        await status(store, create.id.hex(), place.id.hex(), "10.42.5.2")
        assert await records("WEB", "lab") == Found(("10.42.5.2",), PORTS, instance=True)
        await store.append("instance.delete", {"instance": create.id.hex()})
        assert await records("web", "lab") == NOTHING  # removal frees the name
    finally:
        await store.close()


async def test_the_name_follows_the_current_placement_only(short_tmp) -> None:
    """h1 runs web, h2 takes it over (re-placement); h1, superseded, reports late with another
    address, before and after h2's first report: the answer never takes it. The shared
    `observed` field does carry h1's late report, so reading anything but the current
    placement's status (or what the previous one said while current) would fail here."""
    h1 = await StateStore.open(short_tmp / "h1.db", NodeIdentity.generate())
    h2 = await StateStore.open(short_tmp / "h2.db", NodeIdentity.generate())
    try:
        await h1.create_network("lab", "10.42.0.0/16")
        await h1.append("node.admit", {"node": h2.identity.public_key_hex, "roles": ["member"]})
        records = StateRecords(h1)
        create = await h1.append("instance.create", {"name": "web", "spec": SPEC})
        inst = create.id.hex()
        first = await h1.append("instance.place", {"instance": inst,
                                                   "node": h1.identity.public_key_hex})
        await status(h1, inst, first.id.hex(), "10.42.1.2")
        assert (await records("web", "lab")).addresses == ("10.42.1.2",)

        await sync(h2, h1)
        second = await h2.append("instance.place", {"instance": inst,
                                                    "node": h2.identity.public_key_hex})
        await sync(h1, h2)
        # until h2 reports, the name keeps the address h1 reported while it held the instance
        assert (await records("web", "lab")).addresses == ("10.42.1.2",)
        assert await StateRecords(h1)("web", "lab") == NOTHING  # nothing to remember: none
        await status(h1, inst, first.id.hex(), "10.42.1.99")  # the superseded host, late
        [view] = await h1.view("instances")
        assert view["observed"]["address"] == "10.42.1.99"
        assert (await records("web", "lab")).addresses == ("10.42.1.2",)

        await status(h2, inst, second.id.hex(), "10.42.2.2")
        await sync(h1, h2)
        assert (await records("web", "lab")).addresses == ("10.42.2.2",)
        await status(h1, inst, first.id.hex(), "10.42.1.98")  # late again
        assert (await records("web", "lab")).addresses == ("10.42.2.2",)
        with pytest.raises(OpError, match="only the node the work is assigned to"):
            await status(h1, inst, second.id.hex(), "10.42.1.97")  # posing as the new host

        await h1.append("instance.delete", {"instance": inst})  # the owner removes it
        assert await records("web", "lab") == NOTHING
    finally:
        await h1.close()
        await h2.close()


def test_records_that_cannot_be_answered_give_no_name() -> None:
    """What the rules let through but an A record cannot carry (IPv6), and what they would not
    (kept from a replica running older rules), is left out rather than answered wrongly."""
    network = [{"name": "Lab"}]
    base = {"name": "web", "placement_op": "p1", "spec": {"ports": ["80/tcp", "x/y", 7]}}
    for observed in ({"address": "::1"}, {"address": "10.42.1.300"}, {"address": 5}, {}):
        assert build_table(network, [], [{**base, "observed@p1": observed}])[1] == {}, observed
    ok = {**base, "observed@p1": {"address": "10.42.1.2"}}
    assert build_table(network, [], [{**ok, "desired": "deleted"}])[1] == {}
    assert build_table(network, [], [{**ok, "placement_op": "p2"}])[1] == {}
    assert build_table(network, [], [ok]) == (
        "lab", {"web": Found(("10.42.1.2",), ((80, "tcp"),), instance=True)})
    remembered: dict[str, tuple[str, str]] = {}
    ok = {**ok, "key": "i1"}
    build_table(network, [], [ok], remembered)
    moved = {**ok, "placement_op": "p2"}  # p2 has not reported: p1's answer stays
    assert build_table(network, [], [moved], remembered)[1]["web"].addresses == ("10.42.1.2",)
    assert build_table(network, [], [], remembered) == ("lab", {}) and remembered == {}
    assert build_table(network, [], [moved], remembered)[1] == {}  # deleted: forgotten
    node = {"name": "WEB", "address": "10.42.0.1"}  # a node's name wins over an instance's
    assert build_table(network, [node], [ok])[1] == {"web": Found(("10.42.0.1",))}
