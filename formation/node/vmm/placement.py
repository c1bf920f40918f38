"""Where each instance runs: a pure function of the replicated state, so every node computes the
same answer from the same ops and no coordinator is needed.

A placement is a claim: the node itself writes `instance.place` naming itself (the rules allow
nothing else). Claims can race: two nodes' views differ for a moment, a resize or a smaller
offer arrives after a claim. So a claim does not hold by being made; it holds when it survives
the capacity fold. Per node, the instances whose placement register names it are taken in
(placed_hlc, placement_op) order and kept while they fit in what the node offers (vCPUs,
memory, disk, GPUs, and the confidential-computing kind asked for); the rest are over capacity
and decided again. Every replica folds the same ops in the same order: of two claims on the
last free capacity exactly one keeps it, the earlier by HLC (op id on a tie).

An instance without a holding placement gets a candidate: among the live members whose free
capacity and capabilities fit (or only its pinned node), the one with the highest rendezvous
score sha256(instance || node). Rendezvous hashing spreads instances and moves few when nodes
come and go. Instances are decided in key order and each candidate's room is taken from the
free figures at once, so one decision does not hand the same room to two instances.

A claim on a node this replica has seen dead for longer than the grace (`dead`, from the
membership table and `vmm.replace_after_s`) does not hold either: the host is lost, so its
instances get candidates among the live nodes and are claimed again (the newer
`instance.place` wins the placement register, and the old host, when it returns, finds itself
no longer the owner). Except an instance whose image has a data disk (`disk_images`): its disk
died with the host, so it is placed again only when its spec says `replicate: restart`;
otherwise it stays where it was, undecided, with the reason HOST_LOST, until its host comes
back. `replicate: never` keeps any instance from being placed again. Hosts count as lost only
while this replica sees a strict majority of the member nodes live (a minority side of a
partition replaces nothing)."""

from __future__ import annotations

import hashlib
from collections.abc import Collection
from dataclasses import dataclass
from typing import Any

from formation.node.state.instance_spec import PCI_ADDRESS, is_uint, spec_problem


@dataclass(frozen=True)
class Decision:
    instance: str
    node: str | None  # the placement that holds (claimed, within capacity)
    gpus: tuple[str, ...]  # PCI addresses assigned to it on that node
    candidate: str | None  # not held: the node that should claim it now
    reason: str  # not held and no candidate: why, one line (HOST_LOST: the API says Failed)


HOST_LOST = "host lost"


@dataclass(frozen=True)
class Need:
    vcpus: int
    memory_mb: int
    disk_gb: int
    gpus: int
    confidential: str  # none | sev-snp | tdx
    pin: str | None


@dataclass
class Free:
    """What a node has left: figures, free GPUs (sorted PCI addresses), capabilities."""

    cpus: int
    memory_mb: int
    disk_gb: int
    gpus: list[str]
    confidential: frozenset[str]

    def fits(self, need: Need) -> bool:
        return (need.vcpus <= self.cpus and need.memory_mb <= self.memory_mb
                and need.disk_gb <= self.disk_gb and need.gpus <= len(self.gpus)
                and (need.confidential == "none" or need.confidential in self.confidential))

    def take(self, need: Need) -> tuple[str, ...]:
        self.cpus -= need.vcpus
        self.memory_mb -= need.memory_mb
        self.disk_gb -= need.disk_gb
        taken, self.gpus = self.gpus[:need.gpus], self.gpus[need.gpus:]
        return tuple(taken)


def _offer(node: dict[str, Any]) -> Free:
    """A node's record `resources`; anything malformed offers nothing (the rules check new
    records, and older ones may hold anything)."""
    res = node.get("resources")
    res = res if isinstance(res, dict) else {}

    def figure(name: str) -> int:
        value = res.get(name)
        return value if isinstance(value, int) and is_uint(value) else 0

    gpus = res.get("gpus")
    gpus = sorted({g for g in gpus if isinstance(g, str) and PCI_ADDRESS.match(g)}) \
        if isinstance(gpus, list) else []
    conf = res.get("confidential")
    conf = frozenset(c for c in conf if isinstance(c, str)) if isinstance(conf, list) else \
        frozenset()
    return Free(figure("cpus"), figure("memory_mb"), figure("disk_gb"), gpus, conf)


def _need(spec: dict[str, Any]) -> Need:
    return Need(spec["vcpus"], spec["memory_mb"], spec["disk_gb"], spec.get("gpus", 0),
                spec.get("confidential", "none"), spec.get("node"))


def _hlc(value: Any) -> tuple[int, int]:
    if isinstance(value, list | tuple) and len(value) == 2 and all(map(is_uint, value)):
        return (value[0], value[1])
    return (0, 0)


def rendezvous(instance: str, node: str) -> bytes:
    return hashlib.sha256(_raw(instance) + _raw(node)).digest()


def _raw(key: str) -> bytes:
    try:
        return bytes.fromhex(key)
    except ValueError:
        return key.encode()


def replaceable(spec: dict[str, Any], disk_images: Collection[str]) -> bool:
    """May an instance whose host is lost be placed again elsewhere: `replicate: restart`
    says yes (a data disk is lost and starts again from the image), `never` says no, and
    without the field only an instance without a data disk is (nothing of it is lost)."""
    replicate = spec.get("replicate")
    if replicate is not None:
        return bool(replicate == "restart")
    return spec.get("image") not in disk_images


