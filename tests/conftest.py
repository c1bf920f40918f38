"""Shared fixtures: a real node service on a real unix socket in a temporary directory."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from settings_factory import make_settings

from formation.api.client import NodeClient
from formation.config.settings import NodeSettings
from formation.node.service import NodeService


@pytest.fixture
def short_tmp() -> Path:
    """Unix socket paths are limited to 108 bytes; pytest's tmp_path can be longer."""
    path = Path(tempfile.mkdtemp(prefix="fm-", dir="/tmp"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def node_settings(short_tmp: Path) -> NodeSettings:
    return make_settings(short_tmp)


@pytest.fixture
async def node(node_settings: NodeSettings) -> AsyncIterator[NodeService]:
    service = NodeService(node_settings)
    await service.start()
    yield service
    await service.stop()


@pytest.fixture
async def client(node: NodeService) -> AsyncIterator[NodeClient]:
    async with NodeClient.unix(node.settings.api.socket) as c:
        yield c


def needs_root() -> pytest.MarkDecorator:
    return pytest.mark.skipif(os.geteuid() != 0, reason="needs root")
