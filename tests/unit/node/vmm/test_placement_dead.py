"""placement.decide with lost hosts: a claim on a node seen dead past the grace does not hold,
its instances get candidates among the live nodes (the same on every replica), instances with a
data disk stay "host lost" unless `replicate: restart`, and `replicate: never` stays too."""

from __future__ import annotations

from collections.abc import Collection

from hypothesis import given, settings
from hypothesis import strategies as st

from formation.node.vmm.placement import HOST_LOST, decide, replaceable

IMAGE = "ab" * 32
DISK_IMAGE = "cd" * 32
KEYS = [f"{i:02x}" * 32 for i in range(1, 7)]


def node(i: int, cpus: int = 4, memory_mb: int = 8192, disk_gb: int = 100) -> dict:
    return {"key": KEYS[i], "name": f"h{i + 1}", "roles": ["member"],
            "resources": {"cpus": cpus, "memory_mb": memory_mb, "disk_gb": disk_gb}}


def inst(n: int, on: int | None = None, hlc: tuple[int, int] = (1, 0), vcpus: int = 1,
         **spec) -> dict:
    key = f"{n:064x}"
    out = {"key": key, "name": f"vm{n}", "desired": "running",
           "spec": {"image": IMAGE, "vcpus": vcpus, "memory_mb": 512, "disk_gb": 5, **spec}}
    if on is not None:
        out.update(placement=KEYS[on], placement_op=f"{n:064x}"[::-1], placed_hlc=list(hlc))
    return out


NODES = [node(0), node(1), node(2)]


def one(instances: list[dict], live: list[str], dead: Collection[str] = (),
        disk: tuple[str, ...] = ()):
    [d] = decide(instances, NODES, live, dead, disk).values()
    return d


def test_a_claim_on_a_node_dead_past_the_grace_does_not_hold_and_a_live_node_is_candidate():
    live = [KEYS[0], KEYS[2]]
    # dead but not yet past the grace: not in `dead`, the claim still holds
    assert one([inst(1, on=1)], live).node == KEYS[1]
    d = one([inst(1, on=1)], live, dead=[KEYS[1]])
    assert d.node is None and d.candidate in live and d.reason == ""


def test_every_replica_names_the_same_candidate_whatever_the_order():
    instances = [inst(n, on=1) for n in range(1, 9)]
    a = decide(instances, NODES, [KEYS[0], KEYS[2]], [KEYS[1]])
    b = decide(instances[::-1], NODES[::-1], [KEYS[2], KEYS[0]], {KEYS[1]})
    assert a == b
    assert {d.candidate for d in a.values()} <= {KEYS[0], KEYS[2]}
    assert all(d.node is None for d in a.values())


def test_once_the_candidate_claims_the_newer_placement_holds_even_after_the_old_host_returns():
    d = one([inst(1, on=1)], [KEYS[0], KEYS[2]], dead=[KEYS[1]])
    claimed = inst(1, on=KEYS.index(d.candidate), hlc=(2, 0))  # the register now names it
    assert one([claimed], KEYS[:3]).node == d.candidate  # h2 back: nothing names it any more


def test_a_node_never_sees_itself_lost():
    # `dead` is what this replica saw; a node that is live (this one is always) is not lost
    assert one([inst(1, on=1)], KEYS[:3], dead=[KEYS[1]]).node == KEYS[1]


def test_room_held_by_a_lost_host_is_not_counted_and_live_rooms_still_bound_candidates():
    nodes = [node(0, cpus=2), node(1, cpus=2), node(2, cpus=2)]
    instances = [inst(1, on=1, vcpus=2), inst(2, on=0, vcpus=2), inst(3, on=2, vcpus=2)]
    out = decide(instances, nodes, [KEYS[0], KEYS[2]], [KEYS[1]])
    lost = out[f"{1:064x}"]
    assert lost.node is None and lost.candidate is None
    assert lost.reason.startswith("no node has room for 2 vCPUs")
    assert out[f"{2:064x}"].node == KEYS[0] and out[f"{3:064x}"].node == KEYS[2]


