"""Shared by the builder's tests: one layer cache per machine (the base system is downloaded
once, then reused by every later session), a build context, and a recording progress callback.

Every session's specs start with a step that names the session, so the steps after it are
really built (not found in the cache from an earlier session) and the layers a session made
can be removed when it ends; the base stays."""

from __future__ import annotations

import os
import shutil
import subprocess
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from bench.support.pack_probe import CACHE  # one build cache for the tests and bench/pack.py
from formation.pack.build import BuildProgress, BuildSettings
from formation.pack.build.diskchain import DiskCache
from formation.pack.spec import Copy, Entrypoint, Env, FormfileSpec, Install, Run, Step, Workdir

DISKS = DiskCache(CACHE).dir  # the cached disks of layer stacks
MARKER = "formation-pack-marker"
SESSION = uuid.uuid4().hex[:12]
HELLO = f'#!/bin/sh\necho "{MARKER}: $GREETING from $(pwd) on $(hostname)"\n'


def skip_unless_buildable() -> None:
    if os.geteuid() != 0:
        pytest.skip("building images needs root (mount namespaces, overlayfs, chroot)")
    for tool in ("mmdebstrap", "unshare", "mkfs.ext4"):
        if shutil.which(tool) is None:
            pytest.skip(f"{tool} is not installed (scripts/system-packages.sh)")


@dataclass
class Recorder:
    """The progress callback: every report, and when each step started."""
    seen: list[BuildProgress] = field(default_factory=list)
    started: dict[int, float] = field(default_factory=dict)

    def __call__(self, p: BuildProgress) -> None:
        if not self.seen or (self.seen[-1].step, self.seen[-1].label) != (p.step, p.label):
            self.started[p.step] = time.monotonic()
        self.seen.append(p)

    def steps(self) -> dict[int, BuildProgress]:
        """The first report of each step."""
        first: dict[int, BuildProgress] = {}
        for p in self.seen:
            first.setdefault(p.step, p)
        return first

    def cached(self) -> list[str]:
        return [p.label for p in self.steps().values() if p.cached]

    def built(self) -> list[str]:
        return [p.label for p in self.steps().values() if not p.cached]

    def seconds_before_disk(self) -> float:
        """Time from the first step to the disk image (the part the layer cache saves)."""
        return self.started[max(self.started)] - self.started[0]


def settings() -> BuildSettings:
    return BuildSettings(cache_dir=CACHE)


def context(tmp: Path) -> Path:
    tmp.mkdir(parents=True, exist_ok=True)
    hello = tmp / "hello.sh"
    hello.write_text(HELLO)
    hello.chmod(0o755)
    return tmp


def small_spec(last: Step | None = None) -> FormfileSpec:
    """One INSTALL, a COPY, an ENV, an ENTRYPOINT printing the marker (the issue's Formfile),
    after a step naming this session, and a last step a test may replace."""
    steps: tuple[Step, ...] = (
        Run(2, f"echo {SESSION} > /etc/formation-test-session"),
        Install(3, ("jq",)),
        Copy(4, "hello.sh", "/usr/local/bin/hello"),
        Env(5, "GREETING", "hi there"),
        Workdir(6, "/srv"),
        last or Run(7, "jq -n '{built: true}' > /srv/built.json"),
    )
    return FormfileSpec(name="hello", steps=steps,
                        entrypoint=Entrypoint(8, argv=("/usr/local/bin/hello",)))


def overlay_mounts() -> list[str]:
    """The host's mounts under the cache (a build's mounts live in namespaces of its own)."""
    with open("/proc/self/mountinfo") as f:
        return [line for line in f if str(CACHE) in line]


def layers_now() -> set[str]:
    return {p.name for p in (CACHE / "l").glob("*.json")}


def remove_new_layers(before: set[str]) -> None:
    """Removes the layers made since `before` (the base, made once per machine, stays)."""
    if not (CACHE / "l").is_dir():
        return
    for name in layers_now() - before:
        meta = (CACHE / "l" / name).read_text()
        if '"label": "base ' in meta:
            continue
        (CACHE / "l" / name).unlink()
        shutil.rmtree(CACHE / "l" / name.removesuffix(".json"), ignore_errors=True)
        for suffix in (".img", ".boot", ".synced"):  # the disk cached for its stack
            (DISKS / name.replace(".json", suffix)).unlink(missing_ok=True)


def qcow2_over(disk: Path, target: Path) -> Path:
    """The instance's own disk over the image's, as the VM part makes it."""
    subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", "-b", str(disk), "-F", "raw",
                    str(target)], check=True)
    return target
