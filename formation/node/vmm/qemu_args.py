"""MachineSpec -> the qemu-system-x86_64 command line, a pure function so it is tested without
QEMU. Every file the process uses lives in spec.workdir under the names below: an adopting node
service finds the VM again from them alone.

Choices, and why:
  - microvm: a minimal machine (no PCI, no firmware; virtio-mmio devices described in ACPI) that
    boots a kernel fastest. It cannot hotplug CPUs or memory. q35 (PCI, SeaBIOS: a slower boot)
    when GPUs are passed through with vfio-pci, or when the driver is told to prefer it; then
    `-smp N,maxcpus=M` (M = spec.max_vcpus) lets vCPUs be added live.
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
from typing import Literal

from formation.node.vmm.machine import CONSOLE_SOCKET, MachineSpec

QMP_SOCKET = "qmp.sock"
PID_FILE = "qemu.pid"
STDERR_LOG = "qemu.log"
TCG_TSC = "tsc_early_khz=2000000"


def workdir_file(spec: MachineSpec, name: str) -> Path:
    return spec.workdir / name


SUN_PATH_MAX = 107  # bytes of a unix socket path (sockaddr_un.sun_path, NUL excluded)


def socket_problem(spec: MachineSpec) -> str | None:
    """A workdir too deep for its sockets (QEMU and the node both bind/connect by path)."""
    longest = workdir_file(spec, CONSOLE_SOCKET)
    if len(str(longest).encode()) > SUN_PATH_MAX:
        return (f"vmm.run_dir: {longest} is longer than a unix socket path may be "
                f"({SUN_PATH_MAX} bytes); choose a shorter run_dir")
    return None


def opt(value: object) -> str:
    """A value inside a QEMU option string, where a comma separates options: doubled."""
    return str(value).replace(",", ",,")


Machine = Literal["microvm", "q35"]


def machine_type(spec: MachineSpec, default: Machine = "microvm") -> Machine:
    return "q35" if spec.gpus else default


def can_hotplug(spec: MachineSpec, default: Machine = "microvm") -> bool:
    """Whether vCPUs can be added live (q35 with room above the boot count); microvm cannot."""
    return machine_type(spec, default) == "q35"


def _cmdline(spec: MachineSpec, accel: str, kind: Machine) -> str:
    cmdline = spec.cmdline
    if accel == "tcg" and kind == "microvm" and "tsc_early_khz" not in cmdline:
        cmdline = f"{cmdline} {TCG_TSC}".strip()
    return cmdline


def _disk_format(path: Path) -> str:
    return "qcow2" if path.suffix == ".qcow2" else "raw"


def qemu_args(spec: MachineSpec, binary: str, accel: str, default: Machine = "microvm"
              ) -> list[str]:
    kind = machine_type(spec, default)
    # microvm devices hang off virtio-mmio ("-device"), q35's off PCI ("-pci").
    bus = "device" if kind == "microvm" else "pci"
    smp = str(spec.vcpus)
    if kind == "q35" and spec.max_vcpus and spec.max_vcpus > spec.vcpus:
        smp = f"{spec.vcpus},maxcpus={spec.max_vcpus}"
    args = [
        binary, "-name", f"{opt(spec.name)},process=formation-{spec.instance[:12]}",
        "-accel", accel, "-M", kind, "-cpu", "host" if accel == "kvm" else "max",
        "-smp", smp, "-m", f"{spec.memory_mb}M",
        "-nodefaults", "-no-user-config", "-display", "none", "-S", "-no-reboot",
        "-kernel", str(spec.kernel), "-append", _cmdline(spec, accel, kind),
        "-chardev", f"socket,id=serial0,path={opt(workdir_file(spec, CONSOLE_SOCKET))},"
                    f"server=on,wait=off,logfile={opt(spec.serial_log)},logappend=on",
        "-serial", "chardev:serial0",
        "-qmp", f"unix:{opt(workdir_file(spec, QMP_SOCKET))},server=on,wait=off",
        "-pidfile", str(workdir_file(spec, PID_FILE)),
    ]
    if spec.initrd is not None:
        args += ["-initrd", str(spec.initrd)]
    if spec.disk is not None:
        args += ["-drive", f"id=disk0,if=none,file={opt(spec.disk)},"
                           f"format={_disk_format(spec.disk)}",
                 "-device", f"virtio-blk-{bus},drive=disk0"]
    if spec.seed is not None:
        args += ["-drive", f"id=seed0,if=none,file={opt(spec.seed)},format=raw,readonly=on",
                 "-device", f"virtio-blk-{bus},drive=seed0"]
    for i, nic in enumerate(spec.nics):
        # No vhost-net on these hosts: the tap is served by QEMU's own thread.
        args += ["-netdev", f"tap,id=net{i},ifname={opt(nic.tap)},script=no,downscript=no",
                 "-device", f"virtio-net-{bus},netdev=net{i},mac={opt(nic.mac)}"
                              + (f",host_mtu={nic.mtu}" if nic.mtu else "")]
    for address in spec.gpus:
        args += ["-device", f"vfio-pci,host={opt(address)}"]
    return args
