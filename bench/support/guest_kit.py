"""A tiny, real test guest for the VM drivers, built once per machine and shared by every test
process: Debian's cloud kernel (taken out of its .deb, nothing installed into /boot), a
busybox-static initramfs that loads the virtio modules the kernel builds as modules, and a small
ext4 root disk with a marker file. Tests and bench/vm.py import it as `bench.support.guest_kit`
(a benchmark must not import tests/).

What the guest does, on its serial console (ttyS0):
  - mounts /dev/vda when there is one and prints DISK_MARKER followed by the marker file;
  - prints GUEST_UP once its modules are loaded and acpid listens (the "it booted" proof);
  - runs a shell on the console, again and again, so `vm console` can send a command and read
    the answer; `poweroff -f` on a line powers the VM off (QEMU exits);
  - busybox acpid with the ACPI button and evdev modules turns a power-button press into
    `poweroff -f`. On QEMU's microvm the button comes through the ACPI generic event device;
    where a machine has no such button the guest ignores the press, and the caller's stop grace
    (vmm.stop_grace_s) ends it — exactly what a real guest without acpid does.
  - `panic=-1`: a panicking kernel reboots at once, and the QEMU driver runs with -no-reboot,
    so a guest that cannot boot ends its VMM instead of spinning. (pvpanic would say "panic"
    more precisely, but microvm's ACPI tables do not describe the device.)

The "broken" initramfs prints GUEST_BROKEN and its /init exits: the kernel panics ("Attempted to
kill init!"), which is what a guest that fails to boot looks like on the serial tail."""

from __future__ import annotations

import fcntl
import hashlib
import os
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
CACHE = Path(os.environ.get("FORMATION_GUEST_CACHE") or (
    "/var/cache/formation-guest" if os.geteuid() == 0 else REPO / ".cache" / "guest"))
KERNEL_META = "linux-image-cloud-amd64"  # Debian's metapackage: depends on the current version
BUSYBOX = "/bin/busybox"  # Debian's busybox-static: no shared libraries to copy

GUEST_UP = "FORMATION-GUEST-UP"
DISK_MARKER = "FORMATION-DISK:"
NET_MARKER = "FORMATION-NET:"  # the guest configured its network from ip=
COUNTER = "COUNTER "  # with formation.counter: "COUNTER n" every 100 ms
DISK_TEXT = "formation-root-disk-ok"
BROKEN_MARKER = "FORMATION-GUEST-BROKEN"
# tsc_early_khz: under TCG the kernel's TSC calibration on microvm (no PIT) is unreliable.
# panic=-1: reboot at once on a panic (which ends a QEMU run with -no-reboot).
CMDLINE = "console=ttyS0 tsc_early_khz=2000000 panic=-1 no_timer_check"

# The modules the guest loads, in no particular order (dependencies are resolved from each
# module's own `depends=` field): virtio transports (mmio for microvm, pci for q35), the block
# and net drivers, and the ACPI power button + evdev for acpid.
MODULES = ("virtio_mmio", "virtio_pci", "virtio_blk", "virtio_net", "button", "evdev")

# The network from the kernel command line, as initramfs-tools reads it for a directly booted
# kernel: ip=CLIENT:SERVER:GATEWAY:NETMASK:HOSTNAME:DEVICE:AUTOCONF:DNS0 (the kernel's own
# IP_PNP is not built into Debian's kernel). `formation.counter` on the command line prints
# "COUNTER n" on the serial console every 100 ms (the live-migration tests watch it).
_NET = """
for arg in $(cat /proc/cmdline); do
  case "$arg" in
    ip=*) IFS=: read -r client server gw mask host dev auto dns0 <<EOF_IP
${arg#ip=}
EOF_IP
      dev=${dev:-eth0}
      i=0
      while [ ! -e /sys/class/net/$dev ] && [ $i -lt 40 ]; do usleep 50000; i=$((i+1)); done
      eval $(ipcalc -p "$client" "$mask")
      ip link set lo up
      ip link set "$dev" up
      ip addr add "$client/$PREFIX" dev "$dev"
      [ -n "$gw" ] && ip route add default via "$gw" dev "$dev"
      [ -n "$host" ] && hostname "$host"
      [ -n "$dns0" ] && echo "nameserver $dns0" > /etc/resolv.conf
      echo "FORMATION-NET: $client/$PREFIX gw ${gw:--} dns ${dns0:--}";;
    formation.counter)
      (n=0; while true; do echo "COUNTER $n"; n=$((n+1)); usleep 100000; done) &;;
  esac
done"""

