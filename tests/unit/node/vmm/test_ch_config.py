"""The vm.create body for every kind of spec is valid for the v53.0 spec file (with the
binary's stricter `required`), names no field the file lacks, and says what the spec asks."""

from __future__ import annotations

from pathlib import Path

import pytest

from bench.support.ch_simulator import Validators, load_spec
from formation.node.vmm.ch_config import vm_config
from formation.node.vmm.ch_host import spec_refusal
from formation.node.vmm.machine import MachineSpec, Nic


@pytest.fixture(scope="module")
def validators() -> Validators:
    return Validators(load_spec())


def spec(**changes: object) -> MachineSpec:
    values: dict = dict(instance="ef" * 32, name="db", vcpus=2, memory_mb=1024,
                        kernel=Path("/img/vmlinuz"), workdir=Path("/run/vm"),
                        serial_log=Path("/run/vm/serial.log"))
    values.update(changes)
    return MachineSpec(**values)


@pytest.mark.parametrize("changes", [
    {},
    {"initrd": Path("/img/initrd"), "disk": Path("/run/vm/disk.qcow2")},
    {"max_vcpus": 8, "max_memory_mb": 4096,
     "nics": (Nic("fm-tap0", "02:00:00:00:00:01"), Nic("fm-tap1", "02:00:00:00:00:02"))},
    {"disk": Path("/run/vm/disk.qcow2"), "seed": Path("/run/vm/seed.img")},
    {"gpus": ("0000:01:00.0", "0000:02:00.0")},
    {"confidential": "sev-snp", "max_vcpus": 8},
    {"confidential": "tdx", "max_memory_mb": 4096},
])
def test_bodies_are_valid_for_the_spec(validators: Validators, changes: dict) -> None:
    body = vm_config(spec(**changes), firmware=Path("/fw/tdvf.fd"), igvm=Path("/fw/g.igvm"))
    assert validators.problem("VmConfig", body) is None
    assert validators.unknown_fields("VmConfig", body) == []


def test_body_follows_the_spec() -> None:
    body = vm_config(spec(max_vcpus=8, max_memory_mb=4096, nics=(Nic("t0", "02:aa:00:00:00:01"),),
                          gpus=("0000:01:00.0",)))
    assert body["cpus"] == {"boot_vcpus": 2, "max_vcpus": 8}
    assert body["memory"] == {"size": 1024 << 20, "hotplug_size": 3072 << 20}
    assert body["net"] == [{"tap": "t0", "mac": "02:aa:00:00:00:01", "mtu": 1420}]
    assert body["devices"] == [{"path": "/sys/bus/pci/devices/0000:01:00.0/"}]
    assert "platform" not in body and "disks" not in body
    tdx = vm_config(spec(confidential="tdx", max_vcpus=8), firmware=Path("/fw/tdvf.fd"))
    assert tdx["platform"] == {"tdx": True} and tdx["payload"]["firmware"] == "/fw/tdvf.fd"
    assert tdx["cpus"] == {"boot_vcpus": 2, "max_vcpus": 2}  # TDX: no CPU hotplug


def test_the_seed_is_a_second_read_only_raw_disk() -> None:
    body = vm_config(spec(disk=Path("/v/disk.qcow2"), seed=Path("/v/seed.img")))
    assert body["disks"][1] == {"path": "/v/seed.img", "image_type": "Raw", "readonly": True}
    assert vm_config(spec(seed=Path("/v/seed.img")))["disks"] == [
        {"path": "/v/seed.img", "image_type": "Raw", "readonly": True}]


def test_tdx_refusals(tmp_path: Path) -> None:
    tdx = spec(confidential="tdx")
    assert "kvm_intel/parameters/tdx missing" in (
        spec_refusal(tdx, tmp_path, None, firmware=None, igvm=None) or "")
    param = tmp_path / "module/kvm_intel/parameters/tdx"
    param.parent.mkdir(parents=True)
    param.write_text("N\n")
    assert "disabled" in (spec_refusal(tdx, tmp_path, None, firmware=None, igvm=None) or "")
    param.write_text("Y\n")
    assert "no TD firmware" in (spec_refusal(tdx, tmp_path, {"kvm", "tdx"}, firmware=None,
                                             igvm=None) or "")
    assert spec_refusal(tdx, tmp_path, {"kvm", "tdx"}, firmware=Path("/fw"), igvm=None) is None
    assert "lacks the tdx feature" in (spec_refusal(tdx, tmp_path, {"kvm"},
                                                    firmware=Path("/fw"), igvm=None) or "")
