"""MachineSpec -> the VmConfig body of Cloud Hypervisor's vm.create (spec file v53.0).

Only fields the spec file names are sent: the binary ignores unknown fields silently, so a
misspelt one would be a bug nobody sees. The choices, and why:
- serial (ttyS0) to a file (spec.serial_log): the reconciler, `vm logs` and the console screen
  read it; the virtio console (hvc0) on a unix socket in the workdir (CONSOLE_SOCKET) is the
  interactive one, for `vm console`: CH serves a socket-mode serial port without a log, so the
  two are split. A guest offers a login there when its image runs a getty on hvc0.
- memory hotplug (ACPI) up to the ceiling, vCPUs up to max_vcpus: a live resize within them;
  a confidential VM gets neither (TDX refuses CPU hotplug; the guest's memory is encrypted).
- the disk is a qcow2 overlay over the image's disk: CH opens qcow2 backing files only when
  asked (`backing_files`).
- GPUs go in `devices` as sysfs paths of VFIO-bound PCI functions."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from formation.node.vmm.machine import CONSOLE_SOCKET, MachineSpec

MIB = 1024 * 1024


def gpu_path(address: str) -> str:
    return f"/sys/bus/pci/devices/{address}/"


def ceilings(spec: MachineSpec) -> tuple[int, int]:
    """(max vCPUs, max MiB) a live resize may reach; the boot size for a confidential VM."""
    if spec.confidential != "none":
        return spec.vcpus, spec.memory_mb
    return (max(spec.max_vcpus or spec.vcpus, spec.vcpus),
            max(spec.max_memory_mb or spec.memory_mb, spec.memory_mb))


def vm_config(spec: MachineSpec, *, firmware: Path | None = None,
              igvm: Path | None = None) -> dict[str, Any]:
    """The vm.create body. `firmware` (TD firmware) and `igvm` are used only for TDX and
    SEV-SNP, which need them; the driver refuses those specs when they are missing."""
    max_vcpus, max_memory_mb = ceilings(spec)
    payload: dict[str, Any] = {"kernel": str(spec.kernel), "cmdline": spec.cmdline}
    if spec.initrd is not None:
        payload["initramfs"] = str(spec.initrd)
    memory: dict[str, Any] = {"size": spec.memory_mb * MIB}
    if max_memory_mb > spec.memory_mb:
        memory["hotplug_size"] = (max_memory_mb - spec.memory_mb) * MIB
    config: dict[str, Any] = {
        "cpus": {"boot_vcpus": spec.vcpus, "max_vcpus": max_vcpus},
        "memory": memory,
        "payload": payload,
        "serial": {"mode": "File", "file": str(spec.serial_log)},
        "console": {"mode": "Socket", "socket": str(spec.workdir / CONSOLE_SOCKET)},
    }
    disks: list[dict[str, Any]] = []
    if spec.disk is not None:
        disks.append({"path": str(spec.disk), "image_type": "Qcow2", "backing_files": True})
    if spec.seed is not None:  # the NoCloud seed: cloud-init finds it by its label
        disks.append({"path": str(spec.seed), "image_type": "Raw", "readonly": True})
    if disks:
        config["disks"] = disks
    if spec.nics:
        config["net"] = [{"tap": nic.tap, "mac": nic.mac} | ({"mtu": nic.mtu} if nic.mtu else {})
                         for nic in spec.nics]
    if spec.gpus:
        config["devices"] = [{"path": gpu_path(address)} for address in spec.gpus]
    if spec.confidential == "sev-snp":
        config["platform"] = {"sev_snp": True}
        if igvm is not None:
            payload["igvm"] = str(igvm)
    elif spec.confidential == "tdx":
        config["platform"] = {"tdx": True}
        if firmware is not None:
            payload["firmware"] = str(firmware)
    return config
