"""What bench/pack.py builds, boots and reports, kept apart from the benchmark so a unit test
can check it fast (tests/unit/bench/test_pack_probe.py) and a lab test could reuse it: the
small Formfile of issue 17 as text (it goes through the real parser before every build), the
layer cache the pack build tests share (so a benchmark after the tests, or the tests after a
benchmark, finds the base system and the .deb files already there), and booting a built image
under the project's QEMU driver to its ENTRYPOINT's marker.

A benchmark must not import tests/, so the cache's path is defined here and
tests/integration/pack/pack_build_support.py imports it (FORMATION_PACK_CACHE moves it)."""

from __future__ import annotations

import asyncio
import os
import time
from pathlib import Path

from formation.node.net.vm_network import Attachment
from formation.node.vmm import seed
from formation.node.vmm.machine import MachineSpec
from formation.node.vmm.qemu import QemuDriver
from formation.pack.build import BuiltImage

from .serial_watch import SerialWatch

CACHE = Path(os.environ.get("FORMATION_PACK_CACHE") or "/var/cache/formation-pack-test")
MARKER = "formation-bench-pack-marker"
HELLO = f'#!/bin/sh\necho "{MARKER}: $GREETING from $(pwd)"\n'
LAST_LINE = 8  # the line a rebuild changes


def formfile_text(run_id: str, last: str = "RUN jq -n '{built: true}' > /srv/built.json") -> str:
    """The issue's small Formfile (one INSTALL, a COPY, an ENV, an ENTRYPOINT printing a marker).
    Its first step names the run, so every step after it is really built (not found in the
    cache from an earlier run) while the base and the apt archive stay warm; `last` is line 8."""
    return (f"NAME bench-pack\n"
            f"RUN echo {run_id} > /etc/formation-bench-run\n"
            f"INSTALL jq\n"
            f"COPY hello.sh /usr/local/bin/hello\n"
            f"ENV GREETING=hi\n"
            f"WORKDIR /srv\n"
            f"# the line below is the one the rebuild changes\n"
            f"{last}\n"
            f'ENTRYPOINT ["/usr/local/bin/hello"]\n')


def write_context(directory: Path) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    hello = directory / "hello.sh"
    hello.write_text(HELLO)
    hello.chmod(0o755)
    return directory


def image_mb(image: BuiltImage) -> float:
    """The bytes an image adds to the store: kernel, initrd and disk (apparent sizes, what a
    fetch from another node transfers)."""
    return sum(p.stat().st_size for p in (image.kernel, image.initrd, image.disk)) / 2**20


def results(parse_per_s: float, build_s: float | None, rebuild_s: float | None,
            image_size_mb: float | None, boot_s: float | None,
            unmeasured: dict[str, str]) -> dict[str, object]:
    """The benchmark's JSON object: a figure that could not be measured is null, and the
    reason is under `unmeasured` (as bench/fleet.py does)."""
    ratio = None if build_s is None or rebuild_s is None or build_s <= 0 else rebuild_s / build_s
    return {"parse_per_s": round(parse_per_s),
            "build_s": None if build_s is None else round(build_s, 1),
            "rebuild_last_line_s": None if rebuild_s is None else round(rebuild_s, 1),
            "rebuild_ratio": None if ratio is None else round(ratio, 2),
            "rebuild_ratio_target": 0.3,
            "image_mb": None if image_size_mb is None else round(image_size_mb, 1),
            "boot_to_entrypoint_s": None if boot_s is None else round(boot_s, 1),
            "boot_emulation": "tcg",
            "unmeasured": unmeasured}


async def boot_to_marker(image: BuiltImage, workdir: Path, timeout_s: float) -> float:
    """Seconds from the QEMU driver's boot call (TCG) to the ENTRYPOINT's marker on the serial
    console, seen by inotify. The guest gets the NoCloud seed the VM part attaches and a qcow2
    disk over the image's, as an instance does; no NIC (the marker needs none)."""
    workdir.mkdir(parents=True, exist_ok=True)
    disk = workdir / "disk.qcow2"
    qemu_img = await asyncio.create_subprocess_exec(
        "qemu-img", "create", "-q", "-f", "qcow2", "-b", str(image.disk), "-F", "raw",
        str(disk))
    if await qemu_img.wait() != 0:
        raise RuntimeError("qemu-img create failed")
    attachment = Attachment(nics=(), address="10.77.0.2", prefix=24, gateway="10.77.0.1",
                            dns="10.77.0.1", hostname="benchpack", mac="52:54:00:77:00:02")
    spec = MachineSpec(instance="be" * 16, name="benchpack", vcpus=1, memory_mb=512,
                       kernel=image.kernel, initrd=image.initrd, cmdline=image.cmdline,
                       workdir=workdir, serial_log=workdir / "serial.log", disk=disk,
                       seed=await seed.write(workdir, "be" * 16, attachment))
    machine = await QemuDriver("qemu-system-x86_64", "tcg").create(spec)
    try:
        with SerialWatch(workdir, "serial.log", (MARKER,)) as watch:
            started = time.time()
            await machine.boot()
            log = await asyncio.to_thread(watch.wait_marker, MARKER, timeout_s)
            return log.markers[MARKER] - started
    finally:
        await machine.destroy()
