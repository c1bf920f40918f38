"""Shared fixtures: a real node service on a real unix socket in a temporary directory."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from settings_factory import make_settings
from vmm_leftovers import end, orphaned_vmms

from formation.api.client import NodeClient
from formation.config.settings import NodeSettings
from formation.node.service import NodeService


@pytest.fixture(autouse=True)
def _end_leftover_vmms() -> Iterator[None]:
    """Ends the VMM processes whose node's files a test removed (see vmm_leftovers.py)."""
    yield
    end(orphaned_vmms())


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


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "network(joiners=('h2', 'h3'), fields=()): what the `network` fixture joins "
        "and waits for")


@pytest.fixture
async def network(lab, request: pytest.FixtureRequest) -> dict[str, dict]:
    """On the test module's `lab`: h1 founds network 'lab' and the other hosts join it with
    invites; h1's nodes view (by name) once every host is in it with the fields the test's
    `network` marker names (e.g. fields=("address", "wg_endpoints") for the mesh)."""
    from lab_running import found_and_join

    marker = request.node.get_closest_marker("network")
    options = dict(marker.kwargs) if marker else {}
    return await found_and_join(lab, **options)
