"""The console's needs as a node component: it samples the host, keeps the log ring and edits
the config file, and answers the endpoints of `api.console_routes`."""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING, Any

from formation.api import console_models as cm
from formation.api import models as m
from formation.api.caller import Caller
from formation.api.errors import BadRequest
from formation.api.models import FieldError, HealthCheck
from formation.config.settings import NodeSettings
from formation.node.capabilities import host
from formation.node.capabilities.offer import offer_problems, offered
from formation.node.console_support.host_sampler import HostSampler
from formation.node.console_support.log_ring import LogRing
from formation.node.console_support.settings_file import (
    SettingsRejected,
    commit,
    editable_values,
    editable_view,
    prepare,
    read_file,
)
from formation.node.host_network import networkd

if TYPE_CHECKING:
    from pathlib import Path

    from formation.node.service import NodeService


class ConsoleSupport:
    name = "console-support"

    def __init__(self, sample_interval_s: float = 1.0) -> None:
        self.service: NodeService | None = None
        self.sampler = HostSampler(self._publish_sample, sample_interval_s)
        self.ring: LogRing | None = None
        self.write_lock = asyncio.Lock()

    async def start(self, service: NodeService) -> None:
        self.service = service
        self.ring = LogRing(level=logging.getLevelName(service.settings.log.level.upper()))
        self.ring.attach()
        service.spawn(self.sampler.run())

    async def stop(self) -> None:
        if self.ring is not None:
            self.ring.detach()

    def api_handlers(self) -> object:
        return ConsoleHandlers(self)

    def health(self) -> list[HealthCheck]:
        sampling = bool(self.sampler.samples)
        return [HealthCheck(name="host-metrics", ok=True,
                            detail="sampling" if sampling else "first sample pending")]

    def _publish_sample(self, sample: cm.HostSample) -> None:
        if self.service is not None:
            self.service.publish("metrics", "sample", sample.model_dump(mode="json"))


class ConsoleHandlers:
    """The endpoints, apart from the component: its `health()` would shadow the health route."""

    def __init__(self, part: ConsoleSupport) -> None:
        self.part = part
        self.sampler = part.sampler
        self.write_lock = part.write_lock

    @property
    def service(self) -> NodeService | None:
        return self.part.service

    @property
    def ring(self) -> LogRing | None:
        return self.part.ring

    async def node_metrics(self, body: m.Empty, caller: Caller) -> cm.HostSamples:
        return cm.HostSamples(interval_s=self.sampler.interval_s,
                              samples=list(self.sampler.samples))

    async def node_logs(self, body: m.Empty, caller: Caller, *,
                        query: cm.LogsQuery) -> cm.LogRecords:
        assert self.ring is not None
        return cm.LogRecords(records=self.ring.since(query.since, query.limit),
                             dropped=self.ring.dropped)

    async def get_settings(self, body: m.Empty, caller: Caller) -> cm.EditableSettings:
        path = self._config_path()
        if path is None:
            return self._view(self._running())
        try:
            data = await asyncio.to_thread(read_file, path)
        except SettingsRejected:
            return self._view(self._running())
        return self._view(self._editable(data))

    async def update_settings(self, body: cm.SettingsUpdate,
                              caller: Caller) -> cm.EditableSettings:
        path = self._config_path()
        if path is None:
            raise BadRequest("this node runs without a config file; start it with "
                             "--config FILE to edit settings from the console")
        changes = _changes(body)
        async with self.write_lock:
            try:
                text, new = await asyncio.to_thread(prepare, path, changes)
                if "resources" in changes:
                    await self._check_offer(new)
                await asyncio.to_thread(commit, path, text)
            except SettingsRejected as exc:
                raise BadRequest(str(exc), [FieldError(field=f, message=msg)
                                            for f, msg in exc.fields]) from None
            except OSError as exc:
                raise BadRequest(f"{path}: cannot write: {exc.strerror}") from None
            applied = await self._apply_live(changes, new)
        assert self.service is not None
        self.service.publish("settings", "updated", {"keys": sorted(changes)})
        logging.getLogger(__name__).info("settings written", extra={"fields": {
            "file": str(path), "keys": ",".join(sorted(changes))}})
        return self._view(editable_values(new), applied)

    async def _check_offer(self, new: NodeSettings) -> None:
        """Resources offered may not exceed what this host has."""
        assert self.service is not None
        totals = await asyncio.to_thread(host.resources, self.service.settings.data_dir)
        problems = offer_problems(new.resources, totals)
        if problems:
            field, message = problems[0]
            raise SettingsRejected(f"invalid settings: {field}: {message}", problems)

    async def _apply_live(self, changes: dict[str, Any], new: NodeSettings) -> list[str]:
        """Underlay and resources take effect now: the networkd file is written (and networkd
        reloaded), and the running settings take the new sections, so the node's record
        offers the new resources within a second. The rest waits for a restart."""
        assert self.service is not None
        applied: list[str] = []
        if "underlay" in changes:
            try:
                applied.append("underlay: " + (await networkd.apply(new.underlay)).detail)
            except OSError as exc:
                applied.append(f"underlay: NOT applied: cannot write the networkd file in "
                               f"{new.underlay.networkd_dir}: {exc.strerror}")
        if "resources" in changes:
            totals = await asyncio.to_thread(host.resources, self.service.settings.data_dir)
            offer = offered(new.resources, totals)
            applied.append("resources: offering {cpus} CPUs, {memory_mb} MiB of memory, "
                           "{disk_gb} GB of disk in the node record".format(**offer))
        live: dict[str, Any] = {k: getattr(new, k) for k in ("underlay", "resources")
                                if k in changes}
        if live:
            self.service.settings = self.service.settings.model_copy(update=live)
        return applied

    # helpers ---------------------------------------------------------------------------------
    def _config_path(self) -> Path | None:
        assert self.service is not None
        return self.service.config_file

    def _editable(self, data: dict[str, Any]) -> dict[str, Any]:
        try:
            return editable_view(data)
        except SettingsRejected:
            return self._running()

    def _running(self) -> dict[str, Any]:
        assert self.service is not None
        return editable_values(self.service.settings)

    def _view(self, in_file: dict[str, Any], applied: list[str] | None = None
              ) -> cm.EditableSettings:
        running = self._running()
        path = self._config_path()
        return cm.EditableSettings(
            config_file=str(path) if path else None, running=running,
            restart_required=in_file != running, applied=applied or [], **in_file,
        )


def _changes(body: cm.SettingsUpdate) -> dict[str, Any]:
    """The keys to merge into the file. A section given is replaced as a whole: its unset
    fields (None) remove what the file had."""
    changes = body.model_dump(exclude_none=True, mode="json")
    for section in ("underlay", "resources"):
        value = getattr(body, section)
        if value is not None:
            changes[section] = value.model_dump(mode="json")
    return changes
