"""The create form's Formfile path: what it asks the node (a build of that Formfile, then an
instance of the image with the Formfile's resources), and a build in progress as a few lines, a
step each, for the form to show under its progress bar. Pure: tested without a terminal."""

from __future__ import annotations

from typing import Any

from formation.api.pack_models import PackBuild, PackBuildStart, PackStep
from formation.api.vm_models import DISK_GB, VmCreate
from formation.tui.instance_rows import truncate

STEP_LINES = 4  # the latest steps shown under the bar (the form fits 80x24)


def formfile_error(path: str) -> str | None:
    """The path field's problem, checked here before the node is asked; None when fine."""
    if not path.startswith("/"):
        return "expected an absolute path on the node (a Formfile or its directory)"
    return None


def start_request(path: str) -> PackBuildStart:
    return PackBuildStart(context=path.strip())


def create_request(build: PackBuild, name: str) -> VmCreate:
    """An instance of a finished build with what its Formfile asks for (as `pack ship`)."""
    res = build.resources
    assert build.image is not None
    return VmCreate(image=build.image, name=name or None, vcpus=res.vcpus,
                    memory_mb=res.memory_mb, disk_gb=res.disk_gb or DISK_GB[0], gpus=res.gpus,
                    ports=res.ports)


def step_line(step: PackStep, width: int) -> str:
    where = f"line {step.line}: " if step.line else ""
    mark = "cached" if step.cached else f"{step.step}/{step.total}"
    return truncate(f"{mark:>7}  {where}{step.label}", width)


def step_lines(build: PackBuild, width: int = 70) -> list[str]:
    """The latest steps, oldest first, and the running step's last output line."""
    lines = [step_line(s, width) for s in build.steps[-STEP_LINES:]]
    if build.state == "running" and build.progress is not None and build.progress.message:
        lines.append(truncate(f"         {build.progress.message}", width))
    return lines


def headline(build: PackBuild) -> str:
    if build.state == "queued":
        return f"building {build.name}: queued behind {build.position or 0} build(s)…"
    if build.state == "running":
        fraction = build.progress.fraction if build.progress else 0.0
        return f"building {build.name}: {fraction:.0%}"
    if build.state == "done":
        return f"{'reused' if build.reused else 'built'} image {build.name}; creating…"
    return f"build {build.state}: {build.error}"


def apply_event(build: PackBuild, event_kind: str, data: dict[str, Any]) -> PackBuild:
    """The build as an event of topic `pack` changes it (a progress report, a start); the
    outcome is read from the node, not guessed from its event."""
    if event_kind == "progress":
        step = PackStep.model_validate({k: v for k, v in data.items()
                                        if k in PackStep.model_fields})
        steps = [s for s in build.steps if s.step != step.step] + [step]
        return build.model_copy(update={"state": "running", "progress": step,
                                        "steps": sorted(steps, key=lambda s: s.step)})
    if event_kind == "started":
        return build.model_copy(update={"state": "running", "position": None})
    return build