def _lost(dead: set[str], live: set[str], members: set[str]) -> set[str]:
    """The nodes whose claims no longer hold: seen dead past the grace, and only while this
    replica sees a strict majority of the members live. A replica cut off in a minority
    could otherwise take over the instances of the majority it no longer hears (which still
    runs them): then both sides would run them until the partition heals."""
    if 2 * len(live & members) <= len(members):
        return set()
    return (dead - live) & members


OVER_QUOTA = ("over its account's quota: created concurrently with others that used the room "
              "(the instances view marks it the same on every replica)")


def decide(instances: list[dict[str, Any]], nodes: list[dict[str, Any]],
           live: Collection[str], dead: Collection[str] = (),
           disk_images: Collection[str] = ()) -> dict[str, Decision]:
    """`instances` and `nodes` as store.view("instances") / store.view("nodes") list them
    (deleted instances and removed nodes are absent: a removed node's placements are void, a
    deleted instance frees its room); `live`: keys of the nodes reachable now; `dead`: keys of
    the nodes seen dead for longer than the grace (their claims do not hold); `disk_images`:
    digests of the images that have a data disk. Returns a decision per instance key. Pure
    and independent of the order of its inputs."""
    members = {n["key"]: n for n in nodes if isinstance(n.get("key"), str)}
    free = {key: _offer(node) for key, node in sorted(members.items())}
    names = {key: node["name"] if isinstance(node.get("name"), str) else key[:12]
             for key, node in members.items()}
    out: dict[str, Decision] = {}
    needs: dict[str, Need] = {}
    for inst in sorted(instances, key=lambda i: str(i.get("key"))):
        key = str(inst.get("key"))
        problem = spec_problem(inst.get("spec"))
        if problem is not None:
            out[key] = Decision(key, None, (), None, problem)
        elif inst.get("over_quota") is True:
            out[key] = Decision(key, None, (), None, OVER_QUOTA)
        else:
            needs[key] = _need(inst["spec"])
    claims: dict[str, list[tuple[tuple[int, int], str, str]]] = {}
    lost = _lost(set(dead), set(live), set(members))
    for inst in instances:
        key = str(inst.get("key"))
        node = inst.get("placement")
        if key not in needs or not isinstance(node, str) or node not in members:
            continue
        if node in lost:
            if not replaceable(inst["spec"], disk_images):
                out[key] = Decision(key, None, (), None, HOST_LOST)
            continue
        claims.setdefault(node, []).append(
                (_hlc(inst.get("placed_hlc")), str(inst.get("placement_op", "")), key))
    for node, held in sorted(claims.items()):
        room = free[node]
        for *_order, key in sorted(held):
            need = needs[key]
            if (need.pin is None or need.pin == node) and room.fits(need):
                out[key] = Decision(key, node, room.take(need), None, "")
    live_members = sorted(k for k in set(live) if k in members)
    for key, need in sorted(needs.items()):
        if key in out:
            continue
        eligible = [n for n in live_members if need.pin is None or n == need.pin]
        fitting = [n for n in eligible if free[n].fits(need)]
        if fitting:
            best = max(fitting, key=lambda n: rendezvous(key, n))
            free[best].take(need)
            out[key] = Decision(key, None, (), best, "")
        else:
            out[key] = Decision(key, None, (), None, _why(need, eligible, free, names))
    return out


def _amount(cpus: int, memory_mb: int, disk_gb: int, gpus: int | None) -> str:
    text = f"{cpus} vCPUs, {memory_mb} MiB, {disk_gb} GB"
    return text if gpus is None else f"{text}, {gpus} GPUs"


def _why(need: Need, eligible: list[str], free: dict[str, Free], names: dict[str, str]) -> str:
    """One line: why no live node can take it."""
    if need.pin is not None and not eligible:
        return f"pinned to {names.get(need.pin, need.pin[:12])}, which is not a live member"
    if not eligible:
        return "no live member node"
    if need.confidential != "none":
        capable = [n for n in eligible if need.confidential in free[n].confidential]
        if not capable:
            return f"asks for {need.confidential}: no live node offers it"
        eligible = capable
    gpus = need.gpus if need.gpus else None
    wanted = _amount(need.vcpus, need.memory_mb, need.disk_gb, gpus)

    def closeness(n: str) -> tuple[int, int, int, int, int, str]:
        f = free[n]
        met = sum((f.cpus >= need.vcpus, f.memory_mb >= need.memory_mb,
                   f.disk_gb >= need.disk_gb, len(f.gpus) >= need.gpus))
        return (met, f.cpus, f.memory_mb, f.disk_gb, len(f.gpus), n)

    best = max(eligible, key=closeness)
    f = free[best]
    have = _amount(max(f.cpus, 0), max(f.memory_mb, 0), max(f.disk_gb, 0),
                   len(f.gpus) if gpus is not None else None)
    if need.pin is not None:
        return f"pinned to {names[best]}, which has no room for {wanted} (free: {have})"
    return f"no node has room for {wanted} (most free: {names[best]} with {have})"
