"""An instance's directory on the node that runs it: run_dir/<16 hex of its id>/ holds the VMM's
socket and pid file (the driver's), the qcow2 overlay disk, the serial log, and `machine.json`,
the spec it was started with, so a restarted node service can adopt the VM it left running."""

from __future__ import annotations

import asyncio
import json
import shutil
from dataclasses import asdict
from pathlib import Path
from typing import Any

from formation.node.vmm.machine import MachineSpec, Nic, VmmError

META = "machine.json"
SERIAL = "serial.log"
DISK = "disk.qcow2"
_PATHS = ("kernel", "workdir", "serial_log", "initrd", "disk", "seed")
NAME_HEX = 16  # of the id: the VMM's unix sockets in the directory must stay under 108 bytes


def path_for(run_dir: Path, instance: str) -> Path:
    return run_dir / instance[:NAME_HEX]


def list_instances(run_dir: Path) -> set[str]:
    """Ids of the instances with a directory here, from their machine.json (blocking: small
    reads)."""
    found = set()
    try:
        dirs = [p for p in run_dir.iterdir() if p.is_dir() and len(p.name) == NAME_HEX]
    except OSError:
        return set()
    for d in dirs:
        meta = read_meta(d)
        if meta is not None:
            found.add(meta[0].instance)
    return found


def write_meta(spec: MachineSpec, extra: dict[str, Any]) -> None:
    data = {k: (str(v) if isinstance(v, Path) else v) for k, v in asdict(spec).items()}
    data["gpus"] = list(spec.gpus)
    data["nics"] = [{"tap": n.tap, "mac": n.mac, "mtu": n.mtu} for n in spec.nics]
    tmp = spec.workdir / (META + ".tmp")
    tmp.write_text(json.dumps({"spec": data, **extra}))
    tmp.replace(spec.workdir / META)


def read_meta(workdir: Path) -> tuple[MachineSpec, dict[str, Any]] | None:
    """The spec and the extra fields written by write_meta; None when absent or unreadable."""
    try:
        data = json.loads((workdir / META).read_text())
        raw = dict(data.pop("spec"))
        for key in _PATHS:
            if raw.get(key) is not None:
                raw[key] = Path(raw[key])
        raw["gpus"] = tuple(raw.get("gpus", ()))
        raw.pop("taps", None)  # written before NICs had MACs
        raw["nics"] = tuple(Nic(str(n["tap"]), str(n["mac"]), n.get("mtu"))
                            for n in raw.get("nics", ()))
        return MachineSpec(**raw), data
    except (OSError, ValueError, TypeError, KeyError):
        return None


async def create_overlay(base: Path, overlay: Path, size_gb: int) -> None:
    """A qcow2 overlay over the image's raw disk, grown to the instance's size: the image stays
    shared and untouched, the instance writes only its own blocks."""
    proc = await asyncio.create_subprocess_exec(
        "qemu-img", "create", "-q", "-f", "qcow2", "-b", str(base), "-F", "raw",
        str(overlay), f"{size_gb}G",
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    _, err = await proc.communicate()
    if proc.returncode != 0:
        line = err.decode(errors="replace").strip().splitlines()
        raise VmmError(f"disk: qemu-img could not create the overlay: "
                       f"{line[-1] if line else proc.returncode}")


def remove(workdir: Path) -> None:
    shutil.rmtree(workdir, ignore_errors=True)
