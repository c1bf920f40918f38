"""Makes the WireGuard backend the capability probe chose; each is imported only when chosen
(wgkernel.py loads pyroute2's WireGuard netlink; wggo.py runs wireguard-go)."""

from __future__ import annotations

from formation.node.net.backend import WireGuardBackend
from formation.node.net.host import LOCAL_HOST, NetHost


def make_backend(kind: str, name: str, host: NetHost = LOCAL_HOST,
                 wireguard_go: str = "wireguard-go") -> WireGuardBackend:
    """`kind` is what the capability probe chose (Capabilities.wireguard_backend)."""
    if kind == "kernel":
        from formation.node.net.wgkernel import KernelWireGuardBackend

        return KernelWireGuardBackend(name, host)
    if kind == "wireguard-go":
        from formation.node.net.wggo import WireGuardGoBackend

        return WireGuardGoBackend(name, host, binary=wireguard_go)
    from formation.node.net.peers import WireGuardError

    raise WireGuardError(f"no WireGuard on this host (capability probe says {kind!r})")
