"""Whether a node runs the edge: its `edge.enabled` setting, or the `edge` capability an admin
gave it (node.capabilities); either is enough, and a node the nodes view no longer lists (a
removed one) keeps only its setting."""

from __future__ import annotations

from formation.node.edge.capability_watch import capabilities_of, edge_wanted

ME, OTHER = "aa" * 32, "bb" * 32


def nodes(**caps: list[str] | None) -> list[dict]:
    out = []
    for key, value in (("me", ME), ("other", OTHER)):
        record: dict = {"key": value, "roles": ["member"]}
        if caps.get(key) is not None:
            record["capabilities"] = caps[key]
        out.append(record)
    return out


def test_the_setting_alone_runs_the_edge() -> None:
    assert edge_wanted(True, ME, [])
    assert edge_wanted(True, ME, nodes(me=[]))


def test_the_edge_capability_runs_it_without_the_setting() -> None:
    assert edge_wanted(False, ME, nodes(me=["edge"]))
    assert edge_wanted(False, ME, nodes(me=["builder", "edge"]))


def test_no_setting_and_no_capability_no_edge() -> None:
    assert not edge_wanted(False, ME, [])
    assert not edge_wanted(False, ME, nodes())
    assert not edge_wanted(False, ME, nodes(me=["builder"]))
    assert not edge_wanted(False, ME, nodes(me=[]))


def test_anothers_capability_is_not_mine() -> None:
    assert not edge_wanted(False, ME, nodes(other=["edge"]))
    assert not edge_wanted(False, None, nodes(other=["edge"]))


def test_a_removed_node_is_not_listed_so_its_capability_lapses() -> None:
    listed = nodes(me=["edge"])
    assert edge_wanted(False, ME, listed)
    assert not edge_wanted(False, ME, [n for n in listed if n["key"] != ME])
    assert capabilities_of(ME, [n for n in listed if n["key"] != ME]) == []


def test_a_malformed_register_counts_as_none() -> None:
    assert not edge_wanted(False, ME, [{"key": ME, "capabilities": "edge"}])
