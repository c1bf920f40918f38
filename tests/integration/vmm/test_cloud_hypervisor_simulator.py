"""The Cloud Hypervisor driver against the API simulator (bench/support/ch_simulator.py) run
as a process with the binary's command line: the lifecycle, adoption after a node-service
restart, every body the driver sends checked against the v53.0 spec file, error answers as
one-line messages, confidential VMs and GPUs refused or requested as the host allows, and a
hostile VMM socket that cannot make the driver read without bound."""

from __future__ import annotations

import asyncio
import json
import os
from pathlib import Path

import pytest
from waiting import until

from bench.support.ch_simulator import write_wrapper
from formation.node.vmm.ch_api import ChApi
from formation.node.vmm.cloud_hypervisor import CloudHypervisorDriver
from formation.node.vmm.machine import MachineGone, MachineSpec, VmmError

QCOW2_WITH_BACKING = b"QFI\xfb" + (3).to_bytes(4, "big") + (0x200).to_bytes(8, "big")


def make_spec(tmp: Path, **changes: object) -> MachineSpec:
    image = tmp / "image"
    image.mkdir(exist_ok=True)
    (image / "vmlinuz").write_bytes(b"kernel")
    (image / "initrd.img").write_bytes(b"initrd")
    workdir = tmp / "vm"
    workdir.mkdir(exist_ok=True)
    disk = workdir / "disk.qcow2"
    disk.write_bytes(QCOW2_WITH_BACKING + bytes(64))
    values: dict = dict(instance="ab" * 32, name="web", vcpus=2, memory_mb=512,
                        kernel=image / "vmlinuz", initrd=image / "initrd.img", workdir=workdir,
                        serial_log=workdir / "serial.log", disk=disk, max_vcpus=4,
                        max_memory_mb=1024, cmdline="console=ttyS0 quiet")
    values.update(changes)
    return MachineSpec(**values)


def captured(capture: Path) -> list[dict]:
    if not capture.exists():
        return []
    return [json.loads(line) for line in capture.read_text().splitlines()]


def assert_all_accepted(capture: Path) -> list[dict]:
    """Every request the driver sent was valid for the spec and named only its fields (a
    test's deliberate wrong-state call is a 500, not a malformed request: 400)."""
    records = captured(capture)
    assert records, "the simulator saw no request"
    malformed = [r for r in records if r["status"] == 400]
    assert not malformed, f"the simulator refused the driver's requests: {malformed}"
    unknown = [r for r in records if r.get("unknown")]
    assert not unknown, f"fields the spec does not know (the binary ignores them): {unknown}"
    return records


@pytest.fixture
def capture(tmp_path: Path) -> Path:
    return tmp_path / "requests.jsonl"


@pytest.fixture
def binary(tmp_path: Path, capture: Path) -> str:
    return str(write_wrapper(tmp_path / "bin", capture=capture))


def single_line(message: str) -> None:
    assert "\n" not in message and "\x1b" not in message, message
    assert len(message) < 400, message


