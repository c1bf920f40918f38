"""What a lab made, on disk (`/run/formation-lab/<id>/lab.json`), written before each step so a
crashed lab can still be taken down by a fresh process."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field

STATE_FILE = "lab.json"


class HostState(BaseModel):
    index: int
    name: str
    netns: str
    address: str
    holder_pid: int | None = Field(None, description="keeps the host's mount namespace alive")
    node_pid: int | None = None


class LabState(BaseModel):
    lab_id: str
    hosts: list[HostState] = Field(default_factory=list)
    partitioned: list[int] = Field(default_factory=list)
    node_overrides: dict[str, Any] = Field(default_factory=dict)
    pretrust: bool = True

    def host(self, name: str) -> HostState:
        for host in self.hosts:
            if host.name == name:
                return host
        known = ", ".join(h.name for h in self.hosts) or "none"
        from formation.lab.lab import LabError

        raise LabError(f"no host {name!r} in lab {self.lab_id!r} (hosts: {known})")


def save(state: LabState, state_dir: Path) -> None:
    state_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    tmp = state_dir / (STATE_FILE + ".tmp")
    tmp.write_text(state.model_dump_json(indent=2))
    os.replace(tmp, state_dir / STATE_FILE)


def load(state_dir: Path) -> LabState | None:
    path = state_dir / STATE_FILE
    try:
        return LabState.model_validate(json.loads(path.read_text()))
    except FileNotFoundError:
        return None
    except ValueError:
        return None  # a torn file from a crash: `down` still finds everything by prefix
