"""The NoCloud seed: how a cloud image (Debian's, Ubuntu's: cloud-init) learns its address,
gateway, DNS server and hostname without a hand-made image. cloud-init's NoCloud source looks
for a filesystem labelled CIDATA holding `meta-data`, `user-data` and `network-config`
(network config version 2); the driver attaches it as a second, read-only virtio disk.

The image is vfat, made with real tools (dosfstools' mkfs.vfat, mtools' mcopy: no loop mount,
no root). The files are JSON, which is YAML, so nothing here needs a YAML library. Kernels
booted directly learn the same from the `ip=` argument instead (vm_network.Attachment).

When the network has a CA for `.fog` names (state `ca` view, `formation ca init`), its root
goes into user-data as cloud-init's `ca_certs: {trusted: [...]}`, so the guest's system trust
store holds it before anything in the guest connects to a `.fog` host; and as `fog-ca.pem` on
the same disk, for guests without cloud-init (busybox images booted with `ip=`) to pick up."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import TYPE_CHECKING

from formation.node.vmm.machine import GUEST_MTU, Nic, VmmError

if TYPE_CHECKING:
    from formation.node.net.vm_network import Attachment

SEED = "seed.img"
SIZE_KIB = 1024  # the files are a few hundred bytes; vfat's minimum is tiny too
CA_FILE = "fog-ca.pem"  # the network CA's root, for guests without cloud-init


def user_data(trusted_ca: str | None) -> str:
    """cloud-config: nothing, or the network CA's root to trust (cloud-init's ca_certs)."""
    if trusted_ca is None:
        return "#cloud-config\n{}\n"
    config = {"ca_certs": {"trusted": [trusted_ca]}}
    return "#cloud-config\n" + json.dumps(config, indent=1) + "\n"


def files(instance: str, att: Attachment, trusted_ca: str | None = None) -> dict[str, str]:
    """meta-data, user-data and network-config for one instance, and the network CA's root when
    there is one (pure, for tests)."""
    meta = {"instance-id": instance, "local-hostname": att.hostname}
    eth = {
        "match": {"macaddress": att.mac},
        "set-name": "eth0",
        "mtu": GUEST_MTU,
        "addresses": [f"{att.address}/{att.prefix}"],
        "routes": [{"to": "0.0.0.0/0", "via": att.gateway, "on-link": True}],
        "nameservers": {"addresses": [att.dns]},
    }
    network = {"version": 2, "ethernets": {"eth0": eth}}
    return {
        "meta-data": json.dumps(meta, indent=1) + "\n",
        "user-data": user_data(trusted_ca),
        "network-config": json.dumps(network, indent=1) + "\n",
        **({CA_FILE: trusted_ca} if trusted_ca is not None else {}),
    }


async def write(workdir: Path, instance: str, att: Attachment,
                trusted_ca: str | None = None) -> Path:
    """Builds workdir/seed.img afresh (the address, and the network CA, may differ from the
    last boot's)."""
    image = workdir / SEED
    staging = workdir / "seed.d"
    content = files(instance, att, trusted_ca)

    def stage() -> None:
        staging.mkdir(exist_ok=True)
        image.unlink(missing_ok=True)
        for name, text in content.items():
            (staging / name).write_text(text)

    await asyncio.to_thread(stage)
    await _run(["mkfs.vfat", "-C", "-n", "CIDATA", str(image), str(SIZE_KIB)])
    await _run(["mcopy", "-o", "-i", str(image), *(str(staging / n) for n in content), "::"])
    return image


async def boot_network(att: Attachment | None, workdir: Path, instance: str, cmdline: str,
                       trusted_ca: str | None = None) -> tuple[tuple[Nic, ...], Path | None,
                                                               str]:
    """What a MachineSpec gets from an attachment: its NICs, the seed disk (written now) and the
    command line with `ip=` appended (unless the image's or spec's own has one). No network
    (None): nothing. The reconciler's start and a migration's target build the same VM."""
    if att is None:
        return (), None, cmdline
    disk = await write(workdir, instance, att, trusted_ca)
    if " ip=" not in f" {cmdline}":
        cmdline = f"{cmdline} {att.cmdline}"
    return att.nics, disk, cmdline


async def _run(args: list[str]) -> None:
    try:
        proc = await asyncio.create_subprocess_exec(
            *args, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE)
    except OSError as exc:
        raise VmmError(f"seed: cannot run {args[0]} ({exc.strerror}); install the Debian "
                       "packages dosfstools and mtools") from None
    _, err = await proc.communicate()
    if proc.returncode != 0:
        lines = err.decode(errors="replace").strip().splitlines()
        raise VmmError(f"seed: {args[0]} failed: {lines[-1] if lines else proc.returncode}")
