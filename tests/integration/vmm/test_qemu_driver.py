"""The QEMU driver against real QEMU/TCG guests (the guest kit: Debian's cloud kernel and a
busybox initramfs): the whole lifecycle, a root disk, adoption by a second driver, and a guest
that panics."""

from __future__ import annotations

import asyncio
import os
import subprocess
from pathlib import Path

import pytest
from waiting import until

from bench.support.guest_kit import BROKEN_MARKER, DISK_MARKER, DISK_TEXT, GUEST_UP, GuestKit
from formation.node.vmm import qemu_args
from formation.node.vmm.machine import MachineGone, MachineSpec
from formation.node.vmm.qemu import QemuDriver, QemuMachine

pytestmark = pytest.mark.qemu
BOOT_S = 40.0  # a ~2 s boot, on a machine shared by many test processes


def spec_for(kit: GuestKit, workdir: Path, **changes: object) -> MachineSpec:
    values: dict = dict(instance="ab" * 16, name="t1", vcpus=1, memory_mb=256,
                        kernel=kit.kernel, initrd=kit.initrd, cmdline=kit.cmdline,
                        workdir=workdir, serial_log=workdir / "serial.log")
    values.update(changes)
    return MachineSpec(**values)


def serial(spec: MachineSpec) -> str:
    try:
        return spec.serial_log.read_text(errors="replace")
    except FileNotFoundError:
        return ""


async def until_serial(spec: MachineSpec, text: str, count: int = 1) -> None:
    await until(lambda: serial(spec).count(text) >= count, BOOT_S, what=f"{text!r} x{count}",
                context=lambda: "\n".join(serial(spec).splitlines()[-15:]))


async def gone(machine: QemuMachine) -> bool:
    try:
        await machine.info()
    except MachineGone:
        return True
    return False


def qemu_pids(workdir: Path) -> list[int]:
    out = subprocess.run(["pgrep", "-f", str(workdir / qemu_args.QMP_SOCKET)],
                         capture_output=True, text=True).stdout
    return [int(p) for p in out.split()]


async def console(spec: MachineSpec, line: str, expect: str) -> str:
    """Types a line on the serial console socket (what `vm console` does) and reads until
    `expect` is echoed back by the guest's shell."""
    reader, writer = await asyncio.open_unix_connection(str(spec.workdir /
                                                             qemu_args.CONSOLE_SOCKET))
    try:
        writer.write(line.encode() + b"\n")
        await writer.drain()
        seen = b""
        while expect.encode() not in seen:
            chunk = await asyncio.wait_for(reader.read(4096), 20)
            assert chunk, f"console closed; saw {seen!r}"
            seen += chunk
        return seen.decode(errors="replace")
    finally:
        writer.close()


@pytest.fixture
def driver() -> QemuDriver:
    return QemuDriver("qemu-system-x86_64", "tcg")


