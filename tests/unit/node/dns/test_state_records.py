"""form-dns names from a real state store: nodes by their claimed mesh address, instances by
the address their record carries, only in this replica's network."""

from __future__ import annotations

from formation.identity import NodeIdentity
from formation.node.dns.state_records import StateRecords
from formation.node.state.store import StateStore


async def test_nodes_and_instances_resolve_from_the_views(short_tmp) -> None:
    store = await StateStore.open(short_tmp / "s.db", NodeIdentity.generate())
    try:
        records = StateRecords(store)
        assert await records("h1", "lab") == []  # no network yet
        await store.create_network("lab", "10.42.0.0/16")
        await store.append("node.record", {"name": "h1"})
        assert await records("h1", "lab") == []  # no address claimed yet
        await store.ensure_address()
        [me] = await store.view("nodes")
        assert me["address"]
        assert await records("H1", "lab") == [me["address"]]
        assert await records("h1", "other") == []
        assert await records("nobody", "lab") == []
        create = await store.append("instance.create", {"name": "web", "spec": {
            "image": "ab" * 32, "vcpus": 1, "memory_mb": 512, "disk_gb": 5}})
        assert await records("web", "lab") == []
        place = await store.append("instance.place", {"instance": create.id.hex(),
                                                      "node": store.identity.public_key_hex})
        await store.append("instance.status", {"instance": create.id.hex(),
                                               "placement": place.id.hex(),
                                               "observed": {"state": "running",
                                                            "address": "10.42.5.2"}})
        assert await records("web", "lab") == ["10.42.5.2"]
    finally:
        await store.close()
