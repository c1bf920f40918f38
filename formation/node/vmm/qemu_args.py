"""MachineSpec -> the qemu-system-x86_64 command line, a pure function so it is tested without
QEMU. Every file the process uses lives in spec.workdir under the names below: an adopting node
service finds the VM again from them alone.

Choices, and why:
  - microvm: a minimal machine (no PCI, no firmware; virtio-mmio devices described in ACPI) that
    boots a kernel fastest. It cannot hotplug CPUs or memory. q35 (PCI) is used only when GPUs
    are passed through with vfio-pci, and then `-smp N,maxcpus=M` (M = spec.max_vcpus).
  - `-S`: the process starts with the VM created, not running; Machine.boot sends `cont`.
  - `-no-reboot`: a guest's reboot ends the VM (like Firecracker), so a kernel that panics with
    panic=-1 ends its VMM and is seen at once instead of looping. Machine.reboot still resets
    the VM (it switches the reboot action around its system_reset).
  - the serial port is a unix socket (console.sock) that `vm console` may connect to, with
    QEMU's own logfile appending everything the guest writes to spec.serial_log whether or
    not anyone is connected.
  - under TCG on microvm (no PIT to calibrate against) `tsc_early_khz` fixes the guest's TSC
    rate; without it the kernel may wait forever calibrating.
"""

from __future__ import annotations

from pathlib import Path

from formation.node.vmm.machine import MachineSpec

QMP_SOCKET = "qmp.sock"
CONSOLE_SOCKET = "console.sock"
PID_FILE = "qemu.pid"
STDERR_LOG = "qemu.log"
TCG_TSC = "tsc_early_khz=2000000"


def workdir_file(spec: MachineSpec, name: str) -> Path:
    return spec.workdir / name


def machine_type(spec: MachineSpec) -> str:
    return "q35" if spec.gpus else "microvm"


def can_hotplug(spec: MachineSpec) -> bool:
    """Whether vCPUs can be added live (q35 with room above the boot count); microvm cannot."""
    return machine_type(spec) == "q35"


def _cmdline(spec: MachineSpec, accel: str) -> str:
    cmdline = spec.cmdline
    if accel == "tcg" and machine_type(spec) == "microvm" and "tsc_early_khz" not in cmdline:
        cmdline = f"{cmdline} {TCG_TSC}".strip()
    return cmdline


def _disk_format(path: Path) -> str:
    return "qcow2" if path.suffix == ".qcow2" else "raw"


def qemu_args(spec: MachineSpec, binary: str, accel: str) -> list[str]:
    kind = machine_type(spec)
    # microvm devices hang off virtio-mmio ("-device"), q35's off PCI ("-pci").
    bus = "device" if kind == "microvm" else "pci"
    smp = str(spec.vcpus)
    if kind == "q35" and spec.max_vcpus and spec.max_vcpus > spec.vcpus:
        smp = f"{spec.vcpus},maxcpus={spec.max_vcpus}"
    args = [
        binary, "-name", f"{spec.name},process=formation-{spec.instance[:12]}",
        "-accel", accel, "-M", kind, "-cpu", "host" if accel == "kvm" else "max",
        "-smp", smp, "-m", f"{spec.memory_mb}M",
        "-nodefaults", "-no-user-config", "-display", "none", "-S", "-no-reboot",
        "-kernel", str(spec.kernel), "-append", _cmdline(spec, accel),
        "-chardev", f"socket,id=serial0,path={workdir_file(spec, CONSOLE_SOCKET)},server=on,"
                    f"wait=off,logfile={spec.serial_log},logappend=on",
        "-serial", "chardev:serial0",
        "-qmp", f"unix:{workdir_file(spec, QMP_SOCKET)},server=on,wait=off",
        "-pidfile", str(workdir_file(spec, PID_FILE)),
    ]
    if spec.initrd is not None:
        args += ["-initrd", str(spec.initrd)]
    if spec.disk is not None:
        args += ["-drive", f"id=disk0,if=none,file={spec.disk},format={_disk_format(spec.disk)}",
                 "-device", f"virtio-blk-{bus},drive=disk0"]
    for i, tap in enumerate(spec.taps):
        # No vhost-net on these hosts: the tap is served by QEMU's own thread.
        args += ["-netdev", f"tap,id=net{i},ifname={tap},script=no,downscript=no",
                 "-device", f"virtio-net-{bus},netdev=net{i}"]
    for address in spec.gpus:
        args += ["-device", f"vfio-pci,host={address}"]
    return args
