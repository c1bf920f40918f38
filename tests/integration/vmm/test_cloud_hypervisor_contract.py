"""The Cloud Hypervisor driver against the real binary: runs only when FORMATION_CH_BINARY
names one (and /dev/kvm is usable), with the session's guest kit (tests/integration/vmm/
conftest.py) as the guest. The same lifecycle the simulator tests drive, so a difference
between the simulator and the binary shows up here first."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
from waiting import until

from formation.node.vmm.ch_api import ChApi
from formation.node.vmm.cloud_hypervisor import CloudHypervisorDriver
from formation.node.vmm.machine import MachineSpec, VmmError

BINARY = os.environ.get("FORMATION_CH_BINARY", "")
GUEST_UP = "FORMATION-GUEST-UP"  # what the guest kit's init prints on serial

pytestmark = [
    pytest.mark.skipif(not BINARY, reason="FORMATION_CH_BINARY does not name a "
                                          "cloud-hypervisor binary"),
    pytest.mark.skipif(bool(BINARY) and not os.access(BINARY, os.X_OK),
                       reason=f"FORMATION_CH_BINARY={BINARY} is not executable"),
    pytest.mark.skipif(not os.access("/dev/kvm", os.R_OK | os.W_OK),
                       reason="/dev/kvm is not usable here (Cloud Hypervisor needs KVM)"),
]


@pytest.fixture
def kit(request: pytest.FixtureRequest) -> Any:
    try:
        return request.getfixturevalue("guest_kit")
    except pytest.FixtureLookupError:
        pytest.skip("no guest_kit fixture (tests/integration/vmm/conftest.py)")


def overlay(base: Path, target: Path) -> Path | None:
    if shutil.which("qemu-img") is None:
        return None
    subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", "-b", str(base), "-F", "raw",
                    str(target), "6G"], check=True)
    return target


async def test_lifecycle_against_the_real_binary(tmp_path: Path, kit: Any) -> None:
    workdir = tmp_path / "vm"
    workdir.mkdir()
    spec = MachineSpec(instance="cd" * 32, name="contract", vcpus=1, memory_mb=512,
                       kernel=kit.kernel, initrd=kit.initrd, cmdline=kit.cmdline,
                       workdir=workdir, serial_log=workdir / "serial.log",
                       disk=overlay(kit.disk, workdir / "disk.qcow2"), max_vcpus=2,
                       max_memory_mb=1024)
    driver = CloudHypervisorDriver(BINARY)
    machine = await driver.create(spec)
    try:
        assert driver.version and driver.version.startswith("v")
        assert (await machine.info()).state == "created"
        await machine.boot()
        await until(lambda: spec.serial_log.exists() and GUEST_UP in
                    spec.serial_log.read_text(errors="replace"), timeout_s=60,
                    what="the guest's marker on serial")
        assert (await machine.info()).state == "running"
        with pytest.raises(VmmError) as twice:
            await machine.boot()
        assert "\n" not in str(twice.value) and "HTTP 500" in str(twice.value)
        await machine.pause()
        assert (await machine.info()).state == "paused"
        await machine.resume()
        assert await machine.resize(2, 640) is True
        info = await machine.info()
        assert (info.vcpus, info.memory_mb) == (2, 640)
        assert await machine.resize(3, 640) is False
        assert isinstance(await machine.counters(), dict)
        await machine.reboot()
        assert (await machine.info()).state == "running"
        await machine.shutdown()
        assert (await machine.info()).state == "shutdown"
        api = ChApi(workdir / "api.sock")
        try:
            with pytest.raises(VmmError, match="HTTP 400"):
                await api.call("PUT", "vm.boot", {})  # a bodiless PUT refuses `{}`
        finally:
            await api.close()
        adopted = await CloudHypervisorDriver(BINARY).adopt(spec)
        assert adopted is not None and adopted.pid == machine.pid
        await adopted.api.close()
    finally:
        await machine.destroy()
    assert not machine.alive()
