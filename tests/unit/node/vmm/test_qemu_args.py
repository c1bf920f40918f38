"""MachineSpec -> qemu-system-x86_64 command line (pure; the integration tests boot it)."""

from __future__ import annotations

from pathlib import Path

from formation.node.vmm.machine import MachineSpec, Nic
from formation.node.vmm.qemu_args import can_hotplug, qemu_args


def spec(**changes: object) -> MachineSpec:
    values: dict = dict(instance="cd" * 16, name="web", vcpus=2, memory_mb=512,
                        kernel=Path("/k/vmlinuz"), initrd=Path("/k/initrd"),
                        workdir=Path("/run/vms/x"), serial_log=Path("/run/vms/x/serial.log"))
    values.update(changes)
    return MachineSpec(**values)


def value(args: list[str], flag: str) -> list[str]:
    return [args[i + 1] for i, a in enumerate(args) if a == flag]


def test_microvm_created_not_booted_with_serial_log_qmp_and_pid_file() -> None:
    args = qemu_args(spec(), "qemu-system-x86_64", "tcg")
    assert value(args, "-M") == ["microvm"]
    assert value(args, "-accel") == ["tcg"]
    assert value(args, "-cpu") == ["max"]
    assert "-S" in args and "-no-reboot" in args and "-nodefaults" in args
    assert value(args, "-smp") == ["2"] and value(args, "-m") == ["512M"]
    assert value(args, "-initrd") == ["/k/initrd"]
    chardev = value(args, "-chardev")[0]
    assert "path=/run/vms/x/console.sock" in chardev
    assert "logfile=/run/vms/x/serial.log" in chardev and "logappend=on" in chardev
    assert value(args, "-qmp") == ["unix:/run/vms/x/qmp.sock,server=on,wait=off"]
    assert value(args, "-pidfile") == ["/run/vms/x/qemu.pid"]
    # TCG on microvm: the guest's TSC rate is given, not calibrated.
    assert value(args, "-append") == ["console=ttyS0 tsc_early_khz=2000000"]
    assert not can_hotplug(spec())


def test_kvm_uses_the_host_cpu_and_keeps_the_cmdline() -> None:
    args = qemu_args(spec(cmdline="console=ttyS0 quiet"), "/usr/bin/qemu", "kvm")
    assert args[0] == "/usr/bin/qemu"
    assert value(args, "-cpu") == ["host"]
    assert value(args, "-append") == ["console=ttyS0 quiet"]


def test_disk_and_taps_are_virtio_mmio_devices_on_microvm() -> None:
    args = qemu_args(spec(disk=Path("/d/disk.qcow2"), nics=(Nic("fm-tap0", "02:01:02:03:04:05"),),
                          seed=Path("/d/seed.img"), initrd=None), "qemu", "tcg")
    assert "-initrd" not in args
    assert value(args, "-drive") == ["id=disk0,if=none,file=/d/disk.qcow2,format=qcow2",
                                     "id=seed0,if=none,file=/d/seed.img,format=raw,readonly=on"]
    assert "virtio-blk-device,drive=seed0" in value(args, "-device")
    assert "virtio-blk-device,drive=disk0" in value(args, "-device")
    assert value(args, "-netdev") == ["tap,id=net0,ifname=fm-tap0,script=no,downscript=no"]
    assert ("virtio-net-device,netdev=net0,mac=02:01:02:03:04:05,host_mtu=1420"
            in value(args, "-device"))  # the mesh's MTU, told to the guest's driver
    raw = qemu_args(spec(disk=Path("/d/disk.raw")), "qemu", "tcg")
    assert value(raw, "-drive")[0].endswith("format=raw")


def test_gpus_need_q35_with_vfio_pci_and_allow_cpu_hotplug() -> None:
    gpu = spec(gpus=("0000:01:00.0",), max_vcpus=8, disk=Path("/d/disk.qcow2"))
    args = qemu_args(gpu, "qemu", "tcg")
    assert value(args, "-M") == ["q35"]
    assert "vfio-pci,host=0000:01:00.0" in value(args, "-device")
    assert "virtio-blk-pci,drive=disk0" in value(args, "-device")
    assert value(args, "-smp") == ["2,maxcpus=8"]
    assert value(args, "-append") == ["console=ttyS0"]  # q35 has a PIT: no TSC hint
    assert can_hotplug(gpu)


def test_q35_by_choice_has_no_tsc_hint_and_hotplugs() -> None:
    args = qemu_args(spec(max_vcpus=4), "qemu", "tcg", "q35")
    assert value(args, "-M") == ["q35"] and value(args, "-smp") == ["2,maxcpus=4"]
    assert value(args, "-append") == ["console=ttyS0"]
    assert can_hotplug(spec(), "q35") and not can_hotplug(spec(), "microvm")


def test_commas_in_names_and_paths_cannot_add_options() -> None:
    args = qemu_args(spec(name="a,b", workdir=Path("/run/v,m"),
                          serial_log=Path("/run/v,m/serial.log"), disk=Path("/d/x,file=y.qcow2")),
                     "qemu", "tcg")
    assert value(args, "-name")[0].startswith("a,,b,process=")
    assert "path=/run/v,,m/console.sock" in value(args, "-chardev")[0]
    assert value(args, "-qmp") == ["unix:/run/v,,m/qmp.sock,server=on,wait=off"]
    assert value(args, "-drive") == ["id=disk0,if=none,file=/d/x,,file=y.qcow2,format=qcow2"]
