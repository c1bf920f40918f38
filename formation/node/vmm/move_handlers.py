"""`vm migrate` and `node drain` (formation/api/vm_routes.py): a move is one instance.update
with `move: {to, mode, n}`; the target and the source reconcile it (migration.py).

Every check is made before anything is written, and a drain is refused as a whole: an operator
who drains a host must not find half of it moved. Each refusal is one line naming the instance
and why (a pinned instance, GPUs, a confidential VM, a disk, different backends, no room)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from formation.api import vm_models as vm
from formation.api.errors import Unprocessable
from formation.node.state.instance_view import current_observed
from formation.node.vmm.placement import decide

if TYPE_CHECKING:
    from formation.node.vmm.handlers import VmHandlers


def live_problem(inst: dict[str, Any], image: dict[str, Any] | None,
                 source_backend: str | None, target_backend: str | None) -> str | None:
    """Why this instance cannot move live (a device or a state that cannot follow), or None."""
    spec = inst.get("spec") or {}
    if int(spec.get("gpus", 0)):
        return "it has GPUs passed through, which cannot move live"
    if spec.get("confidential", "none") != "none":
        return f"it is a {spec['confidential']} confidential VM, whose memory cannot move live"
    if image is not None and "disk" in (image.get("parts") or {}):
        return "its image has a disk, whose blocks this version does not move live"
    if current_observed(inst).get("state") != "running":
        return f"it is not running ({current_observed(inst).get('state') or 'not placed'})"
    if source_backend and target_backend and source_backend != target_backend:
        return f"it runs on {source_backend} and the target runs {target_backend}"
    return None


def _backend_of(nodes: list[dict[str, Any]], key: str,
                instances: list[dict[str, Any]]) -> str | None:
    """The backend a node runs VMs with, from the statuses it wrote (None: never seen)."""
    for inst in instances:
        obs = current_observed(inst)
        if inst.get("placement") == key and isinstance(obs.get("backend"), str):
            return str(obs["backend"])
    return None


def _name(nodes: list[dict[str, Any]], key: str) -> str:
    for n in nodes:
        if n["key"] == key:
            return str(n.get("name") or key[:12])
    return key[:12]


def _fits(node: dict[str, Any], spec: dict[str, Any], held: list[dict[str, Any]]) -> bool:
    """Room on `node` for `spec` beside what it holds now (the capacity fold's figures)."""
    offer = node.get("resources") or {}
    used = {"vcpus": 0, "memory_mb": 0, "disk_gb": 0}
    for inst in held:
        s = inst.get("spec") or {}
        for f in used:
            used[f] += int(s.get(f, 0))
    return all(int(spec.get(f, 0)) + used[f] <= int(offer.get(k, 0))
               for f, k in (("vcpus", "cpus"), ("memory_mb", "memory_mb"),
                            ("disk_gb", "disk_gb")))


class MoveHandlers:
    def __init__(self, h: VmHandlers) -> None:
        self.h = h

    def _check_target(self, inst: dict[str, Any], to: str, nodes: list[dict[str, Any]],
                      instances: list[dict[str, Any]], live: set[str]) -> None:
        name = inst.get("name") or inst["key"][:12]
        spec = inst.get("spec") or {}
        if inst.get("placement") == to:
            raise Unprocessable(f"to: {name} already runs on {_name(nodes, to)}")
        if to not in live:
            raise Unprocessable(f"to: {_name(nodes, to)} is not a live member")
        if spec.get("node") not in (None, to):
            raise Unprocessable(f"to: {name} is pinned to {_name(nodes, spec['node'])}")
        node = next(n for n in nodes if n["key"] == to)
        held = [i for i in instances if i.get("placement") == to and i["key"] != inst["key"]]
        if not _fits(node, spec, held):
            raise Unprocessable(f"to: {_name(nodes, to)} has no room for {name}")

    async def _mode(self, inst: dict[str, Any], to: str, restart: bool,
                    nodes: list[dict[str, Any]], instances: list[dict[str, Any]]
                    ) -> vm.MoveMode:
        if restart:
            return "restart"
        image = await self.h.part.find_image(str((inst.get("spec") or {}).get("image", "")))
        source = str(inst.get("placement", ""))
        problem = live_problem(inst, image, _backend_of(nodes, source, instances),
                               _backend_of(nodes, to, instances))
        if problem is not None:
            name = inst.get("name") or inst["key"][:12]
            raise Unprocessable(f"{name}: cannot move live: {problem} (use --restart to stop "
                                "it and start it there)")
        return "live"

    async def _write(self, inst: dict[str, Any], to: str, mode: vm.MoveMode) -> None:
        old = inst.get("move")
        n = (int(old.get("n", 0)) if isinstance(old, dict) else 0) + 1
        await self.h.store.append("instance.update", {
            "instance": inst["key"],
            "move": {"to": to, "mode": mode, "n": n, "from": str(inst["placement_op"])}})

    async def vm_migrate(self, body: vm.VmMigrate, inst: dict[str, Any], to: str,
                         instances: list[dict[str, Any]], nodes: list[dict[str, Any]]
                         ) -> vm.Move:
        """`inst` found and changeable by the caller, `to` a node key (VmHandlers did that)."""
        live = set(self.h.part.live_members())
        if inst.get("placement") is None:
            raise Unprocessable(f"instance: {inst.get('name')} is not placed on any node yet")
        self._check_target(inst, to, nodes, instances, live)
        mode = await self._mode(inst, to, body.restart, nodes, instances)
        await self._write(inst, to, mode)
        self.h.part.wake()
        return vm.Move(instance=inst["key"], name=str(inst.get("name")), to=to,
                       to_name=_name(nodes, to), mode=mode)

    async def node_drain(self, body: vm.NodeDrain, key: str, instances: list[dict[str, Any]],
                         nodes: list[dict[str, Any]]) -> vm.DrainResult:
        """`key`: the node to drain (VmHandlers checked the caller is an admin)."""
        live = set(self.h.part.live_members()) - {key}
        on_it = sorted((i for i in instances if i.get("placement") == key),
                       key=lambda i: str(i["key"]))
        if not on_it:
            return vm.DrainResult(node=key, moves=[])
        # the placement rule's choice with this node out: its instances unplaced, it not live
        unplaced = [({k: v for k, v in i.items() if k != "placement"} if i in on_it else i)
                    for i in instances]
        decisions = decide(unplaced, [n for n in nodes if n["key"] != key], live)
        plan: list[tuple[dict[str, Any], str, vm.MoveMode]] = []
        for inst in on_it:
            name = inst.get("name") or inst["key"][:12]
            d = decisions.get(inst["key"])
            if d is None or d.candidate is None:
                why = d.reason if d is not None else "no decision"
                raise Unprocessable(f"{name}: nowhere to go: {why}")
            mode = await self._mode(inst, d.candidate, body.restart, nodes, instances)
            plan.append((inst, d.candidate, mode))
        for inst, to, mode in plan:
            await self._write(inst, to, mode)
        self.h.part.wake()
        return vm.DrainResult(node=key, moves=[
            vm.Move(instance=i["key"], name=str(i.get("name")), to=to, to_name=_name(nodes, to),
                    mode=mode)
            for i, to, mode in plan])

