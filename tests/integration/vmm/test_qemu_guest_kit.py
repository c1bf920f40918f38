"""The guest kit: built once per cache even when test processes ask at the same time, with the
virtio modules in an order the guest can load them (a dependency before its user)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from bench.support.guest_kit import GuestKit

REPO = Path(__file__).resolve().parents[3]


def test_initramfs_loads_dependencies_first(guest_kit: GuestKit) -> None:
    listing = subprocess.run(["cpio", "-i", "--quiet", "--to-stdout", "lib/modules/order"],
                             stdin=guest_kit.initrd.open("rb"), capture_output=True, text=True,
                             check=True).stdout.split()
    for before, after in [("virtio", "virtio_mmio"), ("virtio_ring", "virtio_blk"),
                          ("failover", "net_failover"), ("net_failover", "virtio_net")]:
        assert listing.index(before) < listing.index(after), listing
    assert {"virtio_mmio", "virtio_pci", "virtio_blk", "virtio_net", "button", "evdev"} \
        <= set(listing)
    assert guest_kit.disk.stat().st_size > 0 and guest_kit.kernel.stat().st_size > 1_000_000


@pytest.mark.slow  # downloads the kernel package again into a fresh cache
@pytest.mark.timeout(300)
def test_parallel_processes_share_one_build(guest_kit: GuestKit, tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    code = "from bench.support.guest_kit import build_guest_kit; print(build_guest_kit().kernel)"
    env = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "PYTHONPATH": str(REPO),
           "FORMATION_GUEST_CACHE": str(cache)}
    procs = [subprocess.Popen([sys.executable, "-c", code], env=env, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True) for _ in range(2)]
    outs = [p.communicate(timeout=280) for p in procs]
    for proc, (_out, err) in zip(procs, outs, strict=True):
        if "Unavailable" in err:
            pytest.skip(f"no fresh build here: {err.strip().splitlines()[-1]}")
        assert proc.returncode == 0, err
    assert outs[0][0] == outs[1][0]
    builds = [p for p in cache.iterdir() if not p.name.startswith(".")]
    assert len(builds) == 1, builds  # one keyed build, no leftover temporary directories
