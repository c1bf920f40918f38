"""placement.decide on its own: reasons, pins, GPUs, confidential kinds, and properties over
random networks (hypothesis): the answer does not depend on input order, no node holds more
than it offers, and once every candidate claims, every claim holds."""

from __future__ import annotations

import random

from hypothesis import given, settings
from hypothesis import strategies as st

from formation.node.vmm.placement import Decision, decide

IMAGE = "ab" * 32
KEYS = [f"{i:02x}" * 32 for i in range(1, 7)]


def node(i: int, cpus: int = 4, memory_mb: int = 8192, disk_gb: int = 100, **more) -> dict:
    return {"key": KEYS[i], "name": f"h{i + 1}", "roles": ["member"],
            "resources": {"cpus": cpus, "memory_mb": memory_mb, "disk_gb": disk_gb, **more}}


def inst(n: int, vcpus: int = 1, memory_mb: int = 512, disk_gb: int = 5, *, on: int | None = None,
         hlc: tuple[int, int] = (0, 0), **spec) -> dict:
    key = f"{n:064x}"
    out = {"key": key, "name": f"vm{n}", "desired": "running",
           "spec": {"image": IMAGE, "vcpus": vcpus, "memory_mb": memory_mb, "disk_gb": disk_gb,
                    **spec}}
    if on is not None:
        out.update(placement=KEYS[on], placement_op=f"{n:064x}"[::-1], placed_hlc=list(hlc))
    return out


def test_an_unplaced_instance_gets_the_rendezvous_candidate_among_nodes_that_fit() -> None:
    nodes = [node(0), node(1), node(2, cpus=1)]
    d = decide([inst(1, vcpus=2)], nodes, KEYS[:3])[f"{1:064x}"]
    assert d.node is None and d.candidate in (KEYS[0], KEYS[1]) and d.reason == ""
    assert decide([inst(1, vcpus=2)], nodes, KEYS[:3]) == decide([inst(1, vcpus=2)],
                                                                 nodes[::-1], KEYS[2::-1])
    # only live nodes are candidates
    assert decide([inst(1, vcpus=2)], nodes, [KEYS[1]])[f"{1:064x}"].candidate == KEYS[1]


def test_reasons_are_one_line_and_say_what_is_missing() -> None:
    nodes = [node(0, cpus=2, memory_mb=4096), node(1, cpus=1, memory_mb=1024)]
    live = KEYS[:2]

    def why(**spec) -> str:
        [d] = decide([inst(1, **spec)], nodes, live).values()
        assert d.node is None and d.candidate is None and "\n" not in d.reason
        return d.reason

    assert why(vcpus=4, memory_mb=8192, disk_gb=20) == (
        "no node has room for 4 vCPUs, 8192 MiB, 20 GB (most free: h1 with 2 vCPUs, 4096 MiB, "
        "100 GB)")
    assert why(confidential="sev-snp") == "asks for sev-snp: no live node offers it"
    assert why(node=KEYS[3]) == f"pinned to {KEYS[3][:12]}, which is not a live member"
    assert why(gpus=1) == ("no node has room for 1 vCPUs, 512 MiB, 5 GB, 1 GPUs (most free: h1 "
                           "with 2 vCPUs, 4096 MiB, 100 GB, 0 GPUs)")
    assert decide([inst(1)], nodes, [])[f"{1:064x}"].reason == "no live member node"
    bad = inst(1, vcpus=0)
    assert decide([bad], nodes, live)[bad["key"]].reason.startswith("spec.vcpus: expected")


def test_pins_are_kept() -> None:
    nodes = [node(0), node(1)]
    for target in (0, 1):
        d = decide([inst(1, node=KEYS[target])], nodes, KEYS[:2])[f"{1:064x}"]
        assert d.candidate == KEYS[target]
    # a claim on another node than the pin does not hold
    placed = inst(1, node=KEYS[1], on=0)
    d = decide([placed], nodes, KEYS[:2])[placed["key"]]
    assert d.node is None and d.candidate == KEYS[1]
    pinned_dead = decide([inst(1, node=KEYS[1])], nodes, [KEYS[0]])[f"{1:064x}"]
    assert pinned_dead.reason == "pinned to h2, which is not a live member"


def test_gpus_are_assigned_in_claim_order_and_only_where_free() -> None:
    gpus = ["0000:02:00.0", "0000:01:00.0", "0000:03:00.0"]
    nodes = [node(0, gpus=gpus), node(1)]
    a = inst(1, gpus=2, on=0, hlc=(5, 0))
    b = inst(2, gpus=1, on=0, hlc=(3, 0))  # earlier: first pick
    c = inst(3, gpus=1, on=0, hlc=(7, 0))  # no GPU left for it
    d = decide([a, b, c], nodes, KEYS[:2])
    assert d[b["key"]].gpus == ("0000:01:00.0",)
    assert d[a["key"]].gpus == ("0000:02:00.0", "0000:03:00.0")
    assert d[c["key"]].node is None and d[c["key"]].candidate is None
    assert "1 GPUs" in d[c["key"]].reason


def test_confidential_goes_where_offered() -> None:
    nodes = [node(0), node(1, confidential=["tdx"])]
    d = decide([inst(1, confidential="tdx")], nodes, KEYS[:2])[f"{1:064x}"]
    assert d.candidate == KEYS[1]
    assert decide([inst(1, confidential="tdx", on=0)], nodes, KEYS[:2])[
        f"{1:064x}"].candidate == KEYS[1]  # a claim where it is not offered does not hold


def test_malformed_records_offer_nothing() -> None:
    nodes = [{"key": KEYS[0], "resources": {"cpus": "many", "gpus": "x"}}, {"key": KEYS[1]},
             {"key": KEYS[2], "resources": [1]}]
    d = decide([inst(1)], nodes, KEYS[:3])[f"{1:064x}"]
    assert d.candidate is None and d.reason.startswith("no node has room")


