"""The NoCloud seed carries the network CA's root: cloud-init's ca_certs in user-data, and
fog-ca.pem on the disk for guests without cloud-init. Real vfat image, read back with mtools."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import yaml

from formation.node.edge import fog_ca
from formation.node.net.vm_network import Attachment
from formation.node.vmm import seed
from formation.node.vmm.machine import Nic

ATT = Attachment((Nic("fvmabc", "02:00:00:00:00:01"),), "10.88.1.2", 24, "10.88.1.1",
                 "10.88.1.1", "web-1", "02:00:00:00:00:01")
ROOT, _KEY = fog_ca.make_root("lab")


def test_user_data_trusts_the_root_through_cloud_inits_ca_certs() -> None:
    files = seed.files("inst", ATT, ROOT)
    text = files["user-data"]
    assert text.startswith("#cloud-config\n")
    assert yaml.safe_load(text) == {"ca_certs": {"trusted": [ROOT]}}  # YAML, as cloud-init reads
    assert files[seed.CA_FILE] == ROOT
    bare = seed.files("inst", ATT)
    assert yaml.safe_load(bare["user-data"]) == {} and seed.CA_FILE not in bare
    assert json.loads(bare["network-config"])["version"] == 2


async def _mtype(image: Path, name: str) -> str:
    proc = await asyncio.create_subprocess_exec("mtype", "-i", str(image), f"::{name}",
                                                stdout=asyncio.subprocess.PIPE)
    out, _ = await proc.communicate()
    assert proc.returncode == 0, name
    return out.decode()


async def test_the_seed_disk_holds_the_root_and_loses_it_when_the_network_has_none(
        tmp_path: Path) -> None:
    _, disk, _ = await seed.boot_network(ATT, tmp_path, "inst", "console=ttyS0", ROOT)
    assert disk is not None
    assert await _mtype(disk, seed.CA_FILE) == ROOT
    assert "ca_certs" in await _mtype(disk, "user-data")
    disk = await seed.write(tmp_path, "inst", ATT)  # the next boot, no CA any more
    proc = await asyncio.create_subprocess_exec(
        "mtype", "-i", str(disk), f"::{seed.CA_FILE}", stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL)
    assert await proc.wait() != 0
    assert "ca_certs" not in await _mtype(disk, "user-data")
