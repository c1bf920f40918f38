"""`pack ship` on a 3-host lab (issue 17): typed on h1, the Formfile is really built there (the
builder engine with the machine's shared layer cache, so only the steps not cached yet and the
disk image are made), and the instance runs on the host placement picks, which fetched the
image's blobs from h1 and verified them.

So that the fetch is certain, h1 offers too little memory for the Formfile's MEM (its settings,
changed as an operator does it in the console): neither `pack ship` nor the Formfile pins a
host, so placement picks h2 or h3. What is checked on that host itself: its store holds every
part under its digest (re-hashed here), its log says each blob was fetched from h1, its API
shows the instance Running there, and it (and no other host) runs a VMM process for it. Running
as the node reports it is enough: the guest's Debian boot under TCG is not waited for."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from lab_running import cli, found_and_join, nodes_view, running_lab
from pack_build_support import CACHE
from waiting import until

from bench.support.replace_probe import running_once
from formation.api import console_routes, vm_routes
from formation.api.console_models import ResourceChoice, SettingsUpdate
from formation.lab import Lab
from formation.node.vmm.images.blob import hash_file
from formation.node.vmm.images.component import STORE_DIR

pytestmark = [pytest.mark.root, pytest.mark.qemu, pytest.mark.timeout(600)]

HOSTS = ("h1", "h2", "h3")
OVERRIDES = {"vmm": {"backend": "qemu", "stop_grace_s": 2, "boot_timeout_s": 120},
             "resources": {"cpus": 2, "memory_mb": 1536, "disk_gb": 20},
             "pack": {"cache_dir": str(CACHE)}}
H1_MEMORY_MB = 256  # below the Formfile's MEM: h1 cannot hold the instance
FORMFILE = ("NAME shipped\nVCPU 1\nMEM 512\nDISK 5\n"
            "COPY hello.sh /usr/local/bin/hello.sh\n"
            "RUN chmod 755 /usr/local/bin/hello.sh\n"
            'ENTRYPOINT ["/usr/local/bin/hello.sh"]\n')
HELLO = "#!/bin/sh\necho pack-ship-lab-marker\n"


def skip_unless_possible() -> None:
    if os.geteuid() != 0:
        pytest.skip("needs root (lab namespaces, image builds)")
    missing = [t for t in ("mmdebstrap", "unshare", "mkfs.ext4", "qemu-system-x86_64",
                           "qemu-img", "nsenter", "ip") if shutil.which(t) is None]
    if missing:
        pytest.skip(f"missing {', '.join(missing)} (scripts/system-packages.sh)")


async def _prepare(lab: Lab) -> None:
    """Network founded on h1, joined by h2 and h3; h1's offer lowered and seen by every host."""
    await found_and_join(lab, fields=("resources", "endpoints"))
    async with lab.client("h1") as client:
        await client.call(console_routes.update_settings, SettingsUpdate(
            resources=ResourceChoice(cpus=2, memory_mb=H1_MEMORY_MB, disk_gb=20)))

    async def lowered_everywhere() -> bool:
        views = [await nodes_view(lab, host) for host in HOSTS]
        return all(v.get("h1", {}).get("resources", {}).get("memory_mb") == H1_MEMORY_MB
                   for v in views)

    await until(lowered_everywhere, 60, what="h1's lowered offer in every host's nodes view")


@pytest.fixture(scope="module")
def lab() -> Iterator[Lab]:
    skip_unless_possible()
    with running_lab(3, pretrust=False, node_overrides=OVERRIDES) as made:
        asyncio.run(_prepare(made))
        yield made


def store_of(lab: Lab, host: str) -> Path:
    return lab.names.host_dir(lab.host(host).index) / "data" / STORE_DIR / "blobs"


def fetched_from_h1(lab: Lab, host: str, blob: str) -> bool:
    """The host's log has the fetcher's line for `blob` (12 hex) from peer h1 (logfmt, or the
    JSON log format)."""
    path = lab.log_path(host)
    lines = path.read_text(errors="replace").splitlines() if path.exists() else []
    return any("image blob fetched" in line and blob in line
               and ("peer=h1 " in f"{line} " or '"peer": "h1"' in line) for line in lines)


async def test_pack_ship_on_h1_runs_on_another_host_that_fetched_and_verified_the_image(
        lab: Lab, short_tmp: Path) -> None:
    context = short_tmp / "shipped"
    context.mkdir()
    (context / "Formfile").write_text(FORMFILE)
    (context / "hello.sh").write_text(HELLO)
    context.chmod(0o755)
    short_tmp.chmod(0o755)

    started = time.monotonic()
    out = await cli(lab, "h1", "pack", "ship", str(context), "--json", timeout_s=400)
    shipped_s = time.monotonic() - started
    assert out.returncode == 0, out.stderr
    shipped: dict[str, Any] = json.loads(out.stdout)
    build, created = shipped["build"], shipped["instance"]
    assert build["state"] == "done", build
    assert (created["name"], created["image"]) == ("shipped", build["image"])
    assert (created["vcpus"], created["memory_mb"], created["disk_gb"]) == (1, 512, 5)

    host = await until(lambda: running_once(lab, "shipped", created["id"], list(HOSTS)), 240,
                       every_s=0.5, what="'shipped' Running on one host, seen by every host")
    assert host in ("h2", "h3"), host  # h1 offers too little memory
    print(f"\npack ship on h1: {shipped_s:.1f} s (build and create); running on {host} "
          f"{time.monotonic() - started - shipped_s:.1f} s later (fetch and start)")

    # That host's own API: Running there, and the image held in its store.
    async with lab.client(host) as client:
        shown = (await client.call(vm_routes.vm_show, instance="shipped")).instance
        [image] = [i for i in (await client.call(vm_routes.image_list)).images
                   if i.digest == build["image"]]
    assert shown.state == "running" and shown.node_name == host
    assert image.local and set(image.parts) == {"kernel", "initrd", "disk"}

    # Its store holds every part under its digest, as the bytes say; each came from h1.
    for part, meta in image.parts.items():
        blob = store_of(lab, host) / meta.digest
        digest, size = await asyncio.to_thread(hash_file, blob)
        assert (digest, size) == (meta.digest, meta.size), part
        assert fetched_from_h1(lab, host, meta.digest[:12]), f"{part}: no fetch from h1 logged"

    # The host placement did not pick fetched nothing (an image is fetched where it runs).
    other = next(h for h in ("h2", "h3") if h != host)
    assert not any((store_of(lab, other) / m.digest).exists() for m in image.parts.values())
