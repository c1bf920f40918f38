"""build_image: Formfile spec + build context -> kernel, initrd and ext4 disk in `out`.

The order: the base (cached per release, mirror and package set), then one layer per step in
Formfile order, each found in the cache by its key or made by running the step on an overlay
of the layers below it, then the "system setup" layer (the ENTRYPOINT's unit, per-VM state
dropped), then the disk image: the cached disk of the deepest cached part of the layer stack
with the layers above it applied (diskchain.py). Everything lands
in a staging directory beside `out` and is renamed into place only when all of it is there, so
a failed or cancelled build leaves `out` as it was: absent or empty."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import os
import shutil
import stat
import time
import uuid
from collections.abc import Callable
from pathlib import Path

from formation.pack.build import base, diskchain, finish, sandbox
from formation.pack.build.digest import context_digest
from formation.pack.build.layers import LayerCache, key_of
from formation.pack.build.model import (
    BuildError,
    BuildProgress,
    BuildSettings,
    BuiltImage,
    clip,
)
from formation.pack.build.stack import Stack
from formation.pack.build.steps import SOURCE_DATE_EPOCH, Action, plan
from formation.pack.spec import FormfileSpec

Progress = Callable[[BuildProgress], None]
MESSAGE_EVERY_S = 0.25
W_BASE, W_CACHED, W_DISK = 12.0, 0.1, 4.0


class _Reporter:
    """Turns step boundaries and output lines into BuildProgress calls: fractions weighted by
    what each step costs (a cached step almost nothing), output throttled to 4 a second."""

    def __init__(self, progress: Progress, total: int, weights: list[float]) -> None:
        self.progress, self.total, self.weights = progress, total, weights
        self.sum = sum(weights) or 1.0
        self.done = 0.0
        self.current: BuildProgress | None = None
        self.last_message = 0.0

    def start(self, step: int, line: int | None, label: str, cached: bool) -> None:
        self.current = BuildProgress(step, self.total, line, label,
                                     min(1.0, self.done / self.sum), cached)
        self.progress(self.current)

    def line(self, text: str) -> None:
        now = time.monotonic()
        if self.current is None or now - self.last_message < MESSAGE_EVERY_S:
            return
        self.last_message = now
        self.progress(BuildProgress(self.current.step, self.total, self.current.line,
                                    self.current.label, self.current.fraction,
                                    self.current.cached, clip(text)))

    def end(self, index: int) -> None:
        self.done += self.weights[index]
        if self.current is not None:
            c = self.current
            self.progress(BuildProgress(c.step, self.total, c.line, c.label,
                                        min(1.0, self.done / self.sum), c.cached))


def _check_out(out: Path) -> None:
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise BuildError(f"out: {out} exists and is not an empty directory")


def _fresh(path: Path) -> None:
    shutil.rmtree(path, ignore_errors=True)
    path.mkdir(parents=True)


async def _run_step(cache: LayerCache, scratch: Path, lower: list[str], key: str,
                    act: Action, report: _Reporter) -> None:
    job = scratch / key[:12]
    await asyncio.to_thread(_fresh, job)
    for name in ("upper", "work", "merged"):
        (job / name).mkdir()
    view = sandbox.View(cache.root, lower, job / "merged", job / "upper", job / "work")
    try:
        status, last = await sandbox.run(view, act.body, report.line, act.binds)
        if status != 0:
            where = f"Formfile line {act.line} ({act.label})" if act.line else act.label
            raise BuildError(f"{where}: exited with status {status}: {clip(last)}", act.line)
        await asyncio.to_thread(cache.commit, key, job / "upper",
                                {"label": act.label, "line": act.line})
    finally:
        await asyncio.to_thread(shutil.rmtree, job, True)


async def layer_paths(spec: FormfileSpec, context: Path, settings: BuildSettings) -> list[Path]:
    """The layer directories an image of `spec` is made of, base first (they exist once it was
    built): for tests and tools that compare the disk with the overlay of its layers."""
    release = base.release_of(spec.base)
    actions, state = await asyncio.to_thread(plan, spec, context)
    actions.append(finish.setup_action(spec, state))
    cache = LayerCache(settings.cache_dir.absolute())
    base_key = base.base_key(release, settings.mirror)
    return [cache.path(k) for k in (base_key, *_step_keys(base_key, actions))]


def _step_keys(base_key: str, actions: list[Action]) -> list[str]:
    keys, parent = [], base_key
    for act in actions:
        # the script too: a builder that runs a step differently makes a new layer
        parent = key_of(parent, {**act.record, "script": act.body})
        keys.append(parent)
    return keys


async def build_image(spec: FormfileSpec, context: Path, settings: BuildSettings,
                      out: Path, progress: Callable[[BuildProgress], None]) -> BuiltImage:
    """Never blocks the loop (subprocesses via asyncio). On failure or cancel: raises BuildError
    (or CancelledError), and `out` holds nothing (no half-written image)."""
    out = out.absolute()
    _check_out(out)
    release = base.release_of(spec.base)
    digest = await asyncio.to_thread(context_digest, spec, context)
    actions, state = await asyncio.to_thread(plan, spec, context)
    actions.append(finish.setup_action(spec, state))
    cache = LayerCache(settings.cache_dir.absolute())
    # Our own directory in the scratch space (which may be shared): emptied under the cache's
    # lock at the start (what a crashed build left) and removed at the end.
    scratch_root = settings.scratch.absolute()
    scratch = scratch_root / f"pack-{hashlib.sha256(bytes(cache.root)).hexdigest()[:8]}"
    staging = out.parent / f".{out.name}.partial-{uuid.uuid4().hex[:8]}"
    async with cache.locked():
        await asyncio.to_thread(cache.prepare)
        await asyncio.to_thread(_fresh, scratch)
        base_key = base.base_key(release, settings.mirror)
        keys = _step_keys(base_key, actions)
        weights = [W_CACHED if cache.has(base_key) else W_BASE]
        weights += [W_CACHED if cache.has(k) else a.weight for k, a in zip(keys, actions,
                                                                            strict=True)]
        weights.append(W_DISK)
        total = len(actions) + 1
        report = _Reporter(progress, total, weights)
        try:
            report.start(0, None, f"base debian:{release}", cache.has(base_key))
            await base.build_base(cache, scratch, release, settings.mirror, report.line)
            report.end(0)
            lower = [cache.rel(base_key)]
            for i, (act, key) in enumerate(zip(actions, keys, strict=True), start=1):
                hit = cache.has(key)
                report.start(i, act.line, act.label, hit)
                if not hit:
                    await _run_step(cache, scratch, lower, key, act, report)
                report.end(i)
                lower.insert(0, cache.rel(key))
            for key in (base_key, *keys):
                await asyncio.to_thread(cache.touch, key)
            report.start(total, None, "disk image", False)
            await asyncio.to_thread(_fresh, staging)
            await _make_disk(cache, scratch, [base_key, *keys], staging, spec, report)
            report.end(total)
            await asyncio.to_thread(_publish, staging, out)
        finally:
            await asyncio.to_thread(shutil.rmtree, staging, True)
            await asyncio.to_thread(shutil.rmtree, scratch, True)
            with contextlib.suppress(OSError):
                scratch_root.rmdir()  # only when nothing else is in it
    return BuiltImage(kernel=out / "kernel", initrd=out / "initrd", disk=out / "disk.img",
                      cmdline=finish.CMDLINE, context_digest=digest)


async def _make_disk(cache: LayerCache, scratch: Path, chain_keys: list[str],
                     staging: Path, spec: FormfileSpec, report: _Reporter) -> None:
    """The disk (diskchain.py: from the deepest cached disk of the stack, one layer at a time)
    and the kernel and initrd the image's /vmlinuz and /initrd.img name."""
    chain = [diskchain.Link(k, cache.path(k)) for k in chain_keys]
    keep = max(0, len(chain) - 3)  # the stack below the Formfile's last step
    work = scratch / "disk"
    await asyncio.to_thread(_fresh, work)
    await diskchain.make_disk(chain, keep, diskchain.DiskCache(cache.root), work,
                              staging / "disk.img", spec.disk_gb, SOURCE_DATE_EPOCH,
                              report.line)
    await asyncio.to_thread(_boot_files, [link.path for link in reversed(chain)], staging)