_INIT = f"""#!/bin/busybox sh
/bin/busybox --install -s /bin
export PATH=/bin
mkdir -p /proc /sys /dev /mnt /tmp /var/log /var/run /etc
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev
for m in $(cat /lib/modules/order); do insmod /lib/modules/$m.ko 2>/dev/null; done
acpid -c /etc/acpi
i=0
while ! ls -l /proc/$(pidof acpid)/fd 2>/dev/null | grep -q /dev/input && [ $i -lt 40 ]; do
  usleep 10000; i=$((i+1))
done
if grep -qx 0x0002 /sys/bus/virtio/devices/*/device 2>/dev/null; then
  i=0
  while [ ! -b /dev/vda ] && [ $i -lt 40 ]; do usleep 50000; i=$((i+1)); done
  if mount -t ext4 /dev/vda /mnt; then
    echo "{DISK_MARKER} $(cat /mnt/formation-marker)"
  fi
fi
{_NET}
echo {GUEST_UP}
while true; do setsid cttyhack sh; done
"""

_BROKEN_INIT = f"""#!/bin/busybox sh
echo {BROKEN_MARKER}
exit 1
"""

_POWER = "#!/bin/sh\npoweroff -f\n"


class Unavailable(Exception):
    """The guest kit cannot be built here (a tool or the kernel package is missing); says
    which, so a test can skip with the reason."""


@dataclass(frozen=True)
class GuestKit:
    kernel: Path
    initrd: Path
    disk: Path  # raw ext4 image; put a qcow2 overlay over it, never write it
    broken_initrd: Path
    cmdline: str


def _run(args: list[str], cwd: Path | None = None, missing: bool = False) -> str:
    """`missing`: a failure means the input cannot be had here (apt without the package or
    the network): Unavailable, a skip. Otherwise a failure is a broken build: RuntimeError."""
    done = subprocess.run(args, cwd=cwd, capture_output=True, text=True, timeout=600)
    if done.returncode != 0:
        tail = (done.stderr.strip().splitlines() or [f"exit {done.returncode}"])[-1]
        error = Unavailable if missing else RuntimeError
        raise error(f"{args[0]} {' '.join(args[1:3])} failed: {tail}")
    return done.stdout


def _kernel_package() -> str:
    """The versioned package the metapackage depends on now (apt's local lists; no network)."""
    if shutil.which("apt-cache") is None:
        raise Unavailable("apt-cache is missing: the guest kernel comes from Debian's "
                          f"{KERNEL_META}")
    out = _run(["apt-cache", "depends", KERNEL_META], missing=True)
    found = re.search(r"Depends:\s*(linux-image-\S+-cloud-amd64)", out)
    if found is None:
        raise Unavailable(f"apt does not know {KERNEL_META} (run apt-get update)")
    return found.group(1)


def _key(package: str) -> str:
    h = hashlib.sha256()
    h.update(package.encode())
    h.update(Path(__file__).read_bytes())
    h.update(Path(BUSYBOX).read_bytes())
    return h.hexdigest()[:16]


def _depends(module: Path) -> list[str]:
    """The module's `depends=` from its .modinfo section (Debian ships them uncompressed)."""
    found = re.search(rb"\x00depends=([^\x00]*)\x00", b"\x00" + module.read_bytes())
    return [d for d in (found.group(1).decode().split(",") if found else []) if d]


def _module_order(moddir: Path) -> list[Path]:
    by_name = {p.stem.replace("-", "_"): p for p in moddir.rglob("*.ko")}
    order: list[Path] = []

    def visit(name: str) -> None:
        path = by_name.get(name.replace("-", "_"))
        if path is None:
            raise Unavailable(f"module {name} is not in the kernel package")
        if path in order:
            return
        for dep in _depends(path):
            visit(dep)
        order.append(path)

    for name in MODULES:
        visit(name)
    return order