def test_stopped_instances_hold_their_room() -> None:
    stopped = {**inst(1, vcpus=4, on=0), "desired": "stopped"}
    d = decide([stopped, inst(2)], [node(0)], [KEYS[0]])
    assert d[stopped["key"]].node == KEYS[0] and d[f"{2:064x}"].candidate is None


# properties --------------------------------------------------------------------------------

NODES = st.lists(st.tuples(st.integers(0, 8), st.integers(0, 16384), st.integers(0, 200),
                           st.integers(0, 3), st.booleans()), min_size=1, max_size=5)
INSTANCES = st.lists(st.tuples(
    st.integers(1, 4), st.sampled_from([512, 1024, 4096]), st.sampled_from([5, 20, 80]),
    st.integers(0, 2), st.sampled_from(["none", "none", "sev-snp"]),
    st.one_of(st.none(), st.integers(0, 6)),  # placed on (6: a removed node)
    st.integers(0, 5), st.one_of(st.none(), st.integers(0, 6))),  # hlc, pin
    max_size=12)


def _build(node_specs, inst_specs) -> tuple[list[dict], list[dict]]:
    nodes = [node(i, cpus, mem, disk,
                  gpus=[f"0000:{i:02x}:{g:02x}.0" for g in range(gpus)],
                  confidential=["sev-snp"] if conf else [])
             for i, (cpus, mem, disk, gpus, conf) in enumerate(node_specs)]
    instances = []
    for n, (vcpus, mem, disk, gpus, conf, on, hlc, pin) in enumerate(inst_specs):
        spec = {"gpus": gpus, "confidential": conf}
        if pin is not None:
            spec["node"] = KEYS[min(pin, 5)]
        instances.append(inst(n + 1, vcpus, mem, disk, on=None if on is None else min(on, 5),
                              hlc=(hlc, n % 2), **spec))
    return nodes, instances


def _held_within_offers(nodes: list[dict], instances: list[dict],
                        result: dict[str, Decision], with_candidates: bool) -> None:
    by_key = {i["key"]: i["spec"] for i in instances}
    for n in nodes:
        res = n["resources"]
        mine = [d for d in result.values()
                if d.node == n["key"] or (with_candidates and d.candidate == n["key"])]
        for field, figure in (("vcpus", "cpus"), ("memory_mb", "memory_mb"),
                              ("disk_gb", "disk_gb")):
            assert sum(by_key[d.instance][field] for d in mine) <= res[figure]
        assigned = [g for d in mine for g in d.gpus]
        assert len(assigned) == len(set(assigned)) and set(assigned) <= set(res["gpus"])
        assert sum(by_key[d.instance]["gpus"] for d in mine) <= len(res["gpus"])


@settings(max_examples=300, deadline=None)
@given(NODES, INSTANCES, st.sets(st.integers(0, 5)), st.randoms(use_true_random=False))
def test_decide_is_order_independent_and_never_overcommits(node_specs, inst_specs, live_ix,
                                                           rnd: random.Random) -> None:
    nodes, instances = _build(node_specs, inst_specs)
    live = [KEYS[i] for i in live_ix]
    result = decide(instances, nodes, live)
    shuffled = (rnd.sample(instances, len(instances)), rnd.sample(nodes, len(nodes)),
                rnd.sample(live, len(live)))
    assert decide(*shuffled) == result
    assert set(result) == {i["key"] for i in instances}
    _held_within_offers(nodes, instances, result, with_candidates=True)
    members = {n["key"] for n in nodes}
    for d in result.values():
        assert d.node is None or d.node in members
        assert d.candidate is None or (d.candidate in members and d.candidate in live)
        assert (d.node is None) or (d.candidate is None and d.reason == "")
        assert d.node is not None or d.candidate is not None or d.reason


@settings(max_examples=200, deadline=None)
@given(NODES, INSTANCES, st.sets(st.integers(0, 5)))
def test_when_every_candidate_claims_every_claim_holds(node_specs, inst_specs, live_ix) -> None:
    """Convergence: the claims decide asks for do not push anything held out, and all hold."""
    nodes, instances = _build(node_specs, inst_specs)
    live = [KEYS[i] for i in live_ix]
    first = decide(instances, nodes, live)
    claimed = []
    for n, item in enumerate(instances):
        d = first[item["key"]]
        if d.candidate is not None:
            item = {**item, "placement": d.candidate, "placement_op": f"{n:064x}",
                    "placed_hlc": [100, n]}
        claimed.append(item)
    second = decide(claimed, nodes, live)
    for key, d in first.items():
        if d.node is not None:
            assert second[key].node == d.node and second[key].gpus == d.gpus
        if d.candidate is not None:
            assert second[key].node == d.candidate
    _held_within_offers(nodes, claimed, second, with_candidates=False)


def test_an_instance_the_view_marks_over_quota_is_neither_placed_nor_kept() -> None:
    """Concurrent creates can each pass the quota rule in their own past; the instances view
    marks the late ones over_quota on every replica, and no node may hold or claim them, even
    one that had placed it, while the others are placed as usual."""
    nodes = [node(0), node(1)]
    late = {**inst(2, on=0), "over_quota": True}
    out = decide([inst(1, on=0), late], nodes, KEYS[:2])
    assert out[f"{1:064x}"].node == KEYS[0]
    d = out[f"{2:064x}"]
    assert d.node is None and d.candidate is None and "quota" in d.reason
    assert decide([{**late, "over_quota": False}], nodes, KEYS[:2])[f"{2:064x}"].node == KEYS[0]
