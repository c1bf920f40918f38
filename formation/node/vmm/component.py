"""The "vmm" part of the node: picks the VMM backend this host runs (backend.select_driver,
from the settings and the capability probe), adopts the VMs an earlier service left running,
runs the reconciler, and serves the VM endpoints (handlers.py).

It starts after ready: choosing a backend waits for the capability probe (which boots a test
guest, seconds under TCG), and nothing the node needs to answer waits for VMs. Until the
reconciler runs, the VM endpoints that only write desired state still work."""

from __future__ import annotations

import asyncio
import importlib
import logging
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from formation.api import models as m
from formation.api.errors import Unavailable
from formation.node.tasks import cancel_and_wait
from formation.node.vmm.handlers import VmHandlers
from formation.node.vmm.reconciler import Reconciler

if TYPE_CHECKING:
    from formation.api.client import NodeClient
    from formation.node.p2p.component import P2PComponent
    from formation.node.service import NodeService
    from formation.node.state.component import StateComponent
    from formation.node.state.op import Op
    from formation.node.vmm.driver import Driver
    from formation.node.vmm.images.component import ImagesComponent

log = logging.getLogger(__name__)

PROBE_WAIT_S = 120.0  # the backend choice waits this long for the capability probe
PROBE_POLL_S = 0.05
ALIVE = ("alive",)
DEAD = "dead"


