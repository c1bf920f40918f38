"""The processes on bench/fleet.py's paths: each host's wireguard-go (by network namespace) and
each guest's QEMU (by instance id), so support/cpu_account.py can charge their CPU to a round.
Found by /proc, because the lab's node processes start them and hold no handle the bench sees."""

from __future__ import annotations

import os
from pathlib import Path


def _net_ns(pid: int | str) -> int | None:
    try:
        return os.stat(f"/proc/{pid}/ns/net").st_ino
    except OSError:
        return None


def find(netns: dict[str, str], instance_ids: dict[str, str]) -> dict[str, int]:
    """PIDs by label: `wireguard-go@HOST` for each host's network namespace (name under
    /run/netns) and `qemu@NAME` for each instance (its QEMU is named
    formation-<first 12 hex of its id>: formation/node/vmm/qemu_args.py)."""
    inodes = {os.stat(f"/run/netns/{ns}").st_ino: host for host, ns in netns.items()}
    tags = {f"process=formation-{iid[:12]}".encode(): name for name, iid in instance_ids.items()}
    found: dict[str, int] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            argv = Path(f"/proc/{entry}/cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        exe = os.path.basename(argv[0]) if argv else b""
        if exe == b"wireguard-go":
            host = inodes.get(_net_ns(entry) or -1)
            if host is not None:
                found[f"wireguard-go@{host}"] = int(entry)
        elif exe.startswith(b"qemu-system"):
            for tag, name in tags.items():
                if any(tag in arg for arg in argv):
                    found[f"qemu@{name}"] = int(entry)
    return found
