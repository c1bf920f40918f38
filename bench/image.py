"""Appliance image benchmark: size, build time, and boot times under QEMU with software
emulation (TCG: KVM does not work here, so every boot figure is many times a real machine's).

The baseline is a minimal image (image/minimal: only systemd, the same kernel and partitions),
built and booted in the same run, at the same time as the appliance (one core each), so both see
the same load from the rest of the machine: `boot_ratio` = the node's boot to ready over the
minimal image's boot to multi-user (target <= 1.15). Boot times are the guest's clock (kernel
timestamps of the journal lines on the serial console); boot_to_console_s is the host's, from
QEMU's start.

    python bench/image.py [--quick]

--quick reuses images that are already built (building only what is missing). Prints one JSON
object."""

from __future__ import annotations

import argparse
import json
import re
import shutil
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from support.guest import REPO, BuiltImage, Guest, ImageUnavailable, build_image

MULTI_USER = r"systemd\[1\]: Reached target multi-user\.target"
NODE_READY = r"systemd\[1\]: Started formation-node\.service"
BOOT_TIMEOUT_S = 400


def _recorded_build_s(image: BuiltImage) -> float | None:
    try:
        return float((image.disk.parent / ".build_s").read_text())
    except (OSError, ValueError):
        return None


def _guest_time(guest: Guest, pattern: str) -> float:
    """The guest's own clock (the kernel timestamp of the journal line forwarded to the serial
    console) when `pattern` was logged: independent of how often the host looks."""
    regex = re.compile(r"^\[\s*([0-9]+\.[0-9]+)\][^\n]*(?:" + pattern + ")", re.MULTILINE)
    found = regex.search(guest.serial())
    if found is None:
        raise AssertionError(f"no timestamped {pattern!r} on the serial console")
    return float(found.group(1))


def _boot(image: BuiltImage, measure_console: bool) -> dict[str, float]:
    workdir = Path(tempfile.mkdtemp(prefix="fm-bench-", dir="/tmp"))
    try:
        with Guest(image, workdir) as guest:
            result = {}
            if measure_console:
                guest.wait_for(NODE_READY, BOOT_TIMEOUT_S)
                result["node_ready_s"] = _guest_time(guest, NODE_READY)
                deadline = time.monotonic() + 180
                while "Formation" not in guest.screen_text():
                    if time.monotonic() > deadline:
                        raise AssertionError("the console never drew on tty1")
                    time.sleep(0.5)
                # Host clock from QEMU's start: the guest cannot say when a frame was drawn.
                result["console_s"] = time.monotonic() - guest.started
            guest.wait_for(MULTI_USER, BOOT_TIMEOUT_S)
            result["multi_user_s"] = _guest_time(guest, MULTI_USER)
            return result
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="reuse built images")
    args = parser.parse_args()
    try:
        image = build_image(force=not args.quick)
        minimal = build_image("minimal", config=REPO / "image" / "minimal", force=not args.quick)
    except ImageUnavailable as exc:
        print(json.dumps({"skipped": f"appliance image cannot be built here: {exc}"}))
        return 0
    with ThreadPoolExecutor(max_workers=2) as pool:
        node_boot = pool.submit(_boot, image, True)
        base_boot = pool.submit(_boot, minimal, False)
        node, base = node_boot.result(), base_boot.result()
    result = {
        "image_mb": round(image.compressed.stat().st_size / 1e6, 1),
        "image_raw_mb": round(image.disk.stat().st_size / 1e6, 1),
        "minimal_image_mb": round(minimal.compressed.stat().st_size / 1e6, 1),
        "build_s": image.build_s if image.build_s is not None else _recorded_build_s(image),
        "build_reused": image.build_s is None,
        "accelerator": "tcg",
        "boot_to_node_ready_s": round(node["node_ready_s"], 1),
        "boot_to_console_s": round(node["console_s"], 1),
        "boot_to_multi_user_s": round(node["multi_user_s"], 1),
        "minimal_boot_s": round(base["multi_user_s"], 1),
        "boot_ratio": round(node["node_ready_s"] / base["multi_user_s"], 2),
        "boot_ratio_target": 1.15,
    }
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
