"""Workload-image benchmark (issue 17, as root). Prints one JSON object.

- parse_per_s: the issue's small Formfile parsed (with its build context, so COPY sources are
  checked) by formation.pack.formfile.parse_formfile, per second;
- build_s: that Formfile built by the real builder (formation.pack.build) with a warm base
  system and apt archive: the layer cache the pack build tests use (support/pack_probe.py), so
  a run after the tests is warm. Its first step names the run, so every step after the base is
  really built;
- rebuild_last_line_s: the same Formfile with its last step changed; rebuild_ratio =
  rebuild / build (target <= 0.3: the cache keeps every step before the changed line). Both are
  medians over --rounds rounds (3 with --quick, else 5; each under a new run id), the samples
  under `samples` (with rebuild_finish_s: the part of each rebuild spent in the steps every
  build ends with, system setup and the disk image);
- image_mb: kernel + initrd + disk of the built image;
- boot_to_entrypoint_s: the QEMU driver's boot call under TCG (software emulation: no KVM
  here) to the ENTRYPOINT's marker on the serial console. A Debian boot under TCG takes far
  longer than the other figures, so --quick skips it (null, the reason under `unmeasured`)
  unless --boot is given.

The layers this run made are removed at the end (the base and the apt archive stay).

    python bench/pack.py [--quick] [--boot] [--rounds N]
"""

from __future__ import annotations

import argparse
import asyncio
import fcntl
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

from support.pack_probe import (
    CACHE,
    boot_to_marker,
    formfile_text,
    image_mb,
    results,
    write_context,
)

from formation.pack.build import BuildProgress, BuildSettings, BuiltImage, build_image
from formation.pack.build.diskchain import DiskCache
from formation.pack.formfile import parse_formfile

BOOT_TIMEOUT_S = 900.0


def parse_rate(context: Path, seconds: float) -> float:
    text = formfile_text(uuid.uuid4().hex[:12])
    count, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        for _ in range(100):
            parse_formfile(text, context)
        count += 100
    return count / (time.perf_counter() - start)


@dataclass
class Timed:
    image: BuiltImage
    seconds: float
    warm: bool  # the base system came from the cache
    finish_s: float  # the steps every build runs, cached or not (system setup, disk image)


async def build(text: str, context: Path, out: Path) -> Timed:
    steps: dict[int, bool] = {}
    finishing: list[float] = []

    def progress(p: BuildProgress) -> None:
        steps.setdefault(p.step, p.cached)
        if p.step > 0 and p.line is None and not finishing:
            finishing.append(time.monotonic())

    spec = parse_formfile(text, context)
    before = layers()
    start = time.monotonic()
    try:
        image = await build_image(spec, context, BuildSettings(cache_dir=CACHE), out, progress)
    finally:
        # One build at a time per cache (its lock): what appeared meanwhile is this build's
        # (short of a concurrent one ending just before it took the lock), not every layer
        # since the run began, which would include a concurrent test session's.
        MADE.update(layers() - before)
    end = time.monotonic()
    return Timed(image, end - start, steps.get(0, False), end - (finishing or [end])[0])


def layers() -> set[str]:
    return {p.name for p in (CACHE / "l").glob("*.json")}


MADE: set[str] = set()  # the layers this run's builds made (removed at the end)


def remove_layers(made: set[str]) -> None:
    """Removes the layers `made`, except a base (made once per machine, kept for every later
    build), under the cache's lock so no build is reading them."""
    fd = os.open(CACHE / "lock", os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        for name in made & layers():
            if '"label": "base ' in (CACHE / "l" / name).read_text():
                continue
            (CACHE / "l" / name).unlink()
            shutil.rmtree(CACHE / "l" / name.removesuffix(".json"), ignore_errors=True)
            for suffix in (".img", ".boot", ".synced"):  # the disk cached for its stack
                (DiskCache(CACHE).dir / name.replace(".json", suffix)).unlink(missing_ok=True)
    finally:
        os.close(fd)


async def run(quick: bool, boot: bool, rounds: int) -> dict[str, object]:
    unmeasured: dict[str, str] = {}
    load = os.getloadavg()[0]
    root = Path(tempfile.mkdtemp(prefix="fm-bench-pack-"))
    context = write_context(root / "ctx")
    rate = parse_rate(context, 1.0 if quick else 5.0)
    build_s = rebuild_s = size = boot_s = None
    kept: BuiltImage | None = None
    samples: dict[str, list[float]] = {}
    try:
        if os.geteuid() != 0 or not shutil.which("mmdebstrap"):
            unmeasured["build_s"] = "building needs root and mmdebstrap"
            return results(rate, None, None, None, None, unmeasured)
        builds: list[float] = []
        rebuilds: list[float] = []
        finishes: list[float] = []
        for n in range(rounds):
            # A fresh run id per round: every step after the base is built again.
            run_id = uuid.uuid4().hex[:12]
            first = await build(formfile_text(run_id), context, root / f"b{n}")
            if not first.warm:
                unmeasured["build_s"] = ("the base system was not cached: the first build "
                                         "downloaded it (that round is left out)")
                continue
            again = await build(formfile_text(run_id, "RUN echo changed > /srv/changed"),
                                context, root / f"r{n}")
            builds.append(first.seconds)
            rebuilds.append(again.seconds)
            finishes.append(again.finish_s)
            shutil.rmtree(root / f"r{n}")
            if kept is None:  # the first warm build's image is measured and booted
                size, kept = image_mb(first.image), first.image
            else:
                shutil.rmtree(root / f"b{n}")
        if builds:
            build_s, rebuild_s = statistics.median(builds), statistics.median(rebuilds)
            samples = {"build_s": [round(b, 1) for b in builds],
                       "rebuild_last_line_s": [round(r, 1) for r in rebuilds],
                       "rebuild_finish_s": [round(f, 1) for f in finishes]}
        if quick and not boot:
            unmeasured["boot_to_entrypoint_s"] = (
                "--quick skips the TCG boot (a Debian guest takes over a minute to its "
                "ENTRYPOINT under emulation here); run without --quick, or with --boot")
        elif kept is not None:
            try:
                boot_s = await boot_to_marker(kept, root / "vm", BOOT_TIMEOUT_S)
            except (TimeoutError, RuntimeError) as e:
                unmeasured["boot_to_entrypoint_s"] = str(e)
    finally:
        if (CACHE / "l").is_dir():
            remove_layers(MADE)
        shutil.rmtree(root, ignore_errors=True)
    out = results(rate, build_s, rebuild_s, size, boot_s, unmeasured)
    out |= {"rounds": rounds, "samples": samples, "load_avg_1m_at_start": load}
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--boot", action="store_true", help="boot the image even with --quick")
    parser.add_argument("--rounds", type=int, help="builds and rebuilds (medians reported)")
    args = parser.parse_args()
    print(json.dumps(asyncio.run(run(args.quick, args.boot,
                                        args.rounds or (3 if args.quick else 5)))))
    sys.stdout.flush()


if __name__ == "__main__":
    main()