def test_data_disk_instances_stay_host_lost_unless_replicate_restart():
    live, dead, disk = [KEYS[0], KEYS[2]], [KEYS[1]], (DISK_IMAGE,)
    d = one([inst(1, on=1, image=DISK_IMAGE)], live, dead, disk)
    assert (d.node, d.candidate, d.reason) == (None, None, HOST_LOST)
    d = one([inst(1, on=1, image=DISK_IMAGE, replicate="never")], live, dead, disk)
    assert d.reason == HOST_LOST
    d = one([inst(1, on=1, image=DISK_IMAGE, replicate="restart")], live, dead, disk)
    assert d.candidate in live
    # without a disk: placed again unless the spec says never
    assert one([inst(1, on=1)], live, dead, disk).candidate in live
    assert one([inst(1, on=1, replicate="never")], live, dead, disk).reason == HOST_LOST
    # the host comes back: its claim holds again, the disk is still there
    assert one([inst(1, on=1, image=DISK_IMAGE)], KEYS[:3], dead, disk).node == KEYS[1]


def test_replaceable_reads_the_spec_then_the_image():
    assert replaceable({"image": IMAGE}, ())
    assert not replaceable({"image": DISK_IMAGE}, (DISK_IMAGE,))
    assert replaceable({"image": DISK_IMAGE, "replicate": "restart"}, (DISK_IMAGE,))
    assert not replaceable({"image": IMAGE, "replicate": "never"}, ())


def test_a_pinned_instance_on_a_lost_host_waits_for_it():
    d = one([inst(1, on=1, node=KEYS[1])], [KEYS[0], KEYS[2]], dead=[KEYS[1]])
    assert d.node is None and d.candidate is None and "not a live member" in d.reason


@settings(max_examples=150, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 2), st.integers(1, 3)), min_size=1, max_size=12),
       st.sets(st.integers(0, 2), min_size=1, max_size=1))
def test_after_candidates_claim_no_instance_is_held_by_a_lost_node_and_all_hold(
        placed: list[tuple[int, int]], dead_idx: set[int]) -> None:
    """Whatever was placed where and whichever hosts are lost: after every candidate claims,
    each instance is held exactly once, by a live node, within its capacity."""
    dead = [KEYS[i] for i in dead_idx]
    live = [KEYS[i] for i in range(3) if i not in dead_idx]
    instances = [inst(n, on=on, vcpus=v) for n, (on, v) in enumerate(placed, 1)]
    first = decide(instances, NODES, live, dead)
    claimed = []
    for i, d in zip(instances, [first[x["key"]] for x in instances], strict=True):
        if d.candidate is not None:
            i = inst(int(i["key"], 16), on=KEYS.index(d.candidate), hlc=(2, int(i["key"], 16)),
                     vcpus=i["spec"]["vcpus"])
        claimed.append(i)
    second = decide(claimed, NODES, live, dead)
    used = {k: 0 for k in live}
    for i in claimed:
        d = second[i["key"]]
        if first[i["key"]].candidate is None and first[i["key"]].node is None:
            continue  # no room anywhere live
        assert d.node in live, (d, dead)
        used[d.node] += i["spec"]["vcpus"]
    assert all(v <= 4 for v in used.values())


def test_a_replica_in_a_minority_replaces_nothing():
    # h1 alone (h2 and h3 unheard): it cannot tell a lost host from its own isolation
    assert one([inst(1, on=1)], [KEYS[0]], dead=[KEYS[1], KEYS[2]]).node == KEYS[1]
    # four nodes, two live: not a strict majority either
    four = [*NODES, node(3)]
    [d] = decide([inst(1, on=1)], four, KEYS[:1] + KEYS[2:3], [KEYS[1], KEYS[3]]).values()
    assert d.node == KEYS[1]
    [d] = decide([inst(1, on=1)], four, [KEYS[0], KEYS[2], KEYS[3]], [KEYS[1]]).values()
    assert d.node is None and d.candidate in (KEYS[0], KEYS[2], KEYS[3])


def test_dead_keys_that_are_no_members_change_nothing():
    # a removed node, junk, this replica's own key while live: none of them voids a claim
    d = one([inst(1, on=1)], KEYS[:3], dead=["zz", KEYS[5], KEYS[0]])
    assert d.node == KEYS[1]
    assert one([inst(1, on=1)], [KEYS[0], KEYS[2]], dead=["zz", KEYS[5]]).node == KEYS[1]
