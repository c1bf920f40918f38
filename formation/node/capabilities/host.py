"""Cheap facts about the host, read from /proc, /sys and PATH. Each returns a Capability."""

from __future__ import annotations

import fcntl
import os
import re
import shutil
import time
from pathlib import Path

from formation.api.models import Capability, Resources, WireGuardKind
from formation.node.proc import run_command

KVM_GET_API_VERSION = 0xAE00
KVM_CREATE_VM = 0xAE01


def meminfo() -> dict[str, int]:
    values: dict[str, int] = {}
    with open("/proc/meminfo") as handle:
        for line in handle:
            key, _, rest = line.partition(":")
            values[key] = int(rest.split()[0])
    return values


def resources(data_dir: Path) -> Resources:
    mem = meminfo()
    probe_dir = data_dir if data_dir.exists() else Path("/")
    disk = shutil.disk_usage(probe_dir)
    return Resources(
        cpus=os.cpu_count() or 1,
        memory_total_mb=mem.get("MemTotal", 0) // 1024,
        memory_available_mb=mem.get("MemAvailable", 0) // 1024,
        disk_total_gb=round(disk.total / 1e9, 1),
        disk_free_gb=round(disk.free / 1e9, 1),
        load_1m=os.getloadavg()[0],
    )


class ResourceSampler:
    """`resources()` at most once per `max_age_s`: it parses /proc/meminfo and stats the disk,
    which is most of what a status request would otherwise cost, and none of it changes
    meaningfully within a second."""

    def __init__(self, data_dir: Path, max_age_s: float = 1.0) -> None:
        self.data_dir = data_dir
        self.max_age_s = max_age_s
        self._sample: Resources | None = None
        self._taken_at = 0.0

    def current(self) -> Resources:
        now = time.monotonic()
        if self._sample is None or now - self._taken_at >= self.max_age_s:
            self._sample = resources(self.data_dir)
            self._taken_at = now
        return self._sample


def kvm_device() -> Capability:
    """The cheap half of the KVM check: the device opens and answers the ioctls to make a VM.
    Necessary, never sufficient (see guest.py)."""
    flags = Path("/proc/cpuinfo").read_text() if Path("/proc/cpuinfo").exists() else ""
    has_flag = bool(re.search(r"\b(vmx|svm)\b", flags))
    try:
        fd = os.open("/dev/kvm", os.O_RDWR | os.O_CLOEXEC)
    except FileNotFoundError:
        why = "no /dev/kvm" + ("" if has_flag else " and the CPU has no vmx/svm flag")
        return Capability(name="kvm", ok=False, reason=why)
    except PermissionError:
        return Capability(name="kvm", ok=False, reason="/dev/kvm exists but is not accessible")
    try:
        version = fcntl.ioctl(fd, KVM_GET_API_VERSION)
        vm_fd = fcntl.ioctl(fd, KVM_CREATE_VM, 0)
        os.close(vm_fd)
    except OSError as exc:
        return Capability(name="kvm", ok=False, reason=f"/dev/kvm refused to create a VM: {exc}")
    finally:
        os.close(fd)
    return Capability(name="kvm", ok=True, summary=f"KVM API {version}, VM creation works")


async def binary_version(binary: str, name: str, pattern: str) -> Capability:
    path = shutil.which(binary)
    if path is None:
        return Capability(name=name, ok=False, reason=f"{binary} is not installed (not on PATH)")
    try:
        done = await run_command([path, "--version"], 5)
    except (OSError, TimeoutError) as exc:
        return Capability(name=name, ok=False, reason=f"{path} --version failed: {exc!r}")
    match = re.search(pattern, (done.stdout + done.stderr).decode(errors="replace"))
    version = match.group(1) if match else "unknown version"
    return Capability(name=name, ok=True, summary=f"{path} {version}")


def wireguard() -> tuple[Capability, WireGuardKind]:
    """Kernel WireGuard if the module is loaded or loadable, else wireguard-go, else nothing."""
    release = os.uname().release
    if Path("/sys/module/wireguard").exists() or module_available(
            Path(f"/lib/modules/{release}"), "wireguard"):
        return Capability(name="wireguard", ok=True, summary="kernel module"), "kernel"
    go = shutil.which("wireguard-go")
    if go:
        return Capability(
            name="wireguard", ok=True,
            summary=f"wireguard-go at {go} (kernel {release} has no WireGuard module)",
        ), "wireguard-go"
    return Capability(
        name="wireguard", ok=False,
        reason=f"kernel {release} has no WireGuard module and wireguard-go is not installed",
    ), "none"


def module_available(root: Path, name: str) -> bool:
    """Loadable or built in, from depmod's indexes: one file read each, where walking the
    module tree took seconds of the appliance's boot under emulation. Without the indexes
    (a tree depmod never ran on), the walk."""
    found_index = False
    for index in ("modules.dep", "modules.builtin"):
        try:
            text = (root / index).read_text(errors="replace")
        except OSError:
            continue
        found_index = True
        if re.search(rf"(^|/){re.escape(name)}\.ko(\.[a-z]+)?(:|$)", text, re.MULTILINE):
            return True
    if found_index or not root.exists():
        return False
    return any(root.rglob(f"{name}.ko*"))


def wg_tools() -> Capability:
    path = shutil.which("wg")
    if path:
        return Capability(name="wg_tools", ok=True, summary=path)
    return Capability(name="wg_tools", ok=False, reason="`wg` (wireguard-tools) is not installed")


def ip_forwarding() -> Capability:
    try:
        value = Path("/proc/sys/net/ipv4/ip_forward").read_text().strip()
    except OSError as exc:
        return Capability(name="ip_forwarding", ok=False, reason=f"cannot read: {exc.strerror}")
    if value == "1":
        return Capability(name="ip_forwarding", ok=True, summary="net.ipv4.ip_forward=1")
    return Capability(
        name="ip_forwarding", ok=False,
        reason="net.ipv4.ip_forward=0: VMs on other hosts are unreachable until it is 1",
    )


def sized(name: str, value: float, unit: str, minimum: float) -> Capability:
    if value >= minimum:
        return Capability(name=name, ok=True, summary=f"{value:g} {unit}")
    return Capability(name=name, ok=False, summary=f"{value:g} {unit}",
                      reason=f"{value:g} {unit} is below the minimum of {minimum:g} {unit}")
