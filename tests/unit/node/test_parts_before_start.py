"""A part used before the node service started it says so by name, instead of failing on None
somewhere inside (the typed accessors of discovery/needs.py and of the p2p part)."""

from __future__ import annotations

import pytest

from formation.config.settings import NodeSettings
from formation.discovery.needs import identity_of
from formation.node.parts import build_parts
from formation.node.service import NodeService


def test_parts_used_before_start_name_themselves(tmp_path):
    parts = build_parts(NodeSettings(data_dir=tmp_path))
    with pytest.raises(RuntimeError, match="the discovery part is used before it started"):
        parts.discovery.hello()
    with pytest.raises(RuntimeError, match="peer table is used before it started"):
        _ = parts.discovery.peer_table
    with pytest.raises(RuntimeError, match="the join part is used before it started"):
        parts.join.advertised_endpoints()
    with pytest.raises(RuntimeError, match="the join part is used before it started"):
        _ = parts.join.identity
    with pytest.raises(RuntimeError, match="the p2p part is used before it started"):
        _ = parts.p2p.identity


def test_a_node_service_without_its_identity_yet_is_named(tmp_path):
    service = NodeService(NodeSettings(data_dir=tmp_path), components=[])
    with pytest.raises(RuntimeError, match="no identity yet"):
        identity_of(service)
