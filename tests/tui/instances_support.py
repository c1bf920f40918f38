"""A node that runs instances for the console's tests: a real NodeService in a founded network,
its VMM QEMU with TCG (vmm.backend qemu; the probe's KVM boot test is off, so software
emulation, the same on every host), and the test guest kit's kernel and initramfs imported as
an image through the API. The guest prints GUEST_UP on its serial console once booted.

(The Cloud Hypervisor simulator cannot stand in here: a node chooses Cloud Hypervisor only
where the probe proved KVM boots guests, which this suite does not rely on.)"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from pathlib import Path

from settings_factory import make_settings
from waiting import until

from bench.support.guest_kit import GUEST_UP, GuestKit
from formation.api import state_routes, vm_routes
from formation.api.client import NodeClient
from formation.api.state_models import CreateNetworkRequest
from formation.api.vm_models import Image, ImageImport
from formation.config.settings import NodeSettings
from formation.node.service import NodeService
from tests.tui.conftest import write_config

BOOT_MARKER = GUEST_UP
FOUND_TIMEOUT_S = 9.5
BOOT_TIMEOUT_S = 90.0  # TCG on a loaded two-core machine: seconds, sometimes tens



def networkd(base: Path) -> dict[str, str]:
    return {"networkd_dir": str(base / "networkd")}  # never the host's own


def vm_settings(base: Path) -> NodeSettings:
    """A node that runs its instances with QEMU/TCG. The test guest powers off on the power
    button; the grace only bounds a guest too slow to."""
    return make_settings(base, underlay=networkd(base),
                         vmm={"backend": "qemu", "stop_grace_s": 2.0})


async def found_and_import(client: NodeClient, kit: GuestKit) -> Image:
    """The network founded and the guest imported: what a first instance needs."""
    await client.call(state_routes.state_create_network,
                      CreateNetworkRequest(name="lab", cidr="10.42.0.0/16"))
    return await client.call(vm_routes.image_import, ImageImport(
        name="guest", kernel=str(kit.kernel), initrd=str(kit.initrd), cmdline=kit.cmdline))


async def remove_instances(settings: NodeSettings) -> None:
    """Deletes every instance and waits until the node has ended them (their work dirs gone):
    a VMM outlives its node service by design (adopted on restart), so a test that stopped
    the node with guests running would leave them running after it."""
    run_dir = settings.data_dir / "vms"
    async with NodeClient.unix(settings.api.socket, timeout_s=FOUND_TIMEOUT_S) as client:
        for instance in (await client.call(vm_routes.vm_list)).instances:
            await client.call(vm_routes.vm_delete, instance=instance.id)
    await until(lambda: not run_dir.exists() or not any(run_dir.iterdir()), BOOT_TIMEOUT_S,
                what=f"every VM of {run_dir} ended")


@contextlib.asynccontextmanager
async def vm_node(base: Path, kit: GuestKit) -> AsyncIterator[tuple[NodeService, Image]]:
    settings = vm_settings(base)
    service = NodeService(settings, write_config(base, underlay=networkd(base)))
    await service.start()
    try:
        async with NodeClient.unix(settings.api.socket, timeout_s=FOUND_TIMEOUT_S) as client:
            image = await found_and_import(client, kit)
        yield service, image
    finally:
        try:
            await remove_instances(settings)
        finally:
            await service.stop()
