"""`pack ship` for real: a tiny Formfile built on a node by the real builder engine
(formation/pack/build: mmdebstrap base, a layer per step, ext4 disk), the image added to the
network by an image.add that records the Formfile and this node as builder, and an instance of
it created with the Formfile's resources and started by the node's QEMU driver (TCG). Needs
root and the builder's tools; the layer cache is the machine's shared test cache, so the base
system is downloaded at most once per machine."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest
from waiting import until

from formation.api import vm_routes
from formation.api.client import NodeClient
from formation.node.state.image_formfile import source_text
from tests.integration.pack.pack_node import (
    image_add_payloads,
    pack_cli,
    pack_node,
    remove_instances,
    write_context,
)

pytestmark = [pytest.mark.root, pytest.mark.qemu, pytest.mark.timeout(1200)]
CACHE = Path(os.environ.get("FORMATION_PACK_CACHE") or "/var/cache/formation-pack-test")
TINY = ("NAME tiny\nVCPU 1\nMEM 512\nDISK 5\nCOPY hello.sh /usr/local/bin/hello.sh\n"
        "RUN chmod 755 /usr/local/bin/hello.sh\nENTRYPOINT [\"/usr/local/bin/hello.sh\"]\n"
        "EXPOSE 8080/tcp\n")
HELLO = "#!/bin/sh\necho packnode-e2e-marker\n"


def skip_unless_buildable() -> None:
    if os.geteuid() != 0:
        pytest.skip("building images needs root (mount namespaces, overlayfs, chroot)")
    for tool in ("mmdebstrap", "unshare", "mkfs.ext4", "qemu-system-x86_64"):
        if shutil.which(tool) is None:
            pytest.skip(f"{tool} is not installed (scripts/system-packages.sh)")


async def test_pack_ship_builds_adds_and_creates_for_real(short_tmp: Path) -> None:
    skip_unless_buildable()
    async with pack_node(short_tmp, None, pack={"cache_dir": str(CACHE)}) as node:
        web = write_context(short_tmp / "tiny", TINY, {"hello.sh": HELLO})
        try:
            code, out, err = await pack_cli(node, "ship", str(web), "--json")
            assert code == 0, err
            shipped = json.loads(out)
            build, instance = shipped["build"], shipped["instance"]
            assert build["state"] == "done" and build["image"], build
            assert build["steps"][0]["label"].startswith("base ")
            assert any(s["line"] == 5 for s in build["steps"])  # the COPY, by its line
            assert instance["name"] == "tiny" and instance["image"] == build["image"]
            assert (instance["vcpus"], instance["memory_mb"], instance["disk_gb"]) == (1, 512, 5)

            async with NodeClient.unix(node.settings.api.socket, timeout_s=30) as client:
                [image] = (await client.call(vm_routes.image_list)).images
                assert image.digest == build["image"] and image.local
                assert set(image.parts) == {"kernel", "initrd", "disk"}
                [payload] = await image_add_payloads(client)
                me = node.identity.public_key_hex if node.identity else ""
                assert payload["builder"] == me == payload["author"]
                assert payload["formfile"]["digest"] == build["context_digest"]
                assert source_text(payload["formfile"]) == TINY

                async def started() -> bool:
                    inst = (await client.call(vm_routes.vm_show, instance="tiny")).instance
                    assert inst.state != "failed", inst.reason
                    return inst.state in ("booting", "running")

                await until(started, 120, what="the shipped instance started by the VMM")
            assert not any((node.settings.data_dir / "pack-jobs").iterdir())
        finally:
            await remove_instances(node)
