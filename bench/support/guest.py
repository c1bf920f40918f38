"""Builds the appliance image (once per cache) and boots it under QEMU with software emulation,
for bench/image.py and the image tests (which import it as `bench.support.guest`; a
benchmark must not import tests/). The guest's serial console goes to a file that is read as it
grows; the QEMU monitor sends keys and reads the VGA text buffer and screen.

Direct kernel boot (the kernel and initrd mkosi writes beside the disk), or the real firmware path
(OVMF, systemd-boot, the boot entry on the ESP), with the disk behind a copy-on-write overlay:
the built image stays pristine and every boot is a first boot."""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
# Where scripts/build-image.sh keeps its builds (the same rule): outside the checkout as root, so
# every clone and worktree on the machine reuses them.
CACHE = Path(os.environ.get("FORMATION_IMAGE_CACHE") or (
    "/var/cache/formation-image" if os.geteuid() == 0 else REPO / ".cache" / "image"))
QEMU = "qemu-system-x86_64"
# Debian's ovmf package (scripts/image-tools.sh installs it with the build tools).
OVMF_CODE = Path("/usr/share/OVMF/OVMF_CODE_4M.fd")
OVMF_VARS = Path("/usr/share/OVMF/OVMF_VARS_4M.fd")
# Serial first in the list of consoles would make tty1 /dev/console; systemd's status lines and
# the journal (forwarded) go to the last one, the serial line the tests read.
# no_timer_check: on a busy host, emulated time makes the kernel's IO-APIC timer check fail
# ("IO-APIC + timer doesn't work!", a panic seen on a loaded CI-like machine). panic=-1 with
# QEMU's -no-reboot turns any panic into a QEMU exit the test reports at once, not a hang.
BASE_CMDLINE = ("root=PARTLABEL=formation-root rw console=tty1 console=ttyS0,115200 "
                "systemd.firstboot=off no_timer_check panic=-1 "
                "systemd.show_status=yes loglevel=4 "
                "systemd.journald.forward_to_console=1 nomodeset")


class ImageUnavailable(Exception):
    """The image cannot be built here (tools missing or not installable); says why."""


@dataclass
class BuiltImage:
    disk: Path
    kernel: Path
    initrd: Path
    build_s: float | None  # None: an up-to-date build was reused

    @property
    def compressed(self) -> Path:
        return self.disk.with_name(self.disk.name + ".zst")


def build_image(name: str = "formation", config: Path | None = None, force: bool = False,
                timeout_s: float = 1800) -> BuiltImage:
    """Runs scripts/build-image.sh; raises ImageUnavailable when the tools cannot be had."""
    if shutil.which(QEMU) is None:
        raise ImageUnavailable(f"{QEMU} is not installed (scripts/system-packages.sh)")
    check = subprocess.run(["bash", str(REPO / "scripts/image-tools.sh")], capture_output=True,
                           text=True, timeout=600)
    if check.returncode != 0:
        raise ImageUnavailable(check.stderr.strip().splitlines()[-1] if check.stderr.strip()
                               else "scripts/image-tools.sh failed")
    args = ["bash", str(REPO / "scripts/build-image.sh"), "--name", name]
    if config is not None:
        args += ["--config", str(config)]
    if force:
        args.append("--force")
    # One log per checkout: the cache is shared by every clone on the machine.
    log = CACHE / f"build-{name}-{hashlib.sha256(str(REPO).encode()).hexdigest()[:8]}.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    with log.open("w") as out:
        done = subprocess.run(args, stdout=subprocess.PIPE, stderr=out, text=True,
                              timeout=timeout_s)
    elapsed = time.monotonic() - started
    if done.returncode != 0:
        tail = log.read_text().strip().splitlines()[-15:]
        raise RuntimeError(f"image build failed (log {log}):\n" + "\n".join(tail))
    disk = Path(done.stdout.strip().splitlines()[-1])
    reused = "is up to date" in log.read_text()
    image = BuiltImage(disk, disk.with_suffix(".vmlinuz"), disk.with_suffix(".initrd"),
                       None if reused else elapsed)
    for part in (image.disk, image.kernel, image.initrd):
        if not part.exists():
            raise RuntimeError(f"the build did not produce {part}")
    return image


