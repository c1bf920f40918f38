"""The VM endpoints (formation/api/vm_routes.py). Writes are changes of desired state: every
check is made before the one op is signed, so a refused request writes nothing. The op is
signed by this node, so the state's rules check THIS node's right to change the instance; the
handler checks the caller's too (a local caller acts as this node, a signed one as its key)."""

from __future__ import annotations

import logging
import secrets
import time
import typing
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from formation.api import vm_models as vm
from formation.api import vm_routes
from formation.api.caller import Caller
from formation.api.errors import (
    BadGateway,
    Conflict,
    Forbidden,
    HandlerError,
    NotFound,
    Unprocessable,
)
from formation.api.models import Empty
from formation.node.state.instance_view import current_observed
from formation.node.vmm import serial, workdir
from formation.node.vmm.placement import HOST_LOST, Decision, decide

if TYPE_CHECKING:
    from formation.node.state.store import StateStore
    from formation.node.vmm.component import VmmComponent

log = logging.getLogger(__name__)

RELAY_TIMEOUT_S = 10.0
STATES = frozenset(typing.get_args(vm.InstanceState))


def _ms_to_dt(ms: Any) -> datetime | None:
    return datetime.fromtimestamp(ms / 1000, UTC) if isinstance(ms, int) else None


class VmHandlers:
    def __init__(self, part: VmmComponent) -> None:
        self.part = part

    @property
    def store(self) -> StateStore:
        return self.part.state.require_store()

    # reading ---------------------------------------------------------------------------------
    async def world(self) -> tuple[list[dict[str, Any]], list[dict[str, Any]],
                                    dict[str, Decision]]:
        instances = await self.store.view("instances")
        nodes = await self.store.view("nodes")
        dead = self.part.dead()
        disks = await self.part.disk_images() if dead else set()
        return instances, nodes, decide(instances, nodes, self.part.live_members(), dead, disks)

    async def _model(self, inst: dict[str, Any], nodes: list[dict[str, Any]],
                     decisions: dict[str, Decision],
                     image_names: dict[str, str] | None = None) -> vm.Instance:
        spec = inst.get("spec") or {}
        d = decisions.get(inst["key"])
        names = {n["key"]: n.get("name") for n in nodes}
        node = d.node if d is not None else None
        observed = current_observed(inst)
        reason, since, uptime = "", None, None
        if d is not None and d.reason == HOST_LOST:  # its disk died with its host: no op says so
            state: vm.InstanceState = "failed"
            reason = HOST_LOST
        elif node is None:
            state = "pending"
            if d is not None and d.candidate:
                reason = f"waiting for {names.get(d.candidate) or d.candidate[:12]} to claim it"
            else:
                reason = d.reason if d is not None else "not placed"
        elif observed.get("state") in STATES:
            state = observed["state"]
            reason = str(observed.get("reason", ""))
            since = _ms_to_dt(observed.get("since_ms"))
        else:
            state = "placed"
        if state == "running" and since is not None:
            uptime = round(max(0.0, time.time() - since.timestamp()), 1)
        image = str(spec.get("image", ""))
        if image_names is None:
            found = await self.part.find_image(image) if image else None
            image_name = found.get("name") if found else None
        else:
            image_name = image_names.get(image)
        tail = observed.get("serial_tail") if state == "failed" else None
        return vm.Instance(
            id=inst["key"], name=str(inst.get("name", "")), owner=str(inst.get("owner", "")),
            account=inst.get("account") if isinstance(inst.get("account"), str) else None,
            image=image, image_name=image_name, vcpus=int(spec.get("vcpus", 1)),
            memory_mb=int(spec.get("memory_mb", 512)), disk_gb=int(spec.get("disk_gb", 5)),
            gpus=int(spec.get("gpus", 0)), confidential=spec.get("confidential", "none"),
            desired=inst.get("desired", "running"), state=state, reason=reason, node=node,
            node_name=names.get(node) if node else None,
            backend=observed.get("backend") if node else None, since=since, uptime_s=uptime,
            address=observed.get("address") if node else None,
            serial_tail=list(tail or []))

    async def _image_names(self) -> dict[str, str]:
        images = self.part.images
        if images is None:
            return {}
        return {i["digest"]: i["name"] for i in await images.catalog()}

    def _find(self, instances: list[dict[str, Any]], ref: str) -> dict[str, Any]:
        """By name, full id, or a unique id prefix (6+ hex)."""
        for inst in instances:
            if ref in (inst.get("name"), inst["key"]):
                return inst
        if len(ref) >= 6:
            hits = [i for i in instances if i["key"].startswith(ref)]
            if len(hits) == 1:
                return hits[0]
            if len(hits) > 1:
                raise Conflict(f"instance: {ref} is a prefix of {len(hits)} instances; "
                               "give more of the id")
        raise NotFound(f"instance: no instance named {ref}")

    async def vm_list(self, body: Empty, caller: Caller) -> vm.InstanceList:
        instances, nodes, decisions = await self.world()
        names = await self._image_names()
        return vm.InstanceList(instances=[await self._model(i, nodes, decisions, names)
                                          for i in instances])

    async def vm_show(self, body: Empty, caller: Caller, instance: str) -> vm.InstanceDetail:
        instances, nodes, decisions = await self.world()
        inst = self._find(instances, instance)
        history: list[vm.StatusChange] = []
        read_history = getattr(self.store, "instance_history", None)
        if read_history is not None:
            for entry in await read_history(inst["key"]):
                observed = entry.get("observed") or {}
                if observed.get("state") not in STATES:
                    continue
                history.append(vm.StatusChange(
                    time=datetime.fromtimestamp(entry["time_ms"] / 1000, UTC),
                    state=observed["state"], reason=str(observed.get("reason", "")),
                    node=entry.get("node")))
        return vm.InstanceDetail(instance=await self._model(inst, nodes, decisions),
                                 history=history)

    # checks ----------------------------------------------------------------------------------
    def _acting_key(self, caller: Caller) -> str:
        return self.part.me if caller.local else caller.require_key()

    def _may_change(self, caller: Caller, inst: dict[str, Any]) -> None:
        """The caller and this node (which signs the op) must each be the owner or an admin."""
        owner, admins, me = str(inst.get("owner", "")), self.store.admins, self.part.me
        who = self._acting_key(caller)
        name = inst.get("name") or inst["key"][:12]
        if who != owner and who not in admins:
            raise Forbidden(f"instance: {name} belongs to node {owner[:12]}; only its owner or "
                            "a network admin may change it")
        if me != owner and me not in admins:
            raise Forbidden(f"instance: {name} belongs to node {owner[:12]} and this node is "
                            "not an admin, so it cannot sign the change: ask the owner's node")

    @staticmethod
    def _node_ref(nodes: list[dict[str, Any]], ref: str) -> str:
        for n in nodes:
            if ref in (n["key"], n.get("name")):
                return str(n["key"])
        hits = [n["key"] for n in nodes if len(ref) >= 6 and n["key"].startswith(ref)]
        if len(hits) == 1:
            return str(hits[0])
        raise NotFound(f"node: no node named {ref} in the network")

    def _fits_somewhere(self, spec: dict[str, Any], nodes: list[dict[str, Any]]) -> None:
        """422 naming the field when no live node (or the pinned one) offers this size."""
        live = self.part.live_members()
        pin = spec.get("node")
        offers = [n.get("resources") or {} for n in nodes
                  if n["key"] in live and (pin is None or n["key"] == pin)]
        where = "the pinned node" if pin else "no live node"
        wanted = (("vcpus", "cpus", "vCPUs"), ("memory_mb", "memory_mb", "MiB of memory"),
                  ("disk_gb", "disk_gb", "GB of disk"))
        for field, key, unit in wanted:
            most = max((int(o.get(key, 0)) for o in offers), default=0)
            if int(spec.get(field, 0)) > most:
                lead = f"{where} offers" if pin else "no live node offers"
                raise Unprocessable(f"{field}: {lead} {spec[field]} {unit} (the most: {most})")
        gpus = int(spec.get("gpus", 0))
        if gpus and not any(len(o.get("gpus") or []) >= gpus for o in offers):
            raise Unprocessable(f"gpus: {where} has {gpus} GPU(s) to pass through")
        conf = spec.get("confidential", "none")
        if conf != "none" and not any(conf in (o.get("confidential") or []) for o in offers):
            raise Unprocessable(f"confidential: {where} offers {conf}")
        if not any(all(int(spec.get(f, 0)) <= int(o.get(k, 0)) for f, k, _ in wanted)
                   for o in offers):
            raise Unprocessable("size: no live node offers this many vCPUs, this much memory "
                                "and disk together")

    # writing ---------------------------------------------------------------------------------
    async def vm_create(self, body: vm.VmCreate, caller: Caller) -> vm.Instance:
        image = await self.part.find_image(body.image)
        if image is None:
            raise NotFound(f"image: no image named {body.image}")
        instances, nodes, _ = await self.world()
        taken = {str(i.get("name")) for i in instances}
        if body.name is not None and body.name in taken:
            raise Conflict(f"name: {body.name} is taken by another instance")
        name = body.name or _free_name(str(image.get("name") or "vm"), taken)
        spec: dict[str, Any] = {"image": image["digest"], "vcpus": body.vcpus,
                                "memory_mb": body.memory_mb, "disk_gb": body.disk_gb}
        if body.gpus:
            spec["gpus"] = body.gpus
        if body.confidential != "none":
            spec["confidential"] = body.confidential
        if body.node is not None:
            spec["node"] = self._node_ref(nodes, body.node)
        if body.cmdline is not None:
            spec["cmdline"] = body.cmdline
        if body.egress:
            spec["egress"] = True
        if body.ports:
            spec["ports"] = list(body.ports)
        if body.replicate is not None:
            spec["replicate"] = body.replicate
        self._fits_somewhere(spec, nodes)
        op = await self.store.append("instance.create", {"name": name, "spec": spec,
                                                         "desired": body.desired})
        log.info("instance created", extra={"fields": {"instance": op.id.hex(), "name": name,
                                                       "caller": str(caller)}})
        self.part.wake()
        return await self._current(op.id.hex())

    async def _current(self, inst_id: str) -> vm.Instance:
        instances, nodes, decisions = await self.world()
        inst = next(i for i in instances if i["key"] == inst_id)
        return await self._model(inst, nodes, decisions)

    async def changeable(self, caller: Caller, ref: str) -> tuple[dict[str, Any],
                                                               list[dict[str, Any]]]:
        instances, nodes, _ = await self.world()
        inst = self._find(instances, ref)
        self._may_change(caller, inst)
        return inst, nodes

    async def _update(self, inst: dict[str, Any], **fields: Any) -> None:
        await self.store.append("instance.update", {"instance": inst["key"], **fields})
        self.part.wake()

    async def vm_migrate(self, body: vm.VmMigrate, caller: Caller, instance: str) -> vm.Move:
        from formation.node.vmm.move_handlers import MoveHandlers

        instances, nodes, _ = await self.world()
        inst = self._find(instances, instance)
        self._may_change(caller, inst)
        to = self._node_ref(nodes, body.to)
        return await MoveHandlers(self).vm_migrate(body, inst, to, instances, nodes)

    async def node_drain(self, body: vm.NodeDrain, caller: Caller, node: str) -> vm.DrainResult:
        from formation.node.vmm.move_handlers import MoveHandlers

        instances, nodes, _ = await self.world()
        key = self._node_ref(nodes, node)
        admins = self.store.admins
        if self._acting_key(caller) not in admins or self.part.me not in admins:
            raise Forbidden("node: only a network admin may drain a node (and this node must "
                            "be an admin to sign the moves)")
        return await MoveHandlers(self).node_drain(body, key, instances, nodes)

    async def vm_start(self, body: Empty, caller: Caller, instance: str) -> vm.Instance:
        inst, _ = await self.changeable(caller, instance)
        if inst.get("desired") != "running":
            await self._update(inst, desired="running")
        elif current_observed(inst).get("state") == "failed":
            await self._update(inst, boot=int(inst.get("boot", 0)) + 1)  # boot it again
        return await self._current(inst["key"])

    async def vm_stop(self, body: vm.VmStop, caller: Caller, instance: str) -> vm.Instance:
        """Desired state, like every change: `force` rides on the same update, so the node
        running the VM skips the guest's grace period even if it hears of the stop late."""
        inst, _ = await self.changeable(caller, instance)
        if inst.get("desired") != "stopped" or (body.force and not inst.get("force")):
            await self._update(inst, desired="stopped", force=body.force)
        return await self._current(inst["key"])

    async def vm_restart(self, body: Empty, caller: Caller, instance: str) -> vm.Instance:
        inst, _ = await self.changeable(caller, instance)
        fields: dict[str, Any] = {"boot": int(inst.get("boot", 0)) + 1}
        if inst.get("desired") != "running":
            fields["desired"] = "running"
        await self._update(inst, **fields)
        return await self._current(inst["key"])

    async def vm_resize(self, body: vm.VmResize, caller: Caller, instance: str) -> vm.Instance:
        inst, nodes = await self.changeable(caller, instance)  # neither field: nothing to do
        spec = dict(inst.get("spec") or {})
        new = {**spec, "vcpus": body.vcpus or spec.get("vcpus"),
               "memory_mb": body.memory_mb or spec.get("memory_mb")}
        if new != spec:
            self._fits_somewhere(new, nodes)
            await self._update(inst, spec=new)
        return await self._current(inst["key"])

    async def vm_delete(self, body: Empty, caller: Caller, instance: str) -> Empty:
        inst, _ = await self.changeable(caller, instance)
        await self.store.append("instance.delete", {"instance": inst["key"]})
        self.part.wake()
        return Empty()

    # serial output ---------------------------------------------------------------------------
    async def vm_console(self, request: Any, caller: Caller) -> Any:
        """The console WebSocket (not a typed endpoint: server.py serves it beside them)."""
        from formation.node.vmm.console import serve_console

        return await serve_console(self.part, request, caller)

    async def vm_serial(self, body: Empty, caller: Caller, instance: str, *,
                        query: vm.SerialQuery) -> AsyncIterator[vm.SerialChunk]:
        instances, _, decisions = await self.world()
        inst = self._find(instances, instance)
        d = decisions.get(inst["key"])
        node = d.node if d is not None else None
        local = workdir.path_for(self.part.run_dir, inst["key"]) / workdir.SERIAL
        if node == self.part.me or (node is None and local.exists()):
            return _local_serial(local, query)
        if node is None:
            raise NotFound(f"instance: {inst.get('name')} is not placed on a node yet: no "
                           "serial output")
        client = await self.part.client_to(node, timeout_s=RELAY_TIMEOUT_S)
        if client is None:
            raise BadGateway(f"instance: the node running {inst.get('name')} "
                             f"({node[:12]}) has no known address")
        relayed = _relayed_serial(client, inst["key"], query)
        try:  # the first chunk (or the end) before answering: a silent node is a 502
            first = await anext(relayed)
        except StopAsyncIteration:
            return _nothing()
        return _then(first, relayed)


