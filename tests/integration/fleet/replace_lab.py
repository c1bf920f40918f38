"""The lab of the self-replication tests (its own file: conftest.py here is the fleet tests').
Three hosts running QEMU (TCG where there is no KVM), a network founded on h1 and joined by h2
and h3, and the test guest (kernel + busybox initramfs, no data disk) imported on every host,
so that whichever host is killed, the others hold the image: what is measured is re-placement,
not an image fetch from a dead host."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from guest_kit_skip import guest_kit_or_skip
from lab_running import found_and_join, running_lab

from bench.support.guest_kit import GuestKit
from formation.api import p2p_routes, routes, vm_routes
from formation.api import vm_models as vm
from formation.lab import Lab

HOSTS = ("h1", "h2", "h3")
BOOT_S = 90
OVERRIDES = {"vmm": {"backend": "qemu", "stop_grace_s": 2, "boot_timeout_s": BOOT_S,
                     "replace_after_s": 1.0, "start_sync_wait_s": 120},
             "resources": {"cpus": 2, "memory_mb": 1536, "disk_gb": 20}}


@dataclass
class ReplaceLab:
    lab: Lab
    kit: GuestKit
    image: str  # the guest's digest (one image, imported on every host under its own name)


async def _prepare(lab: Lab, kit: GuestKit) -> str:
    await found_and_join(lab, fields=("resources", "endpoints"))
    digests = set()
    for host in HOSTS:
        async with lab.client(host) as client:
            image = await client.call(vm_routes.image_import, vm.ImageImport(
                name=f"guest-{host}", kernel=str(kit.kernel), initrd=str(kit.initrd),
                cmdline=kit.cmdline))
        digests.add(image.digest)
    [digest] = digests
    return digest


@pytest.fixture(scope="module", name="rl")
def replace_lab_fixture() -> Iterator[ReplaceLab]:
    """Import it into a test module (`from replace_lab import replace_lab_fixture`); tests
    take it as `rl`."""
    kit = guest_kit_or_skip()
    with running_lab(3, pretrust=False, node_overrides=OVERRIDES) as lab:
        yield ReplaceLab(lab, kit, asyncio.run(_prepare(lab, kit)))


async def vmm_health(lab: Lab, host: str) -> str:
    async with lab.client(host) as client:
        health = await client.call(routes.health)
    return next((c.detail for c in health.checks if c.name == "vmm"), "")


async def member_states(lab: Lab, host: str) -> dict[str, str]:
    async with lab.client(host) as client:
        return {m.name: m.state for m in (await client.call(p2p_routes.members)).members}


def vm_logs(lab: Lab) -> str:
    """The lines of each host's node log about VMs and placement (for a failure's context)."""
    found = []
    for host in HOSTS:
        path = lab.log_path(host)
        lines = path.read_text(errors="replace").splitlines() if path.exists() else []
        found += [f"{host}: {line[:300]}" for line in lines
                  if "vm" in line.lower() or "instance" in line][-12:]
    return "\n".join(found)
