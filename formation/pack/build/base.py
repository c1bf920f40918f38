"""The base system every workload image starts from: Debian, from the configured mirror, made
by mmdebstrap (apt-based, fast, reproducible with SOURCE_DATE_EPOCH) and cached as the bottom
layer, keyed by release, mirror, package set and this recipe.

What every image needs and the base therefore has:
  - systemd (systemd-sysv) as init, udev;
  - Debian's cloud kernel (linux-image-cloud-amd64) with an initramfs of only the modules a VM
    root needs: the QEMU driver boots `microvm`, whose devices are virtio-mmio (described in
    ACPI), and q35 for GPU guests, whose devices are virtio-pci; both busses, virtio-blk and
    ext4 are in (MODULES=list keeps the initramfs ~6 MB, quick to load under TCG);
  - cloud-init restricted to the NoCloud source, the seed the VM part attaches (label CIDATA),
    rendering its network config for systemd-networkd, with systemd-resolved for DNS;
  - a login on the serial console ttyS0 (serial-getty@ttyS0), root on /dev/vda (fstab).

mmdebstrap runs inside a private mount namespace too (it mounts /proc and /dev in the target
itself), so a cancelled base build leaves no mount behind. The .deb files it downloads go to
the shared apt cache (sync-in before, sync-out after), so a second base never downloads again.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal
from collections.abc import Callable
from pathlib import Path

from formation.pack.build.layers import LayerCache, key_of
from formation.pack.build.model import BuildError, clip

RECIPE = 2  # bump when the hooks or options below change what a base contains
PACKAGES = ("systemd-sysv", "udev", "dbus", "linux-image-cloud-amd64", "initramfs-tools",
            "cloud-init", "systemd-resolved", "iproute2", "netbase", "ca-certificates")
RELEASES = ("bookworm", "trixie", "bullseye", "sid", "unstable", "testing", "stable")
SOURCE_DATE_EPOCH = "1700000000"
# As Debian's slim container images: no manuals, documentation (but the copyright files) or
# translations, also for what INSTALL adds later (mmdebstrap leaves these in
# /etc/dpkg/dpkg.cfg.d/99mmdebstrap). A smaller tree is a faster disk image and a faster fetch.
DPKG_EXCLUDES = ("path-exclude=/usr/share/man/*", "path-exclude=/usr/share/info/*",
                 "path-exclude=/usr/share/doc/*", "path-include=/usr/share/doc/*/copyright",
                 "path-exclude=/usr/share/locale/*", "path-exclude=/usr/share/lintian/*")

SETUP = r"""
set -eu
r="$1"
mkdir -p "$r/etc/initramfs-tools/conf.d" "$r/etc/initramfs-tools/hooks"
echo MODULES=list > "$r/etc/initramfs-tools/conf.d/formation.conf"
cat > "$r/etc/initramfs-tools/hooks/formation" <<'HOOK'
#!/bin/sh
[ "$1" = prereqs ] && exit 0
. /usr/share/initramfs-tools/hook-functions
manual_add_modules virtio_mmio virtio_pci virtio_blk ext4
HOOK
chmod 755 "$r/etc/initramfs-tools/hooks/formation"
"""

CUSTOMIZE = r"""
set -eu
r="$1"
echo localhost > "$r/etc/hostname"
rm -f "$r/etc/resolv.conf"
ln -s ../run/systemd/resolve/stub-resolv.conf "$r/etc/resolv.conf"
echo '/dev/vda / ext4 rw,errors=remount-ro 0 1' > "$r/etc/fstab"
: > "$r/etc/machine-id"
mkdir -p "$r/etc/systemd/system/getty.target.wants"
ln -sf /lib/systemd/system/serial-getty@.service \
  "$r/etc/systemd/system/getty.target.wants/serial-getty@ttyS0.service"
