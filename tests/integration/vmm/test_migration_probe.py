"""bench/support/migration_probe.py's bare-QEMU migration and its serial-counter clock, on
this host (a stand-in for the lab whose hosts are this machine and loopback): the counter
crosses from the source's log to the target's and the longest gap is a plausible downtime."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest

from bench.support import migration_probe
from bench.support.guest_kit import GuestKit
from tests.ports import free_port

pytestmark = [pytest.mark.qemu, pytest.mark.timeout(240)]


@dataclass
class _Host:
    index: int


class _Names:
    def __init__(self, base: Path) -> None:
        self.base = base

    def host_dir(self, index: int) -> Path:
        return self.base / f"h{index}"


class _Lab:
    def __init__(self, base: Path) -> None:
        self.names = _Names(base)

    def host(self, name: str) -> _Host:
        return _Host(int(name[1:]))

    def exec_argv(self, name: str, argv: list[str]) -> tuple[list[str], dict[str, str]]:
        return argv, {}


@dataclass
class _Fleet:
    kit: GuestKit
    lab: _Lab

    def mesh_ip(self, host: str) -> str:
        return "127.0.0.1"


async def test_bare_migration_measures_the_counter_gap(guest_kit: GuestKit,
                                                       short_tmp: Path) -> None:
    fleet = _Fleet(guest_kit, _Lab(short_tmp))
    got = await migration_probe.bare_migration(fleet, "h1", "h3", port=free_port())
    # a counter every 100 ms: the longest gap is at least a tick, and a migration of a
    # 256 MiB TCG guest over loopback stops it for well under 10 s
    assert 90 <= got["bare_downtime_ms"] < 10_000, got
    assert isinstance(got["bare_qemu_downtime_ms"], int)
