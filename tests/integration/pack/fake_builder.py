"""A FAKE builder for the pack part's plumbing tests (queue, events, image store, image.add,
API, CLI): it does not build anything. It reports one progress step per Formfile step, fails
on `RUN false` naming that line (as the real engine's BuildError does), and "produces" the
test guest kit's kernel and initramfs (or stand-in bytes), so an instance of the result really
boots. The Formfile parser is the real one. Tests using it say "fake_builder" in their names;
the real builder is tested in test_pack_node_real_build.py."""

from __future__ import annotations

import asyncio
import hashlib
import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from formation.errors import FormationError
from formation.node.pack.builder import Toolchain
from formation.pack.formfile import load_formfile
from formation.pack.spec import FormfileSpec, Run


@dataclass(frozen=True)
class FakeProgress:
    step: int
    total: int
    line: int | None
    label: str
    fraction: float
    cached: bool = False
    message: str = ""


@dataclass(frozen=True)
class FakeBuilt:
    kernel: Path
    initrd: Path
    disk: Path
    cmdline: str
    context_digest: str


class FakeBuildError(FormationError):
    def __init__(self, message: str, line: int | None) -> None:
        super().__init__(message)
        self.line = line


@dataclass
class FakeBuilder:
    """`gate`: set it to let builds finish (cleared: every build waits after its first step,
    so a test can see it running and another queued). `kernel`/`initrd`: the files the
    "image" is made of; stand-in bytes when None."""

    kernel: Path | None = None
    initrd: Path | None = None
    cmdline: str = "console=ttyS0"
    gate: asyncio.Event = field(default_factory=asyncio.Event)
    started: list[str] = field(default_factory=list)  # Formfile NAMEs, in build order
    outs: list[Path] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.gate.set()

    def toolchain(self) -> Toolchain:
        return Toolchain(load_formfile, digest, self.build)

    async def build(self, spec: FormfileSpec, context: Path, out: Path,
                    progress: Callable[[FakeProgress], None]) -> FakeBuilt:
        self.started.append(spec.name)
        self.outs.append(out)
        total = len(spec.steps) + 2
        progress(FakeProgress(0, total, None, f"base {spec.base}", 0.0, cached=True))
        await self.gate.wait()
        for n, step in enumerate(spec.steps, 1):
            label = f"{step.kind.upper()} {getattr(step, 'command', '')}".strip()
            progress(FakeProgress(n, total, step.line, label, n / total,
                                  message=f"output of line {step.line}"))
            await asyncio.sleep(0)
            if isinstance(step, Run) and step.command.strip() == "false":
                raise FakeBuildError(f"Formfile line {step.line} (RUN false): exited with "
                                     f"status 1: ", step.line)
        progress(FakeProgress(total, total, None, "disk image", 1.0))
        return await asyncio.to_thread(self._files, spec, context, out)

    def _files(self, spec: FormfileSpec, context: Path, out: Path) -> FakeBuilt:
        files = {}
        for part, given in (("kernel", self.kernel), ("initrd", self.initrd), ("disk", None)):
            path = out / part
            if given is not None:
                shutil.copyfile(given, path)
            else:
                path.write_bytes(f"{part} of {digest(spec, context)}\n".encode() * 1000)
            files[part] = path
        return FakeBuilt(files["kernel"], files["initrd"], files["disk"], self.cmdline,
                         digest(spec, context))


def digest(spec: FormfileSpec, context: Path) -> str:
    """Stands in for formation.pack.build.context_digest: the source and COPY sources."""
    h = hashlib.sha256(spec.source.encode())
    for step in spec.steps:
        if step.kind == "copy":
            h.update((context / step.src).read_bytes() if (context / step.src).is_file()
                     else b"")
    return h.hexdigest()
