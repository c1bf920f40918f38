"""A parsed Formfile in lines a person reads: what `formation pack validate` prints, so the
author sees how each line was understood (aliases resolved, paths made absolute)."""

from __future__ import annotations

import shlex

from formation.pack.spec import Copy, Env, FormfileSpec, Install, Run, Step, User, Workdir

COMMAND_WIDTH = 70


def _short(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= COMMAND_WIDTH else text[:COMMAND_WIDTH - 3] + "..."


def step_line(step: Step) -> str:
    if isinstance(step, User):
        extras = []
        if step.sudo:
            extras.append("sudo")
        if step.ssh_authorized_keys:
            count = len(step.ssh_authorized_keys)
            extras.append(f"{count} ssh key{'s' if count > 1 else ''}")
        if step.groups:
            extras.append("groups " + ",".join(step.groups))
        return f"USER {step.username}" + (f" ({', '.join(extras)})" if extras else "")
    if isinstance(step, Run):
        return f"RUN {_short(step.command)}"
    if isinstance(step, Copy):
        return f"COPY {step.src} -> {step.dst}"
    if isinstance(step, Install):
        return "INSTALL " + " ".join(step.packages)
    if isinstance(step, Env):
        scope = "" if step.scope == "system" else f"  ({step.scope})"
        return f"ENV {step.key}={_short(step.value)}{scope}"
    assert isinstance(step, Workdir)
    return f"WORKDIR {step.path}"


def summary_lines(spec: FormfileSpec) -> list[str]:
    resources = [f"{spec.vcpus} vCPU", f"{spec.memory_mib} MiB memory",
                 f"{spec.disk_gb} GB disk" if spec.disk_gb else "disk as built"]
    resources += [f"GPU {gpu.model} x{gpu.count}" for gpu in spec.gpus]
    lines = [f"name         {spec.name}"]
    if spec.description:
        lines.append(f"description  {spec.description}")
    lines += [f"base         {spec.base}", f"resources    {', '.join(resources)}"]
    if spec.steps:
        lines.append("steps")
        width = len(str(spec.steps[-1].line))
        lines += [f"  {step.line:>{width}}  {step_line(step)}" for step in spec.steps]
    if spec.entrypoint is not None:
        entry = spec.entrypoint
        shown = shlex.join(entry.argv) if entry.argv is not None else f"sh -c {entry.shell!r}"
        lines.append(f"entrypoint   {_short(shown)}  (line {entry.line})")
    else:
        lines.append("entrypoint   none (the image boots to a login prompt)")
    if spec.expose:
        lines.append("expose       " + ", ".join(f"{e.port}/{e.protocol}" for e in spec.expose))
    return lines
