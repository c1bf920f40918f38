"""Bad input to the VM API on a real node: each refusal is one line naming the field, and nothing
is written (the op count of the store does not move). A member that neither owns an instance
nor is an admin cannot change it, over any route (the hostile caller)."""

from __future__ import annotations

from pathlib import Path

import aiohttp
import pytest
from vm_node import found, op_count, running_node, state_of, vm_settings
from waiting import until

from formation.api import state_models as sm
from formation.api import state_routes as sr
from formation.api import vm_models as vm
from formation.api import vm_routes
from formation.api.client import ApiError, NodeClient
from formation.identity import NodeIdentity


@pytest.fixture
def image_files(short_tmp: Path) -> dict[str, str]:
    """An image's files (never booted here: the instances stay stopped)."""
    kernel, initrd = short_tmp / "vmlinuz", short_tmp / "initrd"
    kernel.write_bytes(b"not really a kernel" * 100)
    initrd.write_bytes(b"not really an initrd" * 100)
    return {"kernel": str(kernel), "initrd": str(initrd)}


async def _stopped(client: NodeClient, ref: str) -> bool:
    return await state_of(client, ref) == "stopped"


async def _refused(client: NodeClient, status: int, field: str, endpoint, body=None,
                   **params: str) -> str:
    before = await op_count(client)
    with pytest.raises(ApiError) as caught:
        await client.call(endpoint, body, **params)
    message = caught.value.body.message
    assert caught.value.status == status, message
    assert message.startswith(f"{field}: "), message
    assert "\n" not in message
    assert await op_count(client) == before, "a refused request wrote an op"
    return message


async def test_refusals_name_the_field_and_write_nothing(short_tmp: Path,
                                                         image_files: dict[str, str]) -> None:
    settings = vm_settings(short_tmp)
    async with running_node(settings) as node, NodeClient.unix(settings.api.socket) as client:
        await found(client, node)
        await client.call(vm_routes.image_import, vm.ImageImport(name="img", **image_files))
        first = await client.call(vm_routes.vm_create,
                                  vm.VmCreate(image="img", name="one", desired="stopped"))
        assert first.state in ("pending", "placed", "stopped")
        # the reconciler claims it and reports it stopped; after that nothing writes
        await until(lambda: _stopped(client, "one"), 30, what="one claimed and stopped")

        await _refused(client, 404, "image", vm_routes.vm_create, vm.VmCreate(image="nope"))
        await _refused(client, 409, "name", vm_routes.vm_create,
                       vm.VmCreate(image="img", name="one", desired="stopped"))
        message = await _refused(client, 422, "vcpus", vm_routes.vm_create,
                                 vm.VmCreate(image="img", vcpus=64, desired="stopped"))
        assert "64" in message
        await _refused(client, 422, "memory_mb", vm_routes.vm_create,
                       vm.VmCreate(image="img", memory_mb=200_000, desired="stopped"))
        await _refused(client, 422, "disk_gb", vm_routes.vm_create,
                       vm.VmCreate(image="img", disk_gb=60_000, desired="stopped"))
        await _refused(client, 404, "instance", vm_routes.vm_stop, vm.VmStop(), instance="nope")
        await _refused(client, 422, "memory_mb", vm_routes.vm_resize,
                       vm.VmResize(memory_mb=100_000), instance="one")

        # outside the network's limits: refused by the model before the handler (400)
        before = await op_count(client)
        async with aiohttp.ClientSession(connector=aiohttp.UnixConnector(
                path=str(settings.api.socket))) as session:
            for bad in ({"image": "img", "vcpus": 0}, {"image": "img", "vcpus": 129},
                        {"image": "img", "memory_mb": 256}, {"image": "img", "disk_gb": 4},
                        {"image": "img", "disk_gb": 65_536}, {"image": "img", "bogus": 1}):
                async with session.post("http://node/v1/vms", json=bad) as resp:
                    body = await resp.json()
                    assert resp.status == 400, body
                    field = next(k for k in bad if k != "image")
                    assert field in body["message"], body
        assert await op_count(client) == before