async def test_lifecycle_against_simulator(tmp_path: Path, binary: str, capture: Path) -> None:
    driver = CloudHypervisorDriver(binary)
    spec = make_spec(tmp_path)
    machine = await driver.create(spec)
    try:
        assert (spec.workdir / "vmm.pid").read_text().strip() == str(machine.pid)
        assert (await machine.info()).state == "created"
        await machine.boot()
        info = await machine.info()
        assert (info.state, info.vcpus, info.memory_mb) == ("running", 2, 512)
        await until(lambda: spec.serial_log.exists() and "guest booted" in
                    spec.serial_log.read_text(), what="the boot marker on serial")

        await machine.pause()
        assert (await machine.info()).state == "paused"
        with pytest.raises(VmmError) as paused_twice:
            await machine.pause()
        single_line(str(paused_twice.value))
        assert "not in a state that allows this" in str(paused_twice.value)
        await machine.resume()
        assert (await machine.info()).state == "running"

        assert await machine.resize(3, 768) is True
        info = await machine.info()
        assert (info.vcpus, info.memory_mb) == (3, 768)
        assert await machine.resize(5, 768) is False  # beyond max_vcpus
        assert await machine.resize(3, 2048) is False  # beyond the memory ceiling
        assert await machine.resize(3, 512) is False  # ACPI cannot take memory back
        assert await machine.resize(3, 800) is False  # not a 128 MiB step
        assert await machine.resize(2, 768) is True  # vCPUs go down live

        await machine.reboot()
        assert (await machine.info()).state == "running"
        assert spec.serial_log.read_text().count("guest booted") == 2
        counters = await machine.counters()
        assert counters["_disk0"]["read_bytes"] > 0

        await machine.shutdown()
        assert (await machine.info()).state == "shutdown"  # CH says Created; we know better
        await machine.boot()
        assert (await machine.info()).state == "running"
        await machine.power_button()  # the played guest powers off; --no-shutdown keeps CH
        assert (await machine.info()).state == "shutdown"
    finally:
        await machine.destroy()
    assert not machine.alive()
    assert not (spec.workdir / "api.sock").exists()
    assert not (spec.workdir / "vmm.pid").exists()
    assert spec.serial_log.exists() and spec.disk is not None and spec.disk.exists()
    await machine.destroy()  # idempotent
    with pytest.raises(MachineGone):
        await machine.info()

    records = assert_all_accepted(capture)
    assert [r["endpoint"] for r in records if "refused" in r] == ["vm.pause"]  # the deliberate
    create = next(r for r in records if r["endpoint"] == "vm.create")["body"]
    assert create["payload"] == {"kernel": str(spec.kernel), "cmdline": spec.cmdline,
                                 "initramfs": str(spec.initrd)}
    assert create["cpus"] == {"boot_vcpus": 2, "max_vcpus": 4}
    assert create["memory"] == {"size": 512 << 20, "hotplug_size": 512 << 20}
    assert create["serial"] == {"mode": "File", "file": str(spec.serial_log)}
    assert create["console"] == {"mode": "Socket",
                                 "socket": str(spec.workdir / "console.sock")}
    assert create["disks"] == [{"path": str(spec.disk), "image_type": "Qcow2",
                                "backing_files": True}]
    sent = {r["endpoint"] for r in records}
    assert {"vm.create", "vm.boot", "vm.info", "vm.pause", "vm.resume", "vm.shutdown",
            "vm.reboot", "vm.power-button", "vm.delete", "vmm.shutdown", "vm.counters",
            "vm.resize", "vmm.ping"} <= sent
    no_body = [r for r in records if r["endpoint"] not in ("vm.create", "vm.resize")]
    assert all("body" not in r for r in no_body), "a PUT without body carried one"


async def test_adopt_after_restart_simulator(tmp_path: Path, binary: str, capture: Path) -> None:
    spec = make_spec(tmp_path)
    first = await CloudHypervisorDriver(binary).create(spec)
    await first.boot()
    await first.api.close()  # the node service goes away; the VMM (own session) stays

    second = CloudHypervisorDriver(binary)  # the restarted service
    adopted = await second.adopt(spec)
    assert adopted is not None and adopted.pid == first.pid
    try:
        assert (await adopted.info()).state == "running"
        with pytest.raises(VmmError, match="adopt it"):
            await second.create(spec)  # never two VMMs for one VM
    finally:
        await adopted.destroy()
    assert not adopted.alive()
    assert await second.adopt(spec) is None
    assert_all_accepted(capture)


async def test_adopt_cleans_stale_files_and_ignores_recycled_pids_simulator(
        tmp_path: Path, binary: str) -> None:
    spec = make_spec(tmp_path)
    (spec.workdir / "api.sock").write_text("")
    (spec.workdir / "vmm.pid").write_text(f"{os.getpid()}\n")  # a live pid, not a VMM
    assert await CloudHypervisorDriver(binary).adopt(spec) is None
    assert not (spec.workdir / "api.sock").exists()
    assert not (spec.workdir / "vmm.pid").exists()


async def test_error_answers_become_one_line_messages_simulator(
        tmp_path: Path, binary: str) -> None:
    spec = make_spec(tmp_path)
    machine = await CloudHypervisorDriver(binary).create(spec)
    api = ChApi(spec.workdir / "api.sock")
    try:
        await api.put("vm.delete")
        cases = {  # what is asked -> what the message must say
            ("PUT", "vm.boot", None): ("HTTP 404", "VM config is missing", "create it first"),
            ("GET", "vm.info", None): ("HTTP 404", "VM is not created", "create it first"),
            ("PUT", "vm.pause", None): ("HTTP 500", "VM is not running", "boot it first"),
            ("PUT", "vm.boot", ()): ("HTTP 400", "Bad Request"),  # `{}` to a bodiless PUT
            ("GET", "vm.boot", None): ("HTTP 400", "Bad Request"),  # wrong method: 400
            ("PATCH", "vm.boot", None): ("HTTP 400", "wrong method"),  # empty answer
            ("POST", "vm.boot", None): ("HTTP 400", "Invalid HTTP Method"),  # {"error"}
            ("GET", "vm.nonsense", None): ("HTTP 404", "Not Found"),
            ("PUT", "vm.create", ("cpus",)): ("HTTP 400", "cpus.boot_vcpus",
                                              "less than the minimum of 1"),
            ("PUT", "vm.create", ("huge",)): ("HTTP 400", "larger than the limit of 51200"),
        }
        for (method, endpoint, shape), expected in cases.items():
            body: dict | None = None
            if shape == ():
                body = {}
            elif shape == ("cpus",):
                body = {"payload": {"kernel": "/k"}, "cpus": {"boot_vcpus": 0, "max_vcpus": 1}}
            elif shape == ("huge",):
                body = {"payload": {"kernel": "/k", "cmdline": "x" * 60_000}}
            with pytest.raises(VmmError) as refused:
                await api.call(method, endpoint, body)
            message = str(refused.value)
            single_line(message)
            assert message.startswith(f"cloud-hypervisor {endpoint} failed"), message
            for words in expected:
                assert words in message, (method, endpoint, message)
            assert "All previous unanswered" not in message
        await api.put("vm.create", {"payload": {"kernel": str(spec.kernel)}})
        with pytest.raises(VmmError, match=r"VM is already created.*delete it first"):
            await api.put("vm.create", {"payload": {"kernel": str(spec.kernel)}})
        await api.put("vm.delete")
        await api.put("vm.create", {"payload": {"kernel": str(tmp_path / "missing")}})
        with pytest.raises(VmmError, match=r"HTTP 500.*could not boot.*missing"):
            await api.put("vm.boot")
    finally:
        await api.close()
        await machine.destroy()


