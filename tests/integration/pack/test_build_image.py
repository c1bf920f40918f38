"""The builder for real: the issue's small Formfile (INSTALL, COPY, ENV, ENTRYPOINT printing a
marker) becomes an image that boots under QEMU/TCG with the project's QEMU driver and prints
the marker on the serial console; a rebuild with only the last line changed builds only that
line (and the finishing steps); a failing RUN names its line and leaves nothing; a cancelled
build leaves no mount and no process. One layer cache per machine: the first run ever
downloads the base system (about a minute), every later one reuses it."""

from __future__ import annotations

import asyncio
import hashlib
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from pack_build_support import (
    CACHE,
    MARKER,
    Recorder,
    context,
    layers_now,
    overlay_mounts,
    qcow2_over,
    remove_new_layers,
    settings,
    skip_unless_buildable,
    small_spec,
)
from waiting import until

from formation.node.net.vm_network import Attachment
from formation.node.vmm import seed
from formation.node.vmm.machine import MachineSpec, Nic
from formation.node.vmm.qemu import QemuDriver
from formation.pack.build import BuildError, BuiltImage, build_image, context_digest
from formation.pack.spec import FormfileSpec, Run

pytestmark = [pytest.mark.root, pytest.mark.timeout(900)]
BOOT_S = 600.0  # a whole Debian boot under TCG on a shared machine: minutes, not seconds
GUEST_MAC, GUEST_IP, HOST_IP = "52:54:00:d5:4d:02", "10.213.77.2", "10.213.77.1"


@dataclass
class Built:
    image: BuiltImage
    progress: Recorder
    seconds: float
    base_seconds: float
    context: Path


def _build(spec: FormfileSpec, ctx: Path, out: Path) -> tuple[BuiltImage, Recorder, float]:
    rec = Recorder()
    started = time.monotonic()
    image = asyncio.run(build_image(spec, ctx, settings(), out, rec))
    return image, rec, time.monotonic() - started


@pytest.fixture(scope="module")
def first(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Built]:
    skip_unless_buildable()
    before = layers_now() if (CACHE / "l").is_dir() else set()
    try:
        root = tmp_path_factory.mktemp("pack")
        ctx = context(root / "ctx")
        image, rec, seconds = _build(small_spec(), ctx, root / "out")
        base_seconds = rec.started.get(1, 0.0) - rec.started.get(0, 0.0)
        print(f"\nfirst build: {seconds:.1f} s (base {base_seconds:.1f} s, "
              f"{'cached' if rec.steps()[0].cached else 'built'}), "
              f"disk {image.disk.stat().st_size / 2**20:.0f} MiB")
        yield Built(image, rec, seconds, base_seconds, ctx)
    finally:
        remove_new_layers(before)


