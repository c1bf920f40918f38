"""How the CLI prints: JSON for scripts, aligned text for people."""

from __future__ import annotations

import json
import sys
from typing import Any

import click
from pydantic import BaseModel

from formation.api.models import Capabilities, NodeStatus


def emit_json(value: BaseModel | dict[str, Any]) -> None:
    data = value.model_dump(mode="json") if isinstance(value, BaseModel) else value
    click.echo(json.dumps(data, indent=2, sort_keys=False))


def _mark(ok: bool | None) -> str:
    colour = sys.stdout.isatty()
    text = {True: "yes", False: "no", None: "..."}[ok]
    if not colour:
        return text
    return click.style(text, fg={True: "green", False: "red", None: "yellow"}[ok])


def capability_lines(caps: Capabilities) -> list[str]:
    if caps.probed_at is None:
        return ["  (still probing the host; run `formation doctor` to wait for the result)"]
    width = max(len(item.name) for item in caps.items)
    lines = []
    for item in caps.items:
        text = item.summary if item.ok else item.reason
        lines.append(f"  {item.name:<{width}}  {_mark(item.ok):<3}  {text}")
    lines.append(f"  vmm backend: {caps.vmm_backend}   wireguard backend: {caps.wireguard_backend}")
    return lines


def status_lines(status: NodeStatus) -> list[str]:
    ident, res = status.identity, status.resources
    hours, rest = divmod(int(status.uptime_s), 3600)
    rows = {
        "node": f"{status.name} ({ident.node_id})",
        "version": status.version,
        "uptime": f"{hours}h{rest // 60:02d}m{rest % 60:02d}s",
        "key": ident.public_key,
        "fingerprint": ident.fingerprint,
        "wireguard": ident.wireguard_public_key,
        "listen": ", ".join(status.listen),
        "resources": f"{res.cpus} CPUs, {res.memory_available_mb}/{res.memory_total_mb} MiB "
        f"memory free, {res.disk_free_gb}/{res.disk_total_gb} GB disk free, load {res.load_1m:.2f}",
    }
    width = max(map(len, rows))
    return [
        *(f"{label:<{width}}  {value}" for label, value in rows.items()),
        "capabilities",
        *capability_lines(status.capabilities),
    ]