async def test_sev_snp_refused_on_a_host_without_it_simulator(
        tmp_path: Path, binary: str, capture: Path) -> None:
    spec = make_spec(tmp_path, confidential="sev-snp")
    driver = CloudHypervisorDriver(binary, sys_root=tmp_path / "sys")
    reason = driver.refusal(spec)
    assert reason == (f"SEV-SNP asked, but this host's CPU/kernel does not offer it "
                      f"({tmp_path}/sys/module/kvm_amd/parameters/sev_snp missing)")
    with pytest.raises(VmmError) as refused:
        await driver.create(spec)
    assert str(refused.value) == reason
    assert not (spec.workdir / "vmm.pid").exists(), "a VMM was started for a refused spec"

    # The kernel offers it, but this build (default features) would ignore platform.sev_snp.
    param = tmp_path / "sys/module/kvm_amd/parameters/sev_snp"
    param.parent.mkdir(parents=True)
    param.write_text("Y\n")
    assert driver.refusal(spec) is None  # features not known before the first ping
    with pytest.raises(VmmError, match="lacks the sev_snp feature"):
        await driver.create(spec)
    assert "lacks the sev_snp feature" in (driver.refusal(spec) or "")
    assert not (spec.workdir / "vmm.pid").exists()
    assert not any(r["endpoint"] == "vm.create" for r in captured(capture))


async def test_sev_snp_on_a_host_with_it_simulator(tmp_path: Path, capture: Path) -> None:
    param = tmp_path / "sys/module/kvm_amd/parameters/sev_snp"
    param.parent.mkdir(parents=True)
    param.write_text("Y\n")
    binary = write_wrapper(tmp_path / "bin", capture=capture,
                           features="kvm,io_uring,sev_snp,igvm")
    spec = make_spec(tmp_path, confidential="sev-snp")
    without_igvm = CloudHypervisorDriver(str(binary), sys_root=tmp_path / "sys")
    with pytest.raises(VmmError, match="no IGVM payload"):
        await without_igvm.create(spec)
    igvm = tmp_path / "image" / "guest.igvm"
    igvm.write_bytes(b"igvm")
    driver = CloudHypervisorDriver(str(binary), sys_root=tmp_path / "sys", igvm=igvm)
    machine = await driver.create(spec)
    try:
        await machine.boot()
        assert (await machine.info()).state == "running"
        assert await machine.resize(3, 512) is False  # no hotplug for a confidential VM
    finally:
        await machine.destroy()
    create = next(r for r in assert_all_accepted(capture) if r["endpoint"] == "vm.create")
    assert create["body"]["platform"] == {"sev_snp": True}
    assert create["body"]["payload"]["igvm"] == str(igvm)
    assert create["body"]["cpus"] == {"boot_vcpus": 2, "max_vcpus": 2}
    assert "hotplug_size" not in create["body"]["memory"]


async def test_gpu_passthrough_request_simulator(tmp_path: Path, binary: str,
                                                 capture: Path) -> None:
    """No GPU here: the host is a fake sysfs tree, and what is tested is the request."""
    sys_root = tmp_path / "sys"
    device = sys_root / "bus/pci/devices/0000:01:00.0"
    device.mkdir(parents=True)
    nvidia = sys_root / "bus/pci/drivers/nvidia"
    nvidia.mkdir(parents=True)
    (device / "driver").symlink_to(nvidia)
    spec = make_spec(tmp_path, gpus=("0000:01:00.0",))
    driver = CloudHypervisorDriver(binary, sys_root=sys_root)
    assert driver.refusal(spec) == ("GPU 0000:01:00.0 is not bound to vfio-pci (driver: "
                                    "nvidia); bind it before passing it through")
    assert "no such PCI device" in (driver.refusal(make_spec(tmp_path, gpus=("0000:02:00.0",)))
                                    or "")
    vfio = sys_root / "bus/pci/drivers/vfio-pci"
    vfio.mkdir(parents=True)
    (device / "driver").unlink()
    (device / "driver").symlink_to(vfio)
    machine = await driver.create(spec)
    await machine.destroy()
    create = next(r for r in assert_all_accepted(capture) if r["endpoint"] == "vm.create")
    assert create["body"]["devices"] == [{"path": "/sys/bus/pci/devices/0000:01:00.0/"}]