def _sha(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        while block := f.read(1 << 22):
            h.update(block)
    return h.hexdigest()


async def test_small_formfile_builds_and_boots_to_its_marker(first: Built,
                                                             tmp_path: Path) -> None:
    image, rec = first.image, first.progress
    assert sorted(p.name for p in image.disk.parent.iterdir()) == ["disk.img", "initrd",
                                                                   "kernel"]
    assert image.cmdline == "root=/dev/vda rw console=ttyS0"
    assert image.context_digest == context_digest(small_spec(), first.context)
    # Progress: every step in order, named with its Formfile line, fractions rising to 1.
    steps = rec.steps()
    assert [(p.step, p.line) for p in steps.values()] == [
        (0, None), (1, 2), (2, 3), (3, 4), (4, 5), (5, 6), (6, 7), (7, None), (8, None)]
    assert steps[2].label == "INSTALL jq" and steps[8].label == "disk image"
    assert {p.total for p in rec.seen} == {8}
    fractions = [p.fraction for p in rec.seen]
    assert fractions == sorted(fractions) and fractions[-1] == 1.0
    assert all(len(p.message) <= 200 for p in rec.seen)
    assert any(p.message for p in rec.seen if p.step == 2)  # apt's output came through

    workdir = tmp_path / "vm"
    workdir.mkdir()
    # The NoCloud seed the VM part attaches, and a NIC on a host tap: the guest's hostname and
    # its address (the host pings it) show that cloud-init read the seed and networkd applied it.
    tap = f"fpk{os.getpid() % 100000}"
    attachment = Attachment(nics=(Nic(tap, GUEST_MAC),), address=GUEST_IP, prefix=24,
                            gateway=HOST_IP, dns=HOST_IP, hostname="packguest", mac=GUEST_MAC)
    nics, seed_disk, cmdline = await seed.boot_network(attachment, workdir, "fb" * 16,
                                                       image.cmdline)
    spec = MachineSpec(instance="fb" * 16, name="pack", vcpus=1, memory_mb=512,
                       kernel=image.kernel, initrd=image.initrd, cmdline=cmdline,
                       workdir=workdir, serial_log=workdir / "serial.log",
                       disk=qcow2_over(image.disk, workdir / "disk.qcow2"), nics=nics,
                       seed=seed_disk)

    def serial() -> str:
        return spec.serial_log.read_text(errors="replace") if spec.serial_log.exists() else ""

    await _sh("ip", "tuntap", "add", tap, "mode", "tap")
    try:
        await _sh("ip", "addr", "add", f"{HOST_IP}/24", "dev", tap)
        await _sh("ip", "link", "set", tap, "up")
        machine = await QemuDriver("qemu-system-x86_64", "tcg").create(spec)
        try:
            started = time.monotonic()
            await machine.boot()
            await until(lambda: f"{MARKER}: hi there from /srv" in serial(), BOOT_S,
                        every_s=0.5, what="the ENTRYPOINT's marker on the serial console",
                        context=lambda: "\n".join(serial().splitlines()[-20:]))
            print(f"\nboot to marker (TCG): {time.monotonic() - started:.1f} s")
            assert f"{MARKER}: hi there from /srv on packguest" in serial()
            await until(lambda: _pings(GUEST_IP), 180, every_s=1,
                        what=f"the guest answering on {GUEST_IP} (the seed's address)",
                        context=lambda: "\n".join(serial().splitlines()[-20:]))
            print(f"boot to network (TCG): {time.monotonic() - started:.1f} s")
        finally:
            await machine.destroy()
    finally:
        await _sh("ip", "tuntap", "del", tap, "mode", "tap")


async def _sh(*args: str) -> None:
    proc = await asyncio.create_subprocess_exec(*args, stderr=asyncio.subprocess.PIPE)
    _, err = await proc.communicate()
    assert proc.returncode == 0, f"{' '.join(args)}: {err.decode().strip()}"


async def _pings(address: str) -> bool:
    proc = await asyncio.create_subprocess_exec(
        "busybox", "ping", "-c", "1", "-W", "1", address,
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL)
    return await proc.wait() == 0


def test_rebuild_with_the_last_line_changed_builds_only_that_line(first: Built,
                                                                  tmp_path: Path) -> None:
    spec = small_spec(last=Run(7, "echo changed > /srv/changed"))
    image, rec, seconds = _build(spec, first.context, tmp_path / "out")
    assert rec.cached() == [p.label for p in first.progress.steps().values()][:6]
    assert rec.built() == ["RUN echo changed > /srv/changed", "system setup", "disk image"]
    full = first.seconds - (first.base_seconds if not first.progress.steps()[0].cached else 0)
    print(f"\nrebuild, last line changed: {seconds:.1f} s (full build without the base "
          f"{full:.1f} s, ratio {seconds / full:.2f}); steps before the disk image: "
          f"{rec.seconds_before_disk():.1f} s vs "
          f"{first.progress.seconds_before_disk() - first.base_seconds:.1f} s")
    # The disk image is made anew either way; the steps before it are what the cache saves.
    assert rec.seconds_before_disk() < \
        first.progress.seconds_before_disk() - first.base_seconds
    assert image.context_digest != first.image.context_digest


def test_same_inputs_give_the_same_bytes(first: Built, tmp_path: Path) -> None:
    image, rec, _ = _build(small_spec(), first.context, tmp_path / "out")
    assert rec.built() == ["disk image"]
    for part in ("kernel", "initrd", "disk"):
        assert _sha(getattr(image, part)) == _sha(getattr(first.image, part)), part


def test_a_failing_run_names_its_line_and_leaves_nothing(first: Built,
                                                         tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()  # an empty directory given as `out` stays empty
    spec = small_spec(last=Run(7, "echo about to fail >&2; exit 3"))
    with pytest.raises(BuildError) as caught:
        _build(spec, first.context, out)
    assert caught.value.line == 7
    assert str(caught.value) == ("Formfile line 7 (RUN echo about to fail >&2; exit 3): "
                                 "exited with status 3: about to fail")
    assert list(out.iterdir()) == []
    assert [p.name for p in tmp_path.iterdir()] == ["out"]  # no staging directory left
    assert overlay_mounts() == []
    assert not (CACHE / "work").exists()


async def test_a_cancelled_build_leaves_no_mount_and_no_process(first: Built,
                                                                tmp_path: Path) -> None:
    rec = Recorder()
    out = tmp_path / "out"
    spec = small_spec(last=Run(7, "echo started-6543; sleep 6543"))
    task = asyncio.create_task(build_image(spec, first.context, settings(), out, rec))
    await until(lambda: any(p.message == "started-6543" for p in rec.seen) or task.done(),
                60, what="the RUN step's first output")
    assert not task.done()
    assert overlay_mounts() == []  # the step's mounts are in its own namespace, even now
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert not out.exists() and overlay_mounts() == []
    assert not (CACHE / "work").exists()
    assert not [pid for pid in os.listdir("/proc") if pid.isdigit() and
                _cmdline(pid) == b"sleep\x006543\x00"]


def _cmdline(pid: str) -> bytes:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return b""
