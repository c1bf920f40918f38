"""VMs on a 3-host lab (root), through the `formation vm` CLI as a person would use it. h1
imports the test guest and creates an instance: the placement rule puts it on some host, which
boots it, and every host shows it Running. Then two instances pinned to h3, each needing all the
memory h3 has left: exactly one holds the capacity and runs (h3 fetched the image from h1 and
verified it first), the other stays Pending with the reason."""

from __future__ import annotations

import json
import shutil
from typing import Any

import pytest
from lab_running import cli, running_lab
from waiting import until

from bench.support.guest_kit import GuestKit, Unavailable, build_guest_kit
from formation.lab import Lab
from tests.conftest import needs_root

pytestmark = [needs_root(), pytest.mark.root, pytest.mark.qemu, pytest.mark.timeout(240)]

HOSTS = ("h1", "h2", "h3")
MEMORY = 1536  # each host offers this much memory, MiB
BOOT_S = 90


@pytest.fixture(scope="module")
def lab():
    if shutil.which("qemu-system-x86_64") is None:
        pytest.skip("qemu-system-x86_64 is not installed")
    overrides = {"vmm": {"backend": "qemu", "stop_grace_s": 2, "boot_timeout_s": BOOT_S},
                 "resources": {"cpus": 2, "memory_mb": MEMORY, "disk_gb": 20}}
    with running_lab(3, pretrust=False, node_overrides=overrides) as instance:
        yield instance


@pytest.fixture(scope="module")
def guest_kit() -> GuestKit:
    try:
        return build_guest_kit()
    except Unavailable as exc:
        pytest.skip(f"no test guest: {exc}")


async def vm_json(lab: Lab, host: str, *args: str) -> Any:
    out = await cli(lab, host, "vm", *args, "--json")
    assert out.returncode == 0, f"{host} vm {args}: {out.stderr}"
    return json.loads(out.stdout)


async def listed(lab: Lab, host: str) -> dict[str, dict]:
    return {i["name"]: i for i in (await vm_json(lab, host, "ls"))["instances"]}


@pytest.mark.network(fields=("resources", "endpoints"))
async def test_vms_are_placed_boot_and_share_the_last_capacity(lab: Lab, network: dict,
                                                               guest_kit: GuestKit) -> None:
    imported = await cli(lab, "h1", "image", "import", str(guest_kit.kernel), "--initrd",
                         str(guest_kit.initrd), "--disk", str(guest_kit.disk), "--name", "guest",
                         "--cmdline", guest_kit.cmdline, "--json")
    assert imported.returncode == 0, imported.stderr

    first = await vm_json(lab, "h1", "create", "--image", "guest", "--name", "web",
                          "--memory", "512")
    assert first["name"] == "web"

    async def running_everywhere() -> str | None:
        views = [(await listed(lab, h)).get("web", {}) for h in HOSTS]
        nodes = {v.get("node_name") for v in views}
        ok = all(v.get("state") == "running" for v in views) and len(nodes) == 1
        return views[0]["node_name"] if ok else None

    placed_on = await until(running_everywhere, BOOT_S, every_s=1,
                            what="web running, the same node on every host")
    assert placed_on in HOSTS

    # h3 has MEMORY (or MEMORY - 512 when web runs there) left: each of these needs 1024
    for name in ("big-a", "big-b"):
        await vm_json(lab, "h1", "create", "--image", "guest", "--name", name,
                      "--memory", "1024", "--node", "h3")

    async def one_runs_one_waits() -> tuple[dict, dict] | None:
        found = await listed(lab, "h1")
        a, b = found.get("big-a", {}), found.get("big-b", {})
        states = sorted([a.get("state"), b.get("state")])
        if states != ["pending", "running"]:
            return None
        return (a, b) if a["state"] == "running" else (b, a)

    runs, waits = await until(one_runs_one_waits, BOOT_S, every_s=1,
                              what="one of big-a/big-b running on h3, the other pending")
    assert runs["node_name"] == "h3"
    assert waits["reason"] and waits["node"] is None
    # h3 booted an image imported on h1: it fetched every part and verified it
    images = (await cli(lab, "h3", "image", "ls", "--json"))
    assert images.returncode == 0, images.stderr
    assert any(i["name"] == "guest" and i["local"] for i in json.loads(images.stdout)["images"])
    for host in HOSTS:  # every host agrees
        assert (await listed(lab, host))[waits["name"]]["state"] == "pending"