def _boot_files(layers: list[Path], staging: Path) -> None:
    view = Stack(layers)
    epoch = int(SOURCE_DATE_EPOCH)
    for link, name in (("vmlinuz", "kernel"), ("initrd.img", "initrd")):
        found = view.resolve(link)
        if found is None or not stat.S_ISREG(found[1].st_mode):
            raise BuildError(f"disk image: the image has no /{link} (the base installs a "
                             f"kernel: was it removed?)")
        shutil.copyfile(found[0], staging / name)
    for name in ("disk.img", "kernel", "initrd"):
        os.utime(staging / name, (epoch, epoch))


def _publish(staging: Path, out: Path) -> None:
    if out.exists():
        out.rmdir()  # empty (checked at the start); a non-empty one makes this fail loudly
    staging.rename(out)


async def prune_cache(settings: BuildSettings, max_age_s: float) -> int:
    """Removes the cached layers no build used for `max_age_s` seconds, and the cached disks
    of stacks no build used for as long or whose layer is gone (waits for a running build to
    finish first); returns how many layers and disks were removed."""
    cache = LayerCache(settings.cache_dir.absolute())
    async with cache.locked():
        removed = await asyncio.to_thread(cache.prune, max_age_s)
        live = {p.stem for p in cache.layers.glob("*.json")} if cache.layers.is_dir() \
            else set()
        disks = diskchain.DiskCache(cache.root)
        return removed + await asyncio.to_thread(disks.prune, live,
                                                 time.time() - max_age_s)
