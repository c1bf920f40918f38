"""`formation node capabilities`: --set parsing (names, none, a wrong name in one line) and which
node ID names (name, key, a unique key prefix); the CLI's names are the rules' names."""

from __future__ import annotations

import pytest

from formation.commands.capability_cli import (
    CAPABILITIES,
    builder_hint,
    describe,
    find_node,
    line,
    parse_set,
    pick_builder,
)
from formation.errors import FormationError
from formation.node.state import capability_rules

NODES = [{"key": "ab1234" + "0" * 58, "name": "h1", "roles": ["admin"]},
         {"key": "ab1234" + "1" * 58, "name": "h2", "roles": ["member"],
          "capabilities": ["edge"]},
         {"key": "cd34" + "2" * 60, "roles": ["member"]}]


def test_the_cli_knows_the_rules_capabilities() -> None:
    assert CAPABILITIES == capability_rules.CAPABILITIES


def test_set_takes_names_in_any_order_and_case_and_none_clears() -> None:
    assert parse_set("edge,builder") == ["builder", "edge"]
    assert parse_set(" Edge , edge") == ["edge"]
    assert parse_set("none") == parse_set("") == []


def test_a_wrong_name_is_one_line_naming_it() -> None:
    with pytest.raises(FormationError) as caught:
        parse_set("edge,gpu")
    assert str(caught.value) == ("--set edge,gpu: expected capabilities from builder, edge "
                                 "separated by commas (or none); 'gpu' is not one")


def test_a_node_is_named_by_name_key_or_unique_prefix() -> None:
    assert find_node(NODES, "h2")["name"] == "h2"
    assert find_node(NODES, NODES[0]["key"])["name"] == "h1"
    assert find_node(NODES, "cd3422")["key"] == NODES[2]["key"]
    with pytest.raises(FormationError, match="the prefix names 2 nodes"):
        find_node(NODES, "ab1234")
    with pytest.raises(FormationError, match="node h9: no member"):
        find_node(NODES, "h9")
    with pytest.raises(FormationError, match="no member"):
        find_node(NODES, "cd3")  # too short to be a prefix


def test_the_output_lines() -> None:
    assert describe(NODES[1]) == {"node": NODES[1]["key"], "name": "h2",
                                  "capabilities": ["edge"]}
    assert line(NODES[1]) == "h2 (ab1234111111): edge"
    assert line(NODES[2]) == "cd3422222222 (cd3422222222): none"


def test_a_build_hint_names_the_builders_when_the_node_asked_is_not_one() -> None:
    me, other, third = (k * 64 for k in "abc")
    nodes = [{"key": me, "name": "h1"},
             {"key": other, "name": "h2", "capabilities": ["builder"],
              "endpoints": ["10.0.0.2:7443"]},
             {"key": third, "capabilities": ["builder", "edge"]}]
    assert builder_hint(nodes, me) == (
        "hint: the node asked lacks the builder capability; held by h2 (formation pack build "
        "--node 10.0.0.2:7443), cccccccccccc (--on-builder picks one)")
    assert builder_hint(nodes, other) is None  # it is a builder itself
    assert builder_hint([nodes[0], {"key": other, "capabilities": ["edge"]}], me) is None
    assert builder_hint(nodes[:1], me) is None
    many = [nodes[0]] + [{"key": f"{i:064x}", "name": f"b{i}", "capabilities": ["builder"]}
                         for i in range(1, 6)]
    assert builder_hint(many, me) == ("hint: the node asked lacks the builder capability; "
                                      "held by b1, b2, b3 and 2 more (--on-builder picks "
                                      "one)")


def test_on_builder_picks_this_node_or_the_first_builder_with_an_address() -> None:
    me, b, c = (k * 64 for k in "abc")
    nodes = [{"key": me, "name": "h1"},
             {"key": c, "name": "zed", "capabilities": ["builder"], "endpoints": ["10.0.0.3:1"]},
             {"key": b, "name": "alpha", "capabilities": ["builder"]}]  # no address
    assert pick_builder(nodes, me) == "10.0.0.3:1"
    assert pick_builder([{"key": me, "capabilities": ["builder"]}, *nodes[1:]], me) is None
    with pytest.raises(FormationError) as caught:
        pick_builder(nodes[:1], me)
    assert str(caught.value) == ("--on-builder: no node of the network has the builder "
                                 "capability (an admin gives it: formation node capabilities "
                                 "ID --set builder)")
    with pytest.raises(FormationError, match=r"the builders \(alpha\) publish no API address"):
        pick_builder([nodes[0], nodes[2]], me)