def uefi_disk(image: BuiltImage, path: Path, cmdline_extra: str) -> Path:
    """A copy of the built disk for a UEFI boot, with `cmdline_extra` appended to its boot
    entries on the ESP (what an operator does in loader/entries/ to boot headless), and the
    test's console settings in place of `quiet`. Edited with mtools: nothing is mounted."""
    if not (OVMF_CODE.exists() and OVMF_VARS.exists()):
        raise ImageUnavailable(f"{OVMF_CODE} is missing (Debian package ovmf)")
    subprocess.run(["cp", "--sparse=always", str(image.disk), str(path)], check=True)
    table = json.loads(subprocess.run(["sfdisk", "--json", str(path)], capture_output=True,
                                      text=True, check=True).stdout)["partitiontable"]
    esp = next(p for p in table["partitions"]
               if p["type"].upper() == "C12A7328-F81F-11D2-BA4B-00A0C93EC93B")
    fat = f"{path}@@{esp['start'] * table.get('sectorsize', 512)}"
    listing = subprocess.run(["mdir", "-b", "-i", fat, "::/loader/entries"], check=True,
                             capture_output=True, text=True).stdout.split()
    entries = [name if name.startswith("::") else f"::/loader/entries/{name}"
               for name in listing if name.endswith(".conf")]
    if not entries:
        raise RuntimeError(f"no boot entry on the ESP of {image.disk}")
    console = BASE_CMDLINE.split("systemd.firstboot=off", 1)[1].replace("nomodeset", "").split()
    for entry in entries:
        text = subprocess.run(["mtype", "-i", fat, entry], check=True, capture_output=True,
                              text=True).stdout
        lines = []
        for line in text.splitlines():
            if line.startswith("options "):
                words = [w for w in line.split()[1:] if w not in ("quiet",)
                         and not w.startswith("loglevel=")]
                line = " ".join(["options", *words, *console, *cmdline_extra.split()])
            lines.append(line)
        edited = path.with_suffix(".entry")
        edited.write_text("\n".join(lines) + "\n")
        subprocess.run(["mcopy", "-o", "-i", fat, str(edited), entry], check=True,
                       capture_output=True)
    return path


def fat_answer_disk(path: Path, files: dict[str, str]) -> Path:
    """A small FAT disk labelled FORMATION holding the given files, as an operator's USB stick;
    made with mkfs.fat and mcopy, so nothing is mounted on the host."""
    subprocess.run(["truncate", "-s", "8M", str(path)], check=True)
    subprocess.run(["mkfs.fat", "-n", "FORMATION", str(path)], check=True, capture_output=True)
    staging = Path(tempfile.mkdtemp(prefix="fm-answer-"))
    try:
        for name, text in files.items():
            (staging / name).write_text(text)
            subprocess.run(["mcopy", "-i", str(path), str(staging / name), f"::{name}"],
                           check=True, capture_output=True)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return path