def _cpio(root: Path, out: Path) -> None:
    """A newc archive of `root`, files owned by root, in a stable order."""
    names = sorted(str(p.relative_to(root)) for p in root.rglob("*"))
    listing = "\n".join([".", *names]) + "\n"
    with out.open("wb") as sink:
        done = subprocess.run(["cpio", "--quiet", "-o", "-H", "newc", "-R", "0:0"], cwd=root,
                              input=listing.encode(), stdout=sink, stderr=subprocess.PIPE,
                              timeout=120)
    if done.returncode != 0:
        raise RuntimeError(f"cpio failed: {done.stderr.decode().strip()}")


def _initramfs(out: Path, init: str, modules: list[Path]) -> None:
    with tempfile.TemporaryDirectory(prefix="fm-initramfs-", dir=out.parent) as tmp:
        root = Path(tmp)
        (root / "bin").mkdir()
        shutil.copy2(BUSYBOX, root / "bin" / "busybox")
        (root / "init").write_text(init)
        (root / "init").chmod(0o755)
        moddir = root / "lib" / "modules"
        moddir.mkdir(parents=True)
        for mod in modules:
            shutil.copy2(mod, moddir / mod.name)
        (moddir / "order").write_text("\n".join(m.stem for m in modules) + "\n")
        # busybox acpid maps the power key to the PWRF (or PWRB) event and runs the script
        # named after it under its config directory.
        for event in ("PWRF", "PWRB"):
            script = root / "etc" / "acpi" / event / "00000080"
            script.parent.mkdir(parents=True)
            script.write_text(_POWER)
            script.chmod(0o755)
        _cpio(root, out)


def _disk(out: Path) -> None:
    with tempfile.TemporaryDirectory(prefix="fm-disk-", dir=out.parent) as tmp:
        (Path(tmp) / "formation-marker").write_text(DISK_TEXT + "\n")
        _run(["mkfs.ext4", "-q", "-F", "-L", "formation-root", "-d", tmp, str(out), "16M"])


def _build(target: Path, package: str) -> None:
    work = Path(tempfile.mkdtemp(prefix="build-", dir=target.parent))
    try:
        _run(["apt-get", "download", "-q", package], cwd=work, missing=True)
        deb = next(work.glob("*.deb"))
        tree = work / "tree"
        _run(["dpkg-deb", "-x", str(deb), str(tree)])
        kernels = sorted((tree / "boot").glob("vmlinuz-*"))
        if not kernels:
            raise Unavailable(f"{package} holds no /boot/vmlinuz-*")
        out = work / "kit"
        out.mkdir()
        shutil.copy2(kernels[0], out / "vmlinuz")
        modules = _module_order(tree / "lib" / "modules")
        _initramfs(out / "initrd.cpio", _INIT, modules)
        _initramfs(out / "broken.cpio", _BROKEN_INIT, [])
        _disk(out / "disk.raw")
        (out / "package").write_text(package + "\n")
        out.rename(target)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def build_guest_kit() -> GuestKit:
    """The cached kit, built first when missing; parallel callers wait on one lock file and
    share one build. Raises Unavailable naming what is missing."""
    for tool in ("apt-get", "dpkg-deb", "cpio", "mkfs.ext4"):
        if shutil.which(tool) is None:
            raise Unavailable(f"{tool} is missing (scripts/system-packages.sh installs it)")
    if not Path(BUSYBOX).exists():
        raise Unavailable(f"{BUSYBOX} is missing (Debian package busybox-static)")
    package = _kernel_package()
    target = CACHE / _key(package)
    CACHE.mkdir(parents=True, exist_ok=True)
    with (CACHE / ".lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not target.exists():
            _build(target, package)
    return GuestKit(kernel=target / "vmlinuz", initrd=target / "initrd.cpio",
                    disk=target / "disk.raw", broken_initrd=target / "broken.cpio",
                    cmdline=CMDLINE)


if __name__ == "__main__":
    # `--env`: shell assignments for the README's walk (eval "$(python -m ... --env)")
    made = build_guest_kit()
    if sys.argv[1:] == ["--env"]:
        print(f"KERNEL={shlex.quote(str(made.kernel))} INITRD={shlex.quote(str(made.initrd))} "
              f"CMDLINE={shlex.quote(made.cmdline)}")
    else:
        print(made)
