"""One build as the pack part tracks it: what was asked, where it stands, what came of it. The
API model is rendered from it; events carry the same figures."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from formation.api import pack_models as pm
from formation.node.pack.builder import Progress
from formation.pack.spec import FormfileSpec

MAX_MESSAGE = 200
MAX_STEPS = 300  # steps kept per build (a Formfile has fewer; a bound all the same)


def now() -> datetime:
    return datetime.now(UTC)


def step_model(progress: Progress) -> pm.PackStep:
    return pm.PackStep(step=max(0, progress.step), total=max(0, progress.total),
                       line=progress.line, label=progress.label[:MAX_MESSAGE],
                       fraction=min(1.0, max(0.0, progress.fraction)),
                       cached=progress.cached, message=progress.message[:MAX_MESSAGE])


def resources(spec: FormfileSpec) -> pm.PackResources:
    return pm.PackResources(vcpus=spec.vcpus, memory_mb=spec.memory_mib, disk_gb=spec.disk_gb,
                            gpus=sum(g.count for g in spec.gpus),
                            ports=[f"{e.port}/{e.protocol}" for e in spec.expose])


@dataclass
class Job:
    id: str
    name: str  # the image's name
    spec: FormfileSpec
    context: Path
    scratch: Path  # the build's own directory: uploaded context, output; removed at the end
    reuse: bool
    started_by: str  # "local" or the caller's key
    state: pm.BuildState = "queued"
    queued_at: datetime = field(default_factory=now)
    started_at: datetime | None = None
    finished_at: datetime | None = None
    steps: dict[int, pm.PackStep] = field(default_factory=dict)
    progress: pm.PackStep | None = None
    error: str = ""
    error_line: int | None = None
    context_digest: str | None = None
    image: str | None = None
    reused: bool = False
    task: asyncio.Task[None] | None = None

    @property
    def finished(self) -> bool:
        return self.state in ("done", "failed", "cancelled")

    def report(self, step: pm.PackStep) -> None:
        self.progress = step
        if step.step in self.steps or len(self.steps) < MAX_STEPS:
            self.steps[step.step] = step

    def model(self, position: int | None) -> pm.PackBuild:
        return pm.PackBuild(
            id=self.id, name=self.name, formfile_name=self.spec.name, state=self.state,
            position=position if self.state == "queued" else None, queued_at=self.queued_at,
            started_at=self.started_at, finished_at=self.finished_at, progress=self.progress,
            steps=[self.steps[k] for k in sorted(self.steps)], error=self.error,
            error_line=self.error_line, context_digest=self.context_digest, image=self.image,
            reused=self.reused, resources=resources(self.spec))
