"""A real, time-bounded boot: the only honest test of KVM. On some hosts /dev/kvm opens and even
runs a little code, yet every VM exit takes milliseconds and a Linux guest never finishes
booting. So the same tiny guest boots under TCG and under KVM, and KVM must not be much slower.

The guest is one BIOS boot sector: it writes "OK" to the serial port and leaves through QEMU's
isa-debug-exit device, which makes QEMU exit with status (0x10 << 1) | 1."""

from __future__ import annotations

import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from formation.node.proc import run_command

# mov dx,0x3f8; mov al,'O'; out dx,al; mov al,'K'; out dx,al;
# mov dx,0xf4; mov al,0x10; out dx,al; hlt; jmp hlt
_CODE = bytes.fromhex("baf803b04fee b04bee baf400b010ee f4 ebfd".replace(" ", ""))
BOOT_SECTOR = _CODE + bytes(510 - len(_CODE)) + b"\x55\xaa"
EXIT_STATUS = (0x10 << 1) | 1


@dataclass(frozen=True)
class BootResult:
    ok: bool
    seconds: float
    detail: str


async def boot_test(qemu: str, accel: str, timeout_s: float) -> BootResult:
    with tempfile.TemporaryDirectory(prefix="formation-probe-") as tmp:
        image = Path(tmp) / "boot.bin"
        image.write_bytes(BOOT_SECTOR)
        args = [
            qemu, "-accel", accel, "-M", "pc", "-nodefaults", "-display", "none",
            "-monitor", "none", "-serial", "stdio", "-no-reboot", "-m", "16",
            "-device", "isa-debug-exit,iobase=0xf4,iosize=0x04",
            "-drive", f"file={image},format=raw,if=ide,snapshot=on",
        ]
        start = time.monotonic()
        try:
            done = await run_command(args, timeout_s)
        except TimeoutError:  # before OSError: TimeoutError is one of its subclasses
            why = f"the test guest hung (no exit in {timeout_s:g} s)"
            return BootResult(False, timeout_s, why)
        except OSError as exc:
            return BootResult(False, 0.0, f"cannot run {qemu}: {exc.strerror}")
        elapsed = time.monotonic() - start
    if done.returncode == EXIT_STATUS and b"OK" in done.stdout:
        return BootResult(True, elapsed, f"test guest booted in {elapsed:.2f} s")
    lines = [ln for ln in done.stderr.decode(errors="replace").splitlines() if "warning" not in ln]
    reason = lines[-1] if lines else f"exit status {done.returncode}"
    return BootResult(False, elapsed, f"test guest failed: {reason}")