async def test_a_member_that_is_not_owner_or_admin_changes_nothing(
        short_tmp: Path, image_files: dict[str, str]) -> None:
    settings = vm_settings(short_tmp)
    member = NodeIdentity.generate()
    async with running_node(settings) as node, NodeClient.unix(settings.api.socket) as client:
        await found(client, node)
        await client.call(sr.state_append, sm.AppendRequest(
            kind="node.admit", payload={"node": member.public_key_hex, "roles": ["member"]}))
        await client.call(vm_routes.image_import, vm.ImageImport(name="img", **image_files))
        await client.call(vm_routes.vm_create,
                          vm.VmCreate(image="img", name="mine", desired="stopped"))
        await until(lambda: _stopped(client, "mine"), 30, what="mine claimed and stopped")
        address = node.listen_addresses()[1].removeprefix("tcp:")
        async with NodeClient.tcp(address, member) as hostile:
            assert [i.name for i in (await hostile.call(vm_routes.vm_list)).instances] == \
                ["mine"]  # members may read
            for endpoint, body in ((vm_routes.vm_start, None), (vm_routes.vm_stop, vm.VmStop()),
                                   (vm_routes.vm_restart, None),
                                   (vm_routes.vm_resize, vm.VmResize(vcpus=2)),
                                   (vm_routes.vm_delete, None),
                                   (vm_routes.vm_migrate, vm.VmMigrate(to=node.identity
                                                                       .public_key_hex))):
                before = await op_count(client)
                with pytest.raises(ApiError) as caught:
                    await hostile.call(endpoint, body, instance="mine")
                assert caught.value.status == 403, caught.value
                assert caught.value.body.message.startswith("instance: "), caught.value
                assert "owner" in caught.value.body.message
                assert await op_count(client) == before
            # nor drain a node (admins only): nothing written
            before = await op_count(client)
            with pytest.raises(ApiError) as caught:
                await hostile.call(vm_routes.node_drain, vm.NodeDrain(),
                                   node=node.identity.public_key_hex[:12])
            assert caught.value.status == 403
            assert caught.value.body.message.startswith("node: only a network admin")
            assert await op_count(client) == before
            # nor type into its console
            target = "/v1/vms/mine/console"
            from formation.api.auth import sign_request

            headers = sign_request(member, "GET", target, b"", node.identity.public_key_hex)
            async with aiohttp.ClientSession() as session, session.get(
                    f"http://{address}{target}", headers=headers) as resp:
                assert resp.status == 403


async def test_impossible_moves_are_refused_with_one_line_and_write_nothing(
        short_tmp: Path, image_files: dict[str, str]) -> None:
    """One node: every move has nowhere to go or cannot be live; each refusal names why."""
    settings = vm_settings(short_tmp)
    async with running_node(settings) as node, NodeClient.unix(settings.api.socket) as client:
        await found(client, node)
        me = node.identity.public_key_hex
        await client.call(vm_routes.image_import, vm.ImageImport(name="img", **image_files))
        await client.call(vm_routes.vm_create,
                          vm.VmCreate(image="img", name="still", desired="stopped"))
        await until(lambda: _stopped(client, "still"), 30, what="still claimed and stopped")
        await _refused(client, 404, "node", vm_routes.vm_migrate, vm.VmMigrate(to="nowhere"),
                       instance="still")
        message = await _refused(client, 422, "to", vm_routes.vm_migrate,
                                 vm.VmMigrate(to=me), instance="still")
        assert "already runs on" in message
        await _refused(client, 404, "instance", vm_routes.vm_migrate, vm.VmMigrate(to=me),
                       instance="nope")
        # a drain of the only node: nowhere to go (live or restart), refused as a whole
        message = await _refused(client, 422, "still", vm_routes.node_drain, vm.NodeDrain(),
                                 node=me[:12])
        assert "nowhere to go" in message
        await _refused(client, 422, "still", vm_routes.node_drain,
                       vm.NodeDrain(restart=True), node=me[:12])
        await _refused(client, 404, "node", vm_routes.node_drain, vm.NodeDrain(), node="nope")