async def _nothing() -> AsyncIterator[vm.SerialChunk]:
    return
    yield


async def _then(first: vm.SerialChunk,
                rest: AsyncIterator[vm.SerialChunk]) -> AsyncIterator[vm.SerialChunk]:
    yield first
    async for chunk in rest:
        yield chunk


async def _local_serial(path: Path, query: vm.SerialQuery) -> AsyncIterator[vm.SerialChunk]:
    async for offset, data in serial.chunks(path, query.offset, query.tail_bytes, query.follow):
        yield vm.SerialChunk(offset=offset, text=data.decode(errors="replace"))


async def _relayed_serial(client: Any, inst_id: str,
                          query: vm.SerialQuery) -> AsyncIterator[vm.SerialChunk]:
    try:
        async with client:
            async for chunk in client.stream(vm_routes.vm_serial, query=query,
                                             instance=inst_id):
                yield chunk
    except HandlerError:
        raise
    except Exception as exc:
        raise BadGateway(f"instance: the node running it did not answer: {exc}") from None


def _free_name(base: str, taken: set[str]) -> str:
    base = "".join(c if c.isalnum() or c == "-" else "-" for c in base.lower()).strip("-")
    if not base or not base[0].isalpha():
        base = "vm-" + base
    base = base[:56]
    if base not in taken:
        return base
    for n in range(2, 1000):
        if f"{base}-{n}" not in taken:
            return f"{base}-{n}"
    return f"{base}-{secrets.token_hex(3)}"
