"""A tenant key that owns no node brings its own image: it uploads the test guest's kernel and
initramfs through the signed TCP API (the code `formation tenant image-add` runs), names them as
its account's image, creates an instance of it, and the node boots that guest with real
QEMU/TCG from the uploaded blobs (the guest's marker on serial)."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
from vm_node import found, running_node, serial_text, state_of, vm_settings, vmm_processes
from waiting import until

from bench.support.guest_kit import GUEST_UP, GuestKit
from formation.api import state_models as sm
from formation.api import state_routes as sr
from formation.api import vm_routes
from formation.api.client import NodeClient
from formation.commands.tenant_blob_upload import upload_missing
from formation.commands.tenant_images import manifest
from formation.identity import NodeIdentity
from formation.tenant_client import relay

pytestmark = [pytest.mark.qemu, pytest.mark.timeout(300)]

BOOT_S = 90
ALICE = NodeIdentity.from_seed(bytes([95]) * 32)


async def test_a_tenant_boots_the_files_it_uploaded(short_tmp: Path,
                                                    guest_kit: GuestKit) -> None:
    settings = vm_settings(short_tmp)
    async with running_node(settings) as node, NodeClient.unix(settings.api.socket) as local:
        await found(local, node)
        await local.call(sr.state_append, sm.AppendRequest(kind="account.set", payload={
            "name": "alice", "keys": [ALICE.public_key_hex], "roles": ["user"]}))
        [tcp] = [a.removeprefix("tcp:") for a in node.listen_addresses() if a.startswith("tcp:")]
        files = {"kernel": str(guest_kit.kernel), "initrd": str(guest_kit.initrd)}
        image = manifest("mine", files, guest_kit.cmdline)
        async with NodeClient.tcp(tcp, ALICE, timeout_s=30) as alice:
            sent = await upload_missing(alice, {p: (path, image["parts"][p])
                                                for p, path in files.items()})
            assert sent == ["kernel", "initrd"]
            added = await relay(alice, ALICE, "image.add", {**image, "account": "alice"})
            assert added.status == "accepted"
            spec = {"image": image["digest"], "vcpus": 1, "memory_mb": 512, "disk_gb": 5}
            created = await relay(alice, ALICE, "instance.create",
                                  {"name": "t1", "spec": spec, "account": "alice"})
            assert created.status == "accepted"
        blob = settings.data_dir / "images" / "blobs" / image["parts"]["kernel"]["digest"]
        assert hashlib.sha256(blob.read_bytes()).hexdigest() == blob.name

        async def booted() -> bool:
            return await state_of(local, "t1") == "running" \
                and GUEST_UP in await serial_text(local, "t1")

        await until(booted, BOOT_S, what="the tenant's uploaded guest running, marker on serial")
        inst = (await local.call(vm_routes.vm_show, instance="t1")).instance.id
        await local.call(vm_routes.vm_delete, instance=inst)
        await until(lambda: vmm_processes(inst) == [], 60, what="t1's QEMU ended")
