"""The Cloud Hypervisor driver's live migration against two API simulator processes (the
simulator plays vm.send-migration / vm.receive-migration by sending its VM config over TCP;
every body checked against the v53.0 spec file): the target holds the source's VM and runs
it, the source holds none; a send to nothing fails with the source still running."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from waiting import until

from bench.support.ch_simulator import write_wrapper
from formation.node.vmm.ch_api import ChApi
from formation.node.vmm.cloud_hypervisor import SOCKET, CloudHypervisorDriver
from formation.node.vmm.driver import MigrationProgress
from formation.node.vmm.machine import MachineSpec, VmmError
from tests.ports import free_port


def make_spec(tmp: Path, name: str) -> MachineSpec:
    image = tmp / "image"
    image.mkdir(exist_ok=True)
    (image / "vmlinuz").write_bytes(b"kernel")
    workdir = tmp / name
    workdir.mkdir(exist_ok=True)
    return MachineSpec(instance="ef" * 32, name="web", vcpus=2, memory_mb=512,
                       kernel=image / "vmlinuz", workdir=workdir,
                       serial_log=workdir / "serial.log", cmdline="console=ttyS0")


def requests(capture: Path) -> list[dict]:
    return [json.loads(line) for line in capture.read_text().splitlines()]


async def test_simulator_migration_moves_the_vm_config(tmp_path: Path) -> None:
    capture = tmp_path / "requests.jsonl"
    driver = CloudHypervisorDriver(str(write_wrapper(tmp_path / "bin", capture=capture)))
    src_spec, dst_spec = make_spec(tmp_path, "a"), make_spec(tmp_path, "b")
    source = await driver.create(src_spec)
    target = None
    try:
        await source.boot()
        listen = f"127.0.0.1:{free_port()}"
        target = await driver.create_incoming(dst_spec, listen)
        assert await target.incoming_state() == "waiting"
        seen: list[MigrationProgress] = []
        await source.migrate(f"tcp:{listen}", seen.append)
        assert [p.status for p in seen] == ["active", "completed"]
        await until(lambda: _is_running(target), 10, what="the target running the VM")
        api = ChApi(dst_spec.workdir / SOCKET)
        try:
            info = await api.get("vm.info")
        finally:
            await api.close()
        assert info["state"] == "Running" and info["config"]["cpus"]["boot_vcpus"] == 2
        assert (await target.info()).state == "running"
        with pytest.raises(VmmError):
            await source.info()  # the source's VMM holds no VM any more
        sent = [r for r in requests(capture) if "migration" in r["endpoint"]]
        assert {(r["endpoint"], r["status"]) for r in sent} == {
            ("vm.receive-migration", 204), ("vm.send-migration", 204)}
        assert not any(r.get("unknown") for r in sent)
    finally:
        await source.destroy()
        if target is not None:
            await target.destroy()


async def _is_running(machine) -> bool:
    return await machine.incoming_state() == "running"


async def test_simulator_migration_to_no_listener_fails_and_the_source_runs_on(
        tmp_path: Path) -> None:
    driver = CloudHypervisorDriver(str(write_wrapper(tmp_path / "bin")))
    source = await driver.create(make_spec(tmp_path, "a"))
    try:
        await source.boot()
        with pytest.raises(VmmError) as exc:
            await source.migrate(f"tcp:127.0.0.1:{free_port()}", lambda p: None)
        assert "migration to tcp:127.0.0.1:" in str(exc.value)
        assert "\n" not in str(exc.value)
        assert (await source.info()).state == "running"
    finally:
        await source.destroy()