chroot "$r" systemctl enable systemd-networkd.service systemd-resolved.service
# Without a NIC (or before the seed's is up) wait for any link, briefly, not 2 minutes.
mkdir -p "$r/etc/systemd/system/systemd-networkd-wait-online.service.d"
cat > "$r/etc/systemd/system/systemd-networkd-wait-online.service.d/formation.conf" <<'UNIT'
[Service]
ExecStart=
ExecStart=/lib/systemd/systemd-networkd-wait-online --any --timeout=20
UNIT
cat > "$r/etc/cloud/cloud.cfg.d/90-formation.cfg" <<'CFG'
datasource_list: [NoCloud, None]
system_info:
  network:
    renderers: [networkd]
CFG
"""


NUMBERS = {"11": "bullseye", "12": "bookworm", "13": "trixie"}


def release_of(base: str) -> str:
    """FROM's value: `debian:RELEASE`, `debian:12`, `debian` (bookworm) or a bare release."""
    name = base.split(":", 1)[1] if base.startswith("debian:") else base
    name = NUMBERS.get(name, "bookworm" if name == "debian" else name)
    if name not in RELEASES:
        raise BuildError(f"FROM {base}: expected debian:RELEASE with a Debian release "
                         f"({', '.join(RELEASES)})")
    return name


def base_key(release: str, mirror: str) -> str:
    return key_of("", {"base": release, "mirror": mirror, "packages": sorted(PACKAGES),
                       "dpkg": DPKG_EXCLUDES,
                       "recipe": RECIPE, "setup": SETUP, "customize": CUSTOMIZE})


async def build_base(cache: LayerCache, scratch: Path, release: str, mirror: str,
                     on_line: Callable[[str], None]) -> str:
    """Makes (or finds) the base layer; returns its key."""
    key = base_key(release, mirror)
    if cache.has(key):
        return key
    if shutil.which("mmdebstrap") is None:
        raise BuildError("FROM: building a base system needs mmdebstrap; install the Debian "
                         "package mmdebstrap (scripts/system-packages.sh)")
    job = scratch / f"base-{key[:12]}"
    await asyncio.to_thread(_fresh_dir, job)
    (job / "setup.sh").write_text(SETUP)
    (job / "customize.sh").write_text(CUSTOMIZE)
    root = job / "root"
    apt = str(cache.apt)
    args = [
        "unshare", "--mount", "--propagation", "private", "--",
        "mmdebstrap", "--mode=root", "--variant=apt", "--format=directory",
        "--skip=cleanup/apt/lists",  # INSTALL steps need the package lists
        "--skip=essential/unlink",  # keep the Essential .debs in the apt cache too
        *(f"--dpkgopt={opt}" for opt in DPKG_EXCLUDES),
        f"--include={','.join(PACKAGES)}",
        f"--setup-hook=mkdir -p '{apt}' \"$1\"/var/cache/apt/archives/",
        f"--setup-hook=sync-in '{apt}' /var/cache/apt/archives/",
        f"--setup-hook=sh '{job / 'setup.sh'}' \"$1\"",
        f"--customize-hook=sync-out /var/cache/apt/archives '{apt}'",
        f"--customize-hook=sh '{job / 'customize.sh'}' \"$1\"",
        release, str(root), mirror,
    ]
    env = {**os.environ, "SOURCE_DATE_EPOCH": SOURCE_DATE_EPOCH, "LANG": "C.UTF-8"}
    proc = await asyncio.create_subprocess_exec(
        *args, env=env, stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT, start_new_session=True)
    last = ""
    try:
        assert proc.stdout is not None
        async for raw in proc.stdout:
            text = raw.decode(errors="replace").strip()
            if text:
                last = text
                on_line(text)
        status = await proc.wait()
    finally:
        if proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            await asyncio.shield(proc.wait())
            await asyncio.to_thread(shutil.rmtree, job, True)
    if status != 0:
        await asyncio.to_thread(shutil.rmtree, job, True)
        raise BuildError(f"FROM debian:{release}: mmdebstrap from {mirror} exited with status "
                         f"{status}: {clip(last)}")
    await asyncio.to_thread(cache.commit, key, root,
                            {"label": f"base debian:{release}", "mirror": mirror})
    await asyncio.to_thread(shutil.rmtree, job, True)
    return key


def _fresh_dir(path: Path) -> None:
    shutil.rmtree(path, ignore_errors=True)
    path.mkdir(parents=True)
