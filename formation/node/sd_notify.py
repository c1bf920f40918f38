"""systemd's readiness protocol (sd_notify), without a library: one datagram to $NOTIFY_SOCKET.
Lets `Type=notify` units (formation-node.service) be "started" only once the API answers, so the
console and enrolment ordered after the node find it running."""

from __future__ import annotations

import os
import socket


def sd_notify(state: str, unset_environment: bool = False) -> bool:
    """Sends e.g. "READY=1"; False when not run by systemd (no NOTIFY_SOCKET) or on failure.
    `unset_environment` (as sd_notify(3)'s) drops $NOTIFY_SOCKET after the last message, so the
    commands the node runs later (networkctl, systemctl, wireguard-go) do not inherit it and
    systemd does not log refused notifications from them."""
    address = os.environ.pop("NOTIFY_SOCKET", None) if unset_environment \
        else os.environ.get("NOTIFY_SOCKET")
    if not address:
        return False
    if address.startswith("@"):
        address = "\0" + address[1:]
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
            sock.sendto(state.encode(), address)
    except OSError:
        return False
    return True
