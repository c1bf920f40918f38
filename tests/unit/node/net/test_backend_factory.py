"""The factory makes the backend the capability probe chose, apart from the interface module
(backend.py holds only the protocol the reconciler drives)."""

from __future__ import annotations

from pathlib import Path

import pytest

from formation.node.net.backend_factory import make_backend
from formation.node.net.host import NetHost
from formation.node.net.peers import WireGuardError
from formation.node.net.wggo import WireGuardGoBackend
from formation.node.net.wgkernel import KernelWireGuardBackend

HOST = NetHost(netns="formation-test-none", root=Path("/nonexistent"))


def test_each_probed_kind_gets_its_backend_and_nothing_is_created() -> None:
    go = make_backend("wireguard-go", "fmtest0", HOST, wireguard_go="/opt/wg-go")
    assert isinstance(go, WireGuardGoBackend) and go.binary == "/opt/wg-go"
    assert go.socket_path == Path("/nonexistent/run/wireguard/fmtest0.sock")
    kernel = make_backend("kernel", "fmtest0", HOST)
    assert isinstance(kernel, KernelWireGuardBackend) and kernel.host is HOST


@pytest.mark.parametrize("kind", ["none", "unknown", "auto"])
def test_a_host_without_wireguard_is_told_what_the_probe_said(kind: str) -> None:
    with pytest.raises(WireGuardError, match=f"capability probe says '{kind}'"):
        make_backend(kind, "fmtest0", HOST)