@dataclass
class Guest:
    """One QEMU/TCG boot of the image. Use as a context manager: QEMU is always killed."""

    image: BuiltImage
    workdir: Path
    cmdline_extra: str = ""
    disk_size: str = "3G"
    extra_drives: list[Path] = field(default_factory=list)
    memory_mb: int = 1536
    # None: direct kernel boot. A Path: UEFI boot of that disk (see uefi_disk) through OVMF.
    uefi_disk: Path | None = None
    process: subprocess.Popen | None = None
    started: float = 0.0

    @property
    def serial_log(self) -> Path:
        return self.workdir / "serial.log"

    @property
    def monitor_path(self) -> Path:
        return self.workdir / "monitor.sock"

    def __enter__(self) -> Guest:
        overlay = self.workdir / "disk.qcow2"
        backing = self.uefi_disk or self.image.disk
        subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", "-F", "raw", "-b",
                        str(backing), str(overlay), self.disk_size], check=True)
        if self.uefi_disk is None:
            boot = ["-kernel", str(self.image.kernel), "-initrd", str(self.image.initrd),
                    "-append", f"{BASE_CMDLINE} {self.cmdline_extra}".strip()]
        else:
            variables = self.workdir / "OVMF_VARS.fd"
            shutil.copyfile(OVMF_VARS, variables)
            boot = ["-drive", f"if=pflash,format=raw,unit=0,readonly=on,file={OVMF_CODE}",
                    "-drive", f"if=pflash,format=raw,unit=1,file={variables}"]
        args = [
            QEMU, "-accel", "tcg", "-machine", "q35", "-cpu", "max", "-smp", "1",
            "-m", str(self.memory_mb), "-nic", "none", "-display", "none", "-vga", "std",
            *boot,
            "-drive", f"if=virtio,format=qcow2,file={overlay}",
            "-serial", f"file:{self.serial_log}",
            "-monitor", f"unix:{self.monitor_path},server=on,wait=off",
            "-no-reboot",
        ]
        for drive in self.extra_drives:
            args += ["-drive", f"if=virtio,format=raw,file={drive}"]
        self.started = time.monotonic()
        self.process = subprocess.Popen(args, stdin=subprocess.DEVNULL,
                                        stdout=subprocess.DEVNULL,
                                        stderr=(self.workdir / "qemu.log").open("w"))
        return self

    def __exit__(self, *exc) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=30)

    # the serial console -----------------------------------------------------------------------
    def serial(self) -> str:
        try:
            raw = self.serial_log.read_bytes()
        except FileNotFoundError:
            return ""
        return re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", raw.decode("utf-8", "replace"))

    def wait_for(self, pattern: str, timeout_s: float) -> float:
        """Seconds since QEMU started when `pattern` (a regex) appeared on the serial console."""
        regex = re.compile(pattern)
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if regex.search(self.serial()):
                return time.monotonic() - self.started
            if self.process is not None and self.process.poll() is not None:
                raise AssertionError(f"QEMU exited ({self.process.returncode}) before "
                                     f"{pattern!r}:\n{self.tail()}")
            time.sleep(0.5)
        raise AssertionError(f"no {pattern!r} on the serial console after {timeout_s:.0f} s:\n"
                             f"{self.tail()}")

    def appears(self, pattern: str, timeout_s: float) -> bool:
        """Whether `pattern` shows on the serial console within `timeout_s`: for a step that
        may need repeating (a key pressed before the app reads keys), not for an assertion."""
        try:
            self.wait_for(pattern, timeout_s)
        except AssertionError:
            if self.process is not None and self.process.poll() is not None:
                raise
            return False
        return True

    def tail(self, lines: int = 40) -> str:
        return "\n".join(self.serial().splitlines()[-lines:])

    # the monitor: keys and the screen ------------------------------------------------------------
    def monitor(self, command: str) -> str:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            sock.settimeout(20)
            sock.connect(str(self.monitor_path))
            self._read_prompt(sock)
            sock.sendall(command.encode() + b"\n")
            reply = self._read_prompt(sock)
        # The monitor echoes the command line (with terminal escapes) before its answer.
        text = re.sub(r"\x1b\[[0-9;]*[A-Za-z]|\r", "", reply)
        return text.split("\n", 1)[1] if "\n" in text else ""

    @staticmethod
    def _read_prompt(sock: socket.socket) -> str:
        data = b""
        while not data.endswith(b"(qemu) "):
            chunk = sock.recv(65536)
            if not chunk:
                break
            data += chunk
        return data.decode("utf-8", "replace").removesuffix("(qemu) ")

    def sendkey(self, key: str) -> None:
        self.monitor(f"sendkey {key}")

    def screen_text(self) -> str:
        """The VGA text buffer at 0xb8000 (80x25 cells of character + attribute): what tty1
        shows, as text. The kernel keeps the VGA text console with `nomodeset`."""
        dump = self.monitor("xp /2000hx 0xb8000")
        cells = [int(value, 16) for value in re.findall(r"0x([0-9a-f]+)", _values(dump))]
        chars = "".join(chr(c & 0xFF) if 32 <= (c & 0xFF) < 127 else " " for c in cells)
        return "\n".join(chars[i:i + 80] for i in range(0, len(chars), 80))

    def screendump(self, path: Path) -> bytes:
        """The screen as QEMU shows it (PPM); returns the pixel bytes."""
        self.monitor(f"screendump {path}")
        data = path.read_bytes()
        # P6\n<w> <h>\n<max>\n<pixels>
        header_end = 0
        for _ in range(3):
            header_end = data.index(b"\n", header_end) + 1
        return data[header_end:]


def _values(dump: str) -> str:
    """The values of an `xp` dump, without the address at the start of each line."""
    return "\n".join(line.split(":", 1)[1] for line in dump.splitlines() if ":" in line)
