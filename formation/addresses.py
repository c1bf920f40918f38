"""Address helpers both the node and discovery use (discovery never imports the node)."""

from __future__ import annotations

import ipaddress


def every_address(host: str) -> bool:
    """`0.0.0.0` or `[::]`: a listener on every address of the host (False for a name)."""
    try:
        return ipaddress.ip_address(host.strip("[]")).is_unspecified
    except ValueError:
        return False
