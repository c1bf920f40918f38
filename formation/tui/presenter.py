"""Formatting shared by the screens, and the hook that lets snapshot tests freeze what changes
from run to run (uptime, ids, resources, times) while the data still comes from a real node."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from formation.api.console_models import EditableSettings, HostSample, LogRecord
    from formation.api.host_models import HostInterfaces
    from formation.api.models import Event, Health, NodeStatus
    from formation.api.vm_models import Image, Instance, StatusChange
    from formation.tui.network import NetworkSnapshot


class Presenter:
    """Identity by default: the console shows what the node says."""

    def status(self, status: NodeStatus) -> NodeStatus:
        return status

    def health(self, health: Health) -> Health:
        return health

    def sample(self, sample: HostSample) -> HostSample:
        return sample

    def event(self, event: Event) -> Event:
        return event

    def log(self, record: LogRecord) -> LogRecord | None:
        """The record as shown; None leaves it out (a snapshot keeps only its own records)."""
        return record

    def settings(self, settings: EditableSettings) -> EditableSettings:
        return settings

    def network(self, network: NetworkSnapshot) -> NetworkSnapshot:
        return network

    def interfaces(self, interfaces: HostInterfaces) -> HostInterfaces:
        return interfaces

    def instance(self, instance: Instance) -> Instance:
        return instance

    def history(self, change: StatusChange) -> StatusChange:
        return change

    def image(self, image: Image) -> Image:
        return image

    def clock(self, moment: datetime) -> str:
        return moment.astimezone().strftime("%H:%M:%S")


def duration(seconds: float) -> str:
    seconds = int(seconds)
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    if days:
        return f"{days}d{hours:02d}h"
    if hours:
        return f"{hours}h{minutes:02d}m"
    return f"{minutes}m{secs:02d}s"


def rate(bps: float) -> str:
    for unit in ("B", "kB", "MB", "GB"):
        if bps < 1000 or unit == "GB":
            return f"{bps:.0f} {unit}/s" if unit == "B" else f"{bps:.1f} {unit}/s"
        bps /= 1000
    return f"{bps:.1f} GB/s"


def event_line(event: Event, clock: str) -> str:
    detail = " ".join(f"{k}={v}" for k, v in list(event.data.items())[:4])
    if len(detail) > 120:
        detail = detail[:117] + "..."
    return f"{clock} {event.topic}/{event.kind} {detail}".rstrip()
