"""Instances through a real replica: who may claim, report and add what (hostile members
included), the views placement reads, and placement.decide over real signed ops."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from statekit import craft, found, image_payload, replica, spec, sync, write

from formation.identity import NodeIdentity
from formation.node.state.op import OpError
from formation.node.vmm.placement import decide

ADMIN, B, N1, N2 = (NodeIdentity.from_seed(bytes([i]) * 32) for i in (41, 42, 43, 44))
OFFER = {"cpus": 4, "memory_mb": 8192, "disk_gb": 100}


@pytest.fixture
def base(short_tmp: Path) -> Path:
    return short_tmp


def verdict(r, raw: bytes):
    [v] = r.ingest([raw]).verdicts
    return v


def network(base: Path, name: str = "a"):
    r = found(base, ADMIN, [B, N1, N2], name)
    for who, name in ((N1, "h1"), (N2, "h2")):
        write(r, who, "node.record", {"name": name, "resources": OFFER})
    return r


def create(r, name: str, who=B, **over):
    return write(r, who, "instance.create", {"name": name, "spec": spec(**over)})


def place(r, who, inst):
    return write(r, who, "instance.place", {"instance": inst.id.hex(), "node": who.public_key_hex})


def decisions(r, live=(N1, N2)):
    return decide(r.view("instances"), r.view("nodes"), {n.public_key_hex for n in live})


# rules -------------------------------------------------------------------------------------

def test_a_member_cannot_place_an_instance_on_another_node(base) -> None:
    r = network(base)
    inst = create(r, "web")
    for who in (B, ADMIN, N2):  # the owner, an admin, another node: none may put it on N1
        v = verdict(r, craft(who, r, "instance.place",
                             {"instance": inst.id.hex(), "node": N1.public_key_hex}))
        assert (v.status, v.reason) == ("refused", "unauthorized")
        assert "only the node itself" in v.message
    assert "placement" not in r.view("instances")[0]
    claim = place(r, N1, inst)  # the node itself claims
    [item] = r.view("instances")
    assert item["placement"] == N1.public_key_hex and item["placed_hlc"] == list(claim.hlc)
    assert item["placement_op"] == claim.id.hex()


def test_placing_something_that_is_no_instance_is_refused(base) -> None:
    r = network(base)
    img = write(r, B, "image.add", image_payload("k"))
    v = verdict(r, craft(N1, r, "instance.place", {"instance": img.id.hex(),
                                                   "node": N1.public_key_hex}))
    assert v.status == "refused" and v.message.startswith("payload.instance")


def test_status_from_a_node_the_instance_is_not_placed_on_is_refused(base) -> None:
    r = network(base)
    inst = create(r, "web")
    claim = place(r, N1, inst)
    status = {"instance": inst.id.hex(), "placement": claim.id.hex(),
              "observed": {"state": "running", "since_ms": 1}}
    for who in (N2, B, ADMIN):
        assert verdict(r, craft(who, r, "instance.status", status)).reason == "unauthorized"
    write(r, N1, "instance.status", status)
    assert r.view("instances")[0]["observed"] == status["observed"]


def test_oversized_or_malformed_observed_is_refused(base) -> None:
    r = network(base)
    inst = create(r, "web")
    claim = place(r, N1, inst)
    before = r.count

    def status(observed: dict) -> str:
        v = verdict(r, craft(N1, r, "instance.status", {
            "instance": inst.id.hex(), "placement": claim.id.hex(), "observed": observed}))
        assert v.status == "refused"
        return v.message

    big = {"state": "failed", "reason": "r" * 500, "serial_tail": ["x" * 200] * 20}
    assert status(big).startswith("payload.observed: expected at most 4096 bytes")
    assert status({"state": "failed", "serial_tail": ["x"] * 21}).startswith(
        "payload.observed.serial_tail")
    assert status({"state": "exploded"}).startswith("payload.observed.state")
    assert status({"state": "running", "blob": "x"}).startswith("payload.observed.blob")
    assert r.count == before and "observed" not in r.view("instances")[0]


def test_image_add_must_match_its_parts(base) -> None:
    r = network(base)
    before = r.count
    good = image_payload("k", size=10)
    cases = [({**good, "digest": "0" * 64}, "payload.digest: expected the SHA-256"),
             ({**good, "size": 11}, "payload.size: expected the sum"),
             ({k: v for k, v in good.items() if k != "parts"}, "payload.parts: expected"),
             ({**good, "parts": {"kernel": {"digest": "x", "size": 1}}},
              "payload.parts.kernel.digest: expected a SHA-256"),
             ({**good, "parts": {**good["parts"], "bios": {"digest": "0" * 64, "size": 0}}},
              "payload.parts: unknown part 'bios'"),
             ({**good, "cmdline": 5}, "payload.cmdline")]
    for payload, message in cases:
        v = verdict(r, craft(B, r, "image.add", payload))
        assert v.status == "refused" and v.message.startswith(message), v
    assert r.count == before
    write(r, B, "image.add", good)
    assert [i["name"] for i in r.view("images")] == ["k"]


@pytest.mark.parametrize(("field", "value"), [
    ("vcpus", 129), ("memory_mb", 256), ("disk_gb", 65_536), ("gpus", 17),
    ("confidential", "sgx"), ("image", "alpine"), ("cmdline", "x" * 1025)])
def test_a_spec_out_of_range_is_refused_naming_the_field(base, field, value) -> None:
    r = network(base)
    before = r.count
    v = verdict(r, craft(B, r, "instance.create", {"name": "web", "spec": spec(**{field: value})}))
    assert v.status == "refused" and v.message.startswith(f"payload.spec.{field}: expected")
    inst = create(r, "ok")
    v = verdict(r, craft(B, r, "instance.update", {"instance": inst.id.hex(),
                                                   "spec": spec(**{field: value})}))
    assert v.status == "refused" and v.message.startswith(f"payload.spec.{field}: expected")
    assert r.count == before + 1


def test_unknown_spec_fields_refused(base) -> None:
    r = network(base)
    v = verdict(r, craft(B, r, "instance.create", {"name": "web", "spec": spec(cpus=1)}))
    assert v.status == "refused" and v.message.startswith("payload.spec.cpus: not a field")


def test_a_forced_stop_is_desired_state(base) -> None:
    r = network(base)
    inst = create(r, "web")
    write(r, B, "instance.update", {"instance": inst.id.hex(), "desired": "stopped",
                                    "force": True})
    assert r.view("instances")[0]["force"] is True
    v = verdict(r, craft(B, r, "instance.update", {"instance": inst.id.hex(), "force": "yes"}))
    assert v.status == "refused" and v.message.startswith("payload.force")


def test_update_carries_a_boot_counter(base) -> None:
    r = network(base)
    inst = create(r, "web")
    write(r, B, "instance.update", {"instance": inst.id.hex(), "boot": 3})
    assert r.view("instances")[0]["boot"] == 3
    write(r, ADMIN, "instance.update", {"instance": inst.id.hex(), "boot": 2})
    assert r.view("instances")[0]["boot"] == 3  # a restart counter never goes back
    write(r, ADMIN, "instance.update", {"instance": inst.id.hex(), "boot": 4})
    assert r.view("instances")[0]["boot"] == 4 and r.rebuild()["equal"] is True
    for bad in (-1, "4", True):
        v = verdict(r, craft(B, r, "instance.update", {"instance": inst.id.hex(), "boot": bad}))
        assert v.status == "refused" and v.message.startswith("payload.boot")


def test_node_record_resources_are_checked(base) -> None:
    r = network(base)
    write(r, N1, "node.record", {"name": "h1", "resources": {
        **OFFER, "gpus": ["0000:01:00.0"], "confidential": ["sev-snp"]}})
    for bad in ({"gpus": ["01:00.0"]}, {"gpus": "0000:01:00.0"},
                {"gpus": ["0000:01:00.0", "0000:01:00.0"]}, {"confidential": ["sgx"]},
                {"cpus": -1}, {"memory_mb": "lots"}):
        v = verdict(r, craft(N1, r, "node.record", {"name": "h1", "resources": bad}))
        assert v.status == "refused" and v.message.startswith("payload.resources."), bad


# history -----------------------------------------------------------------------------------

def test_instance_history_oldest_first_bounded_and_rebuilt_equal(base) -> None:
    r = network(base)
    inst = create(r, "web")
    claim = place(r, N1, inst)
    states = ["placed", "booting", "running", "stopping", "stopped"] * 41  # 205 reports
    for i, state in enumerate(states):
        write(r, N1, "instance.status", {"instance": inst.id.hex(), "placement": claim.id.hex(),
                                         "observed": {"state": state, "since_ms": i}})
    history = r.instance_history(inst.id.hex())
    assert len(history) == 200
    assert [h["observed"]["since_ms"] for h in history] == list(range(5, 205))
    assert {h["node"] for h in history} == {N1.public_key_hex}
    assert [h["time_ms"] for h in history] == sorted(h["time_ms"] for h in history)
    assert r.rebuild()["equal"] is True
    assert r.instance_history(inst.id.hex()) == history
    other = replica(base, "other")  # another replica, the ops in another order
    raws = [raw for _, raw in r.log_page(0, 10**9)]
    other.ingest(raws[:20])
    other.ingest(list(reversed(raws[20:])))
    assert other.instance_history(inst.id.hex()) == history
    assert r.instance_history("00" * 32) == []


# placement over real ops -------------------------------------------------------------------

def test_a_removed_nodes_placements_are_void(base) -> None:
    r = network(base)
    inst = create(r, "web", vcpus=2)
    place(r, N1, inst)
    assert decisions(r)[inst.id.hex()].node == N1.public_key_hex
    write(r, ADMIN, "node.remove", {"node": N1.public_key_hex})
    d = decisions(r, live=(N1, N2))[inst.id.hex()]  # still reachable, but no member
    assert d.node is None and d.candidate == N2.public_key_hex
    with pytest.raises(OpError):  # and it cannot claim again
        place(r, N1, inst)


def test_a_node_claiming_far_beyond_its_offer_holds_only_what_fits(base) -> None:
    r = network(base)
    made = [create(r, f"vm{i}", vcpus=2) for i in range(5)]
    claims = [place(r, N1, inst) for inst in made]  # 10 vCPUs on a 4-vCPU offer
    d = decisions(r)
    held = [inst.id.hex() for inst in made if d[inst.id.hex()].node == N1.public_key_hex]
    assert held == [made[0].id.hex(), made[1].id.hex()]  # the two earliest claims
    rest = [d[inst.id.hex()] for inst in made[2:]]
    assert sorted(x.candidate or "" for x in rest).count(N2.public_key_hex) == 2
    [why] = [x.reason for x in rest if x.candidate is None]  # both nodes full: a tie
    assert re.fullmatch(r"no node has room for 2 vCPUs, 512 MiB, 5 GB \(most free: h[12] with "
                        r"0 vCPUs, 7168 MiB, 90 GB\)", why)
    assert claims[0].hlc < claims[1].hlc


def test_two_instances_claimed_concurrently_on_the_last_free_capacity_one_keeps_it(
        base) -> None:
    """N1 has room for one 4-vCPU instance. The owner grows `first` (placed on N1) to 4 vCPUs
    on its replica while N1, not having seen that, claims `second` on its own: neither op is in
    the other's past. Every replica, whatever order it got the ops in, keeps the earlier
    claim and sends the other back to be placed."""
    origin = network(base, "origin")
    first = create(origin, "first", vcpus=2)
    second = create(origin, "second", vcpus=2)
    place(origin, N1, first)
    owner, node = replica(base, "owner"), replica(base, "node")
    sync(owner, origin)
    sync(node, origin)
    write(owner, B, "instance.update", {"instance": first.id.hex(), "spec": spec(vcpus=4)})
    assert decide(node.view("instances"), node.view("nodes"),
                  [N1.public_key_hex])[second.id.hex()].candidate == N1.public_key_hex
    place(node, N1, second)
    results = []
    for name, order in (("x", (owner, node)), ("y", (node, owner))):
        r = replica(base, name)
        for src in order:
            sync(r, src)
        results.append(decide(r.view("instances"), r.view("nodes"), [N1.public_key_hex]))
    assert results[0] == results[1]
    d = results[0]
    assert d[first.id.hex()].node == N1.public_key_hex
    assert d[second.id.hex()].node is None and d[second.id.hex()].candidate is None
    assert d[second.id.hex()].reason.startswith("no node has room for 2 vCPUs")


def test_a_deleted_instance_frees_its_room(base) -> None:
    r = network(base)
    big = create(r, "big", vcpus=4)
    place(r, N1, big)
    small = create(r, "small", vcpus=1, node=N1.public_key_hex)
    assert decisions(r)[small.id.hex()].reason.startswith("pinned to h1, which has no room")
    write(r, B, "instance.delete", {"instance": big.id.hex()})
    assert decisions(r)[small.id.hex()].candidate == N1.public_key_hex


async def test_the_store_serves_the_history_and_this_node_claims_itself(short_tmp) -> None:
    from formation.node.state.store import StateStore

    me = NodeIdentity.generate()
    store = await StateStore.open(short_tmp / "s.db", me)
    try:
        await store.create_network("lab", "10.42.0.0/16")
        await store.append("node.record", {"name": "h1", "resources": OFFER})
        inst = await store.append("instance.create", {"name": "web", "spec": spec()})
        [d] = decide(await store.view("instances"), await store.view("nodes"),
                     {me.public_key_hex}).values()
        assert d.candidate == me.public_key_hex
        claim = await store.append("instance.place", {"instance": inst.id.hex(),
                                                      "node": me.public_key_hex})
        for state in ("placed", "booting", "running"):
            await store.append("instance.status", {
                "instance": inst.id.hex(), "placement": claim.id.hex(),
                "observed": {"state": state, "since_ms": 1, "backend": "qemu"}})
        history = await store.instance_history(inst.id.hex())
        assert [h["observed"]["state"] for h in history] == ["placed", "booting", "running"]
        assert {h["node"] for h in history} == {me.public_key_hex}
        [d] = decide(await store.view("instances"), await store.view("nodes"), []).values()
        assert d.node == me.public_key_hex  # held even while not seen live
    finally:
        await store.close()