async def hostile_server(socket: Path, answer: bytes, hang: bool = False) -> asyncio.Server:
    """A "VMM" that answers every request with `answer` (and then, if `hang`, nothing)."""
    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        try:
            writer.write(answer)
            await writer.drain()
            if hang:
                await asyncio.Event().wait()
        except (ConnectionError, asyncio.CancelledError):
            pass
        finally:
            writer.close()
    return await asyncio.start_unix_server(serve, path=str(socket))


async def test_hostile_vmm_answers_are_bounded_simulator(tmp_path: Path) -> None:
    """A VMM process a guest may have subverted: a huge error body, terminal escapes and
    broken JSON, a body that never ends. The driver reads a bounded prefix, says one line."""
    socket = tmp_path / "evil.sock"
    huge = b"HTTP/1.1 500 \r\nContent-Length: 20000000\r\n\r\n" + b"[" + b'"x",' * 2_000_000
    def http(status: int, body: bytes) -> bytes:
        return b"HTTP/1.1 %d \r\nContent-Length: %d\r\n\r\n" % (status, len(body)) + body

    cases = [
        (huge, False, "answer was larger than"),
        (http(500, b'["\x1b[2J\x1b]0;pwned\x07", "\\u001b[31m", "VM is not running"]'), False,
         "boot it first"),
        (http(400, b"{not json!}"), False, "not json"),
        (b"HTTP/1.1 500 \r\nContent-Length: 100\r\n\r\nshort", True, "did not answer"),
    ]
    for answer, hang, expected in cases:
        server = await hostile_server(socket, answer, hang)
        api = ChApi(socket, timeout_s=2.0, max_answer=64 * 1024)
        try:
            with pytest.raises(VmmError) as refused:
                await api.put("vm.boot")
        finally:
            await api.close()
            server.close()
            await server.wait_closed()
            socket.unlink(missing_ok=True)
        message = str(refused.value)
        single_line(message)
        assert "\x07" not in message and "pwned\x07" not in message
        assert expected in message, message


async def test_probe_features_of_a_simulator_build(tmp_path: Path) -> None:
    binary = write_wrapper(tmp_path / "bin", features="kvm,io_uring,sev_snp")
    driver = CloudHypervisorDriver(str(binary))
    assert await driver.probe_features() == {"kvm", "io_uring", "sev_snp"}
    assert driver.features == {"kvm", "io_uring", "sev_snp"}
    assert await CloudHypervisorDriver(str(tmp_path / "none")).probe_features() == frozenset()


async def test_guest_that_panics_at_boot_simulator(tmp_path: Path, binary: str) -> None:
    spec = make_spec(tmp_path, cmdline="console=ttyS0 ch_simulator.panic")
    machine = await CloudHypervisorDriver(binary).create(spec)
    try:
        await machine.boot()
        assert (await machine.info()).state == "shutdown"
        assert "Kernel panic" in spec.serial_log.read_text().splitlines()[-1]
    finally:
        await machine.destroy()


async def test_cold_restart_in_the_same_workdir_starts_created_simulator(
        tmp_path: Path, binary: str) -> None:
    driver = CloudHypervisorDriver(binary)
    spec = make_spec(tmp_path)
    first = await driver.create(spec)
    await first.boot()
    await first.destroy()
    second = await driver.create(spec)  # e.g. a resize beyond the ceilings
    try:
        assert (await second.info()).state == "created"
    finally:
        await second.destroy()


async def test_a_binary_that_is_missing_or_dies_at_start_is_one_line(tmp_path: Path) -> None:
    spec = make_spec(tmp_path)
    with pytest.raises(VmmError, match=r"cannot start cloud-hypervisor .*No such file"):
        await CloudHypervisorDriver(str(tmp_path / "nowhere")).create(spec)
    dying = tmp_path / "dying"
    dying.write_text("#!/bin/sh\necho 'Error: KVM is not available' >&2\nexit 1\n")
    dying.chmod(0o755)
    with pytest.raises(VmmError) as died:
        await CloudHypervisorDriver(str(dying)).create(spec)
    assert str(died.value) == ("cloud-hypervisor exited at start (code 1): Error: KVM is not "
                               "available")
    assert not (spec.workdir / "vmm.pid").exists()