class VmmComponent:
    name = "vmm"
    after_ready = True

    def __init__(self, state: StateComponent, p2p: P2PComponent,
                 images: ImagesComponent | None = None, driver: Driver | None = None) -> None:
        """`state`: desired and observed state; `p2p`: which members are live (placement
        counts only those) and where they are (serial relay, image fetches); `images`: the
        image store the reconciler asks for an instance's files. `driver`: given (a test's,
        the bench's), it is used instead of the one the settings and the probe choose."""
        self.state, self.p2p, self.images = state, p2p, images
        self.service: NodeService | None = None
        self.driver: Driver | None = driver
        self.driver_why = "given" if driver is not None else ""
        self.reconciler: Reconciler | None = None
        self.error = ""
        self._task: asyncio.Task[None] | None = None
        self._unsubscribe: Any = None
        self._started_at = time.monotonic()
        self._synced = False

    @property
    def me(self) -> str:
        """This node's key. The API answers before this part starts (it starts once the node
        is ready): a request that needs it then gets a 503 to retry, not a 500."""
        if self.service is None or self.service.identity is None:
            raise Unavailable("vmm: the VM part is still starting; try again in a moment")
        return self.service.identity.public_key_hex

    @property
    def run_dir(self) -> Path:
        assert self.service is not None
        s = self.service.settings
        return s.vmm.run_dir or s.data_dir / "vms"

    async def start(self, service: NodeService) -> None:
        self.service = service
        self._started_at = time.monotonic()
        store = self.state.require_store()
        self._unsubscribe = store.subscribe(self._publish_ops)
        self._task = service.spawn(self._run(service))

    async def _run(self, service: NodeService) -> None:
        driver = self.driver or await self._select(service)
        if driver is None:
            return
        log.info("vmm backend selected", extra={"fields": {
            "backend": driver.name, "why": self.driver_why}})
        # imported here, off the event loop: pyroute2 takes ~0.15 s to import and a node
        # without the mesh never needs it
        vm_network = await asyncio.to_thread(importlib.import_module,
                                             "formation.node.net.vm_network")
        network = vm_network.for_node(service, self.state.require_store(), self.me,
                                      self.run_dir)
        reconciler = Reconciler(self.state.require_store(), driver, self.me, self.run_dir,
                                service.settings.vmm, self._ensure, self.find_image,
                                self.live_members, self._publish, network=network,
                                replacement=self)
        await reconciler.start()
        self.reconciler = reconciler
        await reconciler.run()

    async def _select(self, service: NodeService) -> Driver | None:
        from formation.node.vmm.backend import select_driver

        # the probe runs once the API serves; polled, so that no bus subscription of ours
        # is mistaken for a client's
        for _ in range(int(PROBE_WAIT_S / PROBE_POLL_S)):
            if service.prober.current.probed_at is not None:
                break
            await asyncio.sleep(PROBE_POLL_S)
        driver, self.driver_why = select_driver(service.settings, service.prober.current)
        if driver is None:
            self.error = f"no VMM backend: {self.driver_why}"
            log.warning("vmm: no backend", extra={"fields": {"why": self.driver_why}})
            return None
        self.driver = driver
        return driver

    async def stop(self) -> None:
        if self._unsubscribe is not None:
            self._unsubscribe()
        await cancel_and_wait(self._task)
        if self.reconciler is not None:
            await self.reconciler.stop()

    # what the reconciler and the handlers use ------------------------------------------------
    def live_members(self) -> set[str]:
        """Keys of the members heard from lately (and this node): placement counts only them."""
        live = {self.me}
        members, peers = self.p2p.members, self.p2p.discovery.peers
        if members is None or peers is None:
            return live
        for record in members.records():
            peer = peers.get(record.node_id)
            if peer is not None and record.state in ALIVE:
                live.add(peer.public_key)
        return live

    def dead(self) -> set[str]:
        """Keys of the members this node has seen dead for longer than vmm.replace_after_s:
        their hosts count as lost and placement places their instances again. Only what this
        node saw itself: a member it has not heard of since it started is not dead to it."""
        members, peers = self.p2p.members, self.p2p.discovery.peers
        if members is None or peers is None or self.service is None:
            return set()
        grace = self.service.settings.vmm.replace_after_s
        now = datetime.now(UTC)
        dead = set()
        for record in members.records():
            peer = peers.get(record.node_id)
            if peer is not None and record.state == DEAD \
                    and (now - record.since).total_seconds() >= grace:
                dead.add(peer.public_key)
        return dead

    async def disk_images(self) -> set[str]:
        """Digests of the images that carry a data disk (their instances lose it with their
        host, so they are placed again only when their spec says `replicate: restart`)."""
        if self.images is None:
            return set()
        return {str(i.get("digest")) for i in await self.images.catalog()
                if "disk" in (i.get("parts") or {})}

    async def synced(self) -> bool:
        """May this node boot VMs yet: only once it has caught up with a live peer (an
        anti-entropy round that found nothing missing), so a node that comes back after its
        instances were placed elsewhere learns that before it could start them again; or
        after vmm.start_sync_wait_s when no peer answers, or at once when it is alone in the
        network."""
        if self._synced or self.service is None:
            return True
        replication = self.state.replication
        peers = replication.peers if replication is not None else []
        if any(p.last_in_sync is not None for p in peers):
            self._synced = True
        elif time.monotonic() - self._started_at >= \
                self.service.settings.vmm.start_sync_wait_s:
            self._synced = True
        else:
            nodes = await self.state.require_store().view("nodes")
            self._synced = not any(n.get("key") != self.me for n in nodes)
        if self._synced:
            log.info("vmm: synced, instances may boot")
        return self._synced

    async def address_of(self, node_key: str) -> str | None:
        """Where to reach a member's API: the first endpoint of its record (its mesh address
        when the mesh reaches it), else where discovery found it."""
        for node in await self.state.require_store().view("nodes"):
            endpoints = node.get("endpoints") or []
            if node.get("key") == node_key and endpoints:
                return self.p2p.routes.api_address(node_key, str(endpoints[0]))
        peers = self.p2p.discovery.peers
        for record in peers.records() if peers is not None else []:
            if record.public_key == node_key and record.address:
                return self.p2p.routes.api_address(node_key, record.address)
        return None

    async def client_to(self, node_key: str, timeout_s: float = 10.0) -> NodeClient | None:
        """A signed client to another member, or None when its address is unknown."""
        from formation.api.client import NodeClient

        address = await self.address_of(node_key)
        if address is None or self.service is None or self.service.identity is None:
            return None
        return NodeClient.tcp(address, self.service.identity, timeout_s=timeout_s,
                              node_key=node_key)

    async def _ensure(self, digest: str) -> dict[str, Path]:
        """The image's files on this node: fetched by digest from members that have it."""
        if self.images is None:
            raise RuntimeError("images: this node keeps no image store")
        return await self.images.ensure(digest)

    async def find_image(self, ref: str) -> dict[str, Any] | None:
        """The image named `ref` (name, digest or unique digest prefix) in the network."""
        if self.images is None:
            return None
        return await self.images.find(ref)

    def wake(self) -> None:
        """A write of desired state here: reconcile now rather than on the next batch."""
        if self.reconciler is not None:
            self.reconciler.wake()

    def _publish(self, kind: str, data: dict[str, Any]) -> None:
        if self.service is not None:
            self.service.publish("vm", kind, data)

    def _publish_ops(self, ops: list[Op], origin: str | None) -> None:
        """Lifecycle changes of every instance of the network, as they are applied here."""
        for op in ops:
            if not op.kind.startswith("instance."):
                continue
            p = op.payload
            data: dict[str, Any] = {"instance": p.get("instance") or op.id.hex(),
                                    "author": op.author.hex()}
            if op.kind == "instance.status":
                data |= {"state": p["observed"].get("state"),
                         "reason": p["observed"].get("reason", "")}
            elif op.kind == "instance.create":
                data |= {"name": p.get("name"), "desired": p.get("desired", "running")}
            elif op.kind == "instance.update":
                data |= {k: p[k] for k in ("desired", "spec", "boot") if k in p}
            elif op.kind == "instance.place":
                data |= {"node": p.get("node")}
            self._publish(op.kind.removeprefix("instance."), data)

    # API and health ------------------------------------------------------------------------
    def api_handlers(self) -> VmHandlers:
        return VmHandlers(self)

    def health(self) -> list[m.HealthCheck]:
        if self.error:
            return [m.HealthCheck(name="vmm", ok=False, detail=self.error)]
        if self.driver is None or self.reconciler is None:
            return [m.HealthCheck(name="vmm", ok=True, detail="choosing a backend")]
        r = self.reconciler
        detail = (f"{self.driver.name} ({self.driver_why}); running {len(r.running)} VM(s); "
                  f"{r.passes} passes")
        if r.last_error:
            detail += f"; last pass failed: {r.last_error}"
        if not self._synced:
            detail += "; boots nothing until synced with a peer"
        return [m.HealthCheck(name="vmm", ok=not r.last_error, detail=detail)]
