"""The QEMU driver's live migration between two real QEMU/TCG processes over loopback TCP: a
counter guest keeps counting on the target (no restart), progress is reported, and a
migration to nothing fails with the source still running."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from waiting import until

from bench.support.guest_kit import COUNTER, GuestKit
from formation.node.vmm.driver import MigrationProgress
from formation.node.vmm.machine import MachineSpec, VmmError
from formation.node.vmm.qemu import QemuDriver
from tests.ports import free_port

pytestmark = [pytest.mark.qemu, pytest.mark.timeout(240)]
BOOT_S = 60.0


def counters(path: Path) -> list[int]:
    try:
        text = path.read_text(errors="replace")
    except FileNotFoundError:
        return []
    return [int(n) for n in re.findall(rf"^{COUNTER}(\d+)\r?$", text, re.M)]


def spec_for(kit: GuestKit, workdir: Path) -> MachineSpec:
    return MachineSpec(instance="cd" * 16, name="mig", vcpus=1, memory_mb=256,
                       kernel=kit.kernel, initrd=kit.initrd,
                       cmdline=f"{kit.cmdline} formation.counter", workdir=workdir,
                       serial_log=workdir / "serial.log")


async def test_a_counter_guest_migrates_and_keeps_counting(guest_kit: GuestKit,
                                                           tmp_path: Path) -> None:
    driver = QemuDriver("qemu-system-x86_64", "tcg")
    src_spec = spec_for(guest_kit, tmp_path / "a")
    dst_spec = spec_for(guest_kit, tmp_path / "b")
    source = await driver.create(src_spec)
    listen = f"127.0.0.1:{free_port()}"
    target = None
    try:
        await source.boot()
        await until(lambda: len(counters(src_spec.serial_log)) >= 5, BOOT_S,
                    what="the counter on the source")
        target = await driver.create_incoming(dst_spec, listen)
        assert await target.incoming_state() == "waiting"
        seen: list[MigrationProgress] = []
        await source.migrate(f"tcp:{listen}", seen.append)
        assert seen[-1].status == "completed" and seen[-1].downtime_ms is not None
        assert max(p.transferred_bytes for p in seen) > 1 << 20
        assert await target.incoming_state() == "running"
        before = counters(src_spec.serial_log)
        await until(lambda: len(counters(dst_spec.serial_log)) >= 5, 30,
                    what="the counter on the target")
        after = counters(dst_spec.serial_log)
        # the target continues the source's count: no restart from 0, no big jump
        assert after[0] > 0 and 0 < after[0] - before[-1] <= 30, (before[-5:], after[:5])
        assert after == sorted(after)
    finally:
        await source.destroy()
        if target is not None:
            await target.destroy()


async def test_a_migration_to_no_listener_fails_and_the_source_keeps_running(
        guest_kit: GuestKit, tmp_path: Path) -> None:
    driver = QemuDriver("qemu-system-x86_64", "tcg")
    spec = spec_for(guest_kit, tmp_path / "a")
    source = await driver.create(spec)
    try:
        await source.boot()
        with pytest.raises(VmmError, match=r"migration to tcp:127\.0\.0\.1:"):
            await source.migrate(f"tcp:127.0.0.1:{free_port()}", lambda p: None)
        assert (await source.info()).state == "running"
        n = len(counters(spec.serial_log))
        await until(lambda: len(counters(spec.serial_log)) > n + 3, BOOT_S,
                    what="the source still counting")
    finally:
        await source.destroy()
