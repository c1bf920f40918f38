"""`pack build` and `pack ship` as processes against a real node whose pack part has a FAKE
builder (fake_builder.py): the progress lines from the event stream, --json, a failed step
printed with its Formfile line and a non-zero exit, a bad Formfile refused before the node is
asked; and `ship --watch` creating an instance with the Formfile's resources that really boots
(QEMU/TCG: the fake builder hands back the test guest kit's kernel and initramfs)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from guest_kit_skip import guest_kit_or_skip

from formation.api import state_routes as sr
from formation.api import vm_routes
from formation.api.client import NodeClient
from tests.integration.pack.fake_builder import FakeBuilder
from tests.integration.pack.pack_node import pack_cli, pack_node, remove_instances, write_context

WEB = "NAME web\nVCPU 1\nMEM 512\nDISK 6\nRUN echo built\nEXPOSE 8080/tcp\nEXPOSE 53/udp\n"
BROKEN = "NAME broken\nRUN echo one\n  RUN false   \nRUN echo never\n"


async def test_fake_builder_cli_build_progress_json_and_a_failed_step(short_tmp: Path) -> None:
    fake = FakeBuilder()
    async with pack_node(short_tmp, fake.toolchain()) as node:
        web = write_context(short_tmp / "web", WEB)
        code, out, err = await pack_cli(node, "build", str(web))
        assert code == 0, err
        assert out.startswith("built image web ")
        # not a terminal: one line per step, with its Formfile line
        assert " step 1/3 line 5 RUN echo built" in err and "step 3/3 disk image" in err

        code, out, err = await pack_cli(node, "build", str(web), "--json")
        assert code == 0, err
        result = json.loads(out)
        assert result["state"] == "done" and result["reused"] is True
        assert result["resources"]["ports"] == ["8080/tcp", "53/udp"]

        broken = write_context(short_tmp / "broken", BROKEN)
        code, out, err = await pack_cli(node, "build", str(broken))
        assert code == 1 and out == ""
        lines = err.strip().splitlines()
        assert "Formfile:3: RUN false" in lines
        assert lines[-1] == ("formation: error: build failed: Formfile line 3 (RUN false): "
                             "exited with status 1:")

        code, out, err = await pack_cli(node, "build", str(broken), "--json")
        assert code == 1 and json.loads(out)["error_line"] == 3

        # over TCP (signed with the node's own key here): the context is uploaded
        address = node.listen_addresses()[1].removeprefix("tcp:")
        remote = write_context(short_tmp / "remote", "NAME remote\nRUN echo far\n",
                               {"data.txt": "x" * 1000})
        code, out, err = await pack_cli(node, "build", str(remote), "--node", address, "--json")
        assert code == 0, err
        assert json.loads(out)["name"] == "remote" and json.loads(out)["state"] == "done"
        # a context over the request limit goes up in chunks (pack_upload_*)
        large = write_context(short_tmp / "large", "NAME large\nCOPY blob /srv/blob\n")
        (large / "blob").write_bytes(os.urandom(2 << 20))
        code, out, err = await pack_cli(node, "build", str(large), "--node", address)
        assert code == 0, err
        assert "uploading the build context (2" in err and out.startswith("built image large ")

        bad = write_context(short_tmp / "bad", "NAME web\nVCPU 0\n")
        code, out, err = await pack_cli(node, "build", str(bad))
        assert code == 2 and "Formfile:2:6: VCPU" in err and "nothing was built" in err
        assert fake.started == ["web", "broken", "broken", "remote", "large"]


@pytest.mark.qemu
async def test_fake_builder_cli_ship_watch_runs_the_instance(short_tmp: Path) -> None:
    kit = guest_kit_or_skip()
    fake = FakeBuilder(kernel=kit.kernel, initrd=kit.initrd, cmdline=kit.cmdline)
    async with pack_node(short_tmp, fake.toolchain()) as node:
        web = write_context(short_tmp / "web", WEB)
        try:
            code, out, err = await pack_cli(node, "ship", str(web), "--watch",
                                            "--timeout", "120")
            assert code == 0, err
            assert out.splitlines()[0].startswith("built image web ")
            # this one-node test network has no VM subnet: a running instance, no address
            assert out.splitlines()[-1] == ("web running on test-node (no address in the "
                                            "network yet)")
            assert "web: running" in err.splitlines()
            async with NodeClient.unix(node.settings.api.socket, timeout_s=30) as client:
                inst = (await client.call(vm_routes.vm_show, instance="web")).instance
                assert inst.state == "running" and inst.address is None
                assert (inst.vcpus, inst.memory_mb, inst.disk_gb) == (1, 512, 6)
                [record] = (await client.call(sr.state_view, collection="instances")).items
                assert record["spec"]["ports"] == ["8080/tcp", "53/udp"]

            # shipped again: the image is reused (nothing built), a second instance
            code, out, err = await pack_cli(node, "ship", str(web), "--instance", "web-2",
                                            "--json")
            assert code == 0, err
            shipped = json.loads(out)
            assert shipped["build"]["reused"] is True
            assert shipped["instance"]["name"] == "web-2"
            assert fake.started == ["web"]
        finally:
            await remove_instances(node)