async def test_lifecycle_create_boot_pause_shutdown_power_off_start_resize(
        guest_kit: GuestKit, driver: QemuDriver, tmp_path: Path) -> None:
    spec = spec_for(guest_kit, tmp_path / "vm")
    machine = await driver.create(spec)
    try:
        created = await machine.info()
        assert (created.state, created.vcpus, created.memory_mb) == ("created", 1, 256)
        assert (spec.workdir / qemu_args.PID_FILE).read_text().strip() == str(machine.pid)
        await machine.boot()
        await until_serial(spec, GUEST_UP)
        assert (await machine.info()).state == "running"
        # The serial console answers: a command typed on its socket runs in the guest.
        assert "answer=42" in await console(spec, "echo answer=$((6*7))", "answer=42")

        await machine.pause()
        assert (await machine.info()).state == "paused"
        await machine.resume()
        assert (await machine.info()).state == "running"

        # shutdown: the guest stops at once, the process stays; boot starts it over.
        await machine.shutdown()
        assert (await machine.info()).state == "shutdown"
        await machine.boot()
        await until_serial(spec, GUEST_UP, count=2)

        # reboot resets the guest without ending the process (it runs with -no-reboot).
        await machine.reboot()
        await until_serial(spec, GUEST_UP, count=3)
        assert (await machine.info()).state == "running"

        # The ACPI power button: the guest's acpid powers it off and QEMU exits.
        await machine.power_button()
        await until(lambda: gone(machine), BOOT_S, what="QEMU exit after the power button")
        await machine.destroy()  # idempotent on a machine that is gone
        assert not (spec.workdir / qemu_args.QMP_SOCKET).exists()

        # Start again in the same workdir: the serial log keeps growing.
        machine = await driver.create(spec)
        await machine.boot()
        await until_serial(spec, GUEST_UP, count=4)
        # microvm cannot hotplug: a resize asks for a cold restart; the same size is a no-op.
        assert await machine.resize(2, 256) is False
        assert await machine.resize(1, 256) is True
        counters = await machine.counters()
        assert isinstance(counters, dict)
    finally:
        pid = machine.pid
        await machine.destroy()
    assert await gone(machine)
    assert pid is not None and not Path(f"/proc/{pid}").exists()
    assert qemu_pids(spec.workdir) == []


async def test_guest_with_a_root_disk_reads_its_marker(
        guest_kit: GuestKit, driver: QemuDriver, tmp_path: Path) -> None:
    workdir = tmp_path / "vm"
    workdir.mkdir()
    overlay = workdir / "disk.qcow2"
    made = await asyncio.create_subprocess_exec(
        "qemu-img", "create", "-q", "-f", "qcow2", "-b", str(guest_kit.disk), "-F", "raw",
        str(overlay), "64M")
    assert await made.wait() == 0
    spec = spec_for(guest_kit, workdir, disk=overlay)
    machine = await driver.create(spec)
    try:
        await machine.boot()
        await until_serial(spec, f"{DISK_MARKER} {DISK_TEXT}")
        counters = await machine.counters()
        assert counters and max(c.get("rd-bytes", 0) for c in counters.values()) > 0, counters
    finally:
        await machine.destroy()


async def test_second_driver_adopts_the_running_vm_and_nothing_runs_twice(
        guest_kit: GuestKit, driver: QemuDriver, tmp_path: Path) -> None:
    spec = spec_for(guest_kit, tmp_path / "vm")
    first = await driver.create(spec)
    try:
        await first.boot()
        await until_serial(spec, GUEST_UP)
        # A restarted node service: a new driver object, only the spec (workdir) in hand.
        adopted = await QemuDriver("qemu-system-x86_64", "tcg").adopt(spec)
        assert adopted is not None
        assert adopted.pid == first.pid
        assert (await adopted.info()).state == "running"
        assert qemu_pids(spec.workdir) == [first.pid]
        assert "adopted=ok" in await console(spec, "echo adopted=ok", "adopted=ok")
        await adopted.destroy()
        assert await gone(first)
        assert qemu_pids(spec.workdir) == []
    finally:
        await first.destroy()
    # Nothing left to adopt: stale files are cleaned, and adopt says None.
    (spec.workdir / qemu_args.PID_FILE).write_text(f"{os.getpid()}\n")
    assert await driver.adopt(spec) is None
    assert not (spec.workdir / qemu_args.PID_FILE).exists()


async def test_broken_guest_panics_and_the_machine_is_gone_with_the_panic_on_serial(
        guest_kit: GuestKit, driver: QemuDriver, tmp_path: Path) -> None:
    spec = spec_for(guest_kit, tmp_path / "vm", initrd=guest_kit.broken_initrd)
    machine = await driver.create(spec)
    try:
        await machine.boot()
        await until(lambda: gone(machine), BOOT_S, what="QEMU exit after the guest's panic",
                    context=lambda: serial(spec)[-2000:])
        with pytest.raises(MachineGone, match="has exited"):
            await machine.info()
        tail = serial(spec)
        assert BROKEN_MARKER in tail
        assert "Kernel panic" in tail
    finally:
        await machine.destroy()
