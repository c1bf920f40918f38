"""The node's lifecycle reconciler: makes the instances placed on this node what the replicated
state desires, and writes back what it observes as `instance.status` ops.

It is driven by the state store (every applied batch wakes it) and by a slow periodic pass
(liveness of members and of the VMs). Each pass computes placement.decide() over the views,
the same answer on every node; the node that decide() names as the candidate claims the
instance (`instance.place`). Each instance then has one worker at a time (a pass only marks it
dirty while one runs), so a slow stop never holds up another VM, and a boot's wait for the
first serial byte is a watcher of its own, so a stop during a boot is acted on at once.

Nothing here raises out of the loop: a failure becomes a `failed` status with the reason and
the serial tail, and a failed boot is not retried until its desired state changes (a restart,
a resize, a stop and start)."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Collection
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from formation.node.state.ca_rules import root_of
from formation.node.state.instance_view import current_observed
from formation.node.tasks import wait_event
from formation.node.vmm import seed, workdir
from formation.node.vmm.driver import Driver, Machine
from formation.node.vmm.machine import MachineGone, MachineSpec, VmmError
from formation.node.vmm.migration import Migrations
from formation.node.vmm.placement import Decision, decide
from formation.node.vmm.serial import FIRST_BYTE_POLL_S, size_of, tail_lines

if TYPE_CHECKING:
    from formation.config.settings import VmmSettings
    from formation.node.net.vm_network import VmNetworkHooks
    from formation.node.state.store import StateStore

log = logging.getLogger(__name__)

PERIODIC_S = 2.0  # liveness of VMs and members; state changes wake the loop at once
GONE_CHECK_S = 0.25  # while booting: has the VMM exited
STOP_POLL_S = 0.2
REASON_CHARS = 300
RETRY_S = 5.0  # a failure to get the image (no peer answered yet) is tried again after this

Ensure = Callable[[str], Awaitable[dict[str, Path]]]  # image digest -> part -> verified file
Find = Callable[[str], Awaitable[dict[str, Any] | None]]  # image digest -> its catalog entry
Publish = Callable[[str, dict[str, Any]], None]


class Replacement(Protocol):
    """What re-placement needs from the node (the vmm part): hosts seen lost, images with a
    data disk, and whether this node has caught up with its peers since it started."""

    def dead(self) -> Collection[str]: ...

    async def disk_images(self) -> Collection[str]: ...

    async def synced(self) -> bool: ...


@dataclass
class Running:
    """A VM this node runs: its machine and the desired state it was started for."""

    machine: Machine
    boot: int
    vcpus: int
    memory_mb: int
    placement: str  # the instance.place op (hex) this node runs it under
    booted_at: float = 0.0  # monotonic, the boot call
    first_byte: bool = False


@dataclass
class Target:
    """What one pass found for one instance: None fields mean deleted."""

    inst: dict[str, Any] | None
    held: bool = False
    gpus: tuple[str, ...] = ()
    elsewhere: bool = False  # another node holds it now


@dataclass
class Timings:
    """For the bench: when the last boot call and the last Running write happened."""

    boot_call: dict[str, float] = field(default_factory=dict)  # instance -> monotonic
    first_byte: dict[str, float] = field(default_factory=dict)
    running_written: dict[str, float] = field(default_factory=dict)


def _sig(inst: dict[str, Any]) -> tuple[Any, ...]:
    """What a failed boot is remembered by: it is retried once any of it changes."""
    spec = inst.get("spec") or {}
    return (int(inst.get("boot", 0)), spec.get("image"), spec.get("vcpus"),
            spec.get("memory_mb"), spec.get("disk_gb"), spec.get("cmdline"))


class Reconciler:
    def __init__(self, store: StateStore, driver: Driver, me: str, run_dir: Path,
                 settings: VmmSettings, ensure: Ensure, find: Find,
                 live: Callable[[], Collection[str]], publish: Publish,
                 network: VmNetworkHooks | None = None,
                 replacement: Replacement | None = None) -> None:
        """`network`: taps, addresses and the guests' network config (net/vm_network.py);
        None: VMs boot without a network. `replacement`: None (a test's node alone) loses no
        host and is synced at once."""
        self.store, self.driver, self.me, self.run_dir = store, driver, me, run_dir
        self.network = network
        self.settings, self.ensure, self.find = settings, ensure, find
        self.live, self.publish = live, publish
        self.replacement = replacement
        self.running: dict[str, Running] = {}
        self.timings = Timings()
        self._targets: dict[str, Target] = {}
        self._workers: dict[str, asyncio.Task[None]] = {}
        self._watchers: dict[str, asyncio.Task[None]] = {}
        self._dirty: set[str] = set()
        self._locks: dict[str, asyncio.Lock] = {}
        self._written: dict[str, tuple[Any, ...]] = {}  # instance -> last status written
        self._failed: dict[str, tuple[Any, ...]] = {}  # instance -> _sig of the failed boot
        self._retry_at: dict[str, float] = {}  # instance -> when a transient failure retries
        self._force: set[str] = set()  # instances to stop without the grace period
        self._dirs: set[str] = set()
        self._wake = asyncio.Event()
        self._unsubscribe: Callable[[], None] | None = None
        self.passes = 0
        self.last_error = ""
        self.migrations = Migrations(self)

    # the loop --------------------------------------------------------------------------------
    async def start(self) -> None:
        """Adopts the VMs an earlier node service left running, then reconciles."""
        self.run_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        self._dirs = await asyncio.to_thread(workdir.list_instances, self.run_dir)
        await self._adopt_all()
        self._unsubscribe = self.store.subscribe(lambda ops, origin: self._wake.set())

    async def run(self) -> None:
        while True:
            self._wake.clear()
            try:
                await self._pass()
                self.last_error = ""
            except Exception as exc:
                self.last_error = f"{type(exc).__name__}: {exc}"
                log.exception("reconciler pass failed")
            self.passes += 1
            await wait_event(self._wake, PERIODIC_S)

    def wake(self) -> None:
        self._wake.set()

    # what migration.py uses --------------------------------------------------------------------
    def lock_for(self, inst_id: str) -> asyncio.Lock:
        return self._locks.setdefault(inst_id, asyncio.Lock())

    def add_dir(self, inst_id: str) -> None:
        self._dirs.add(inst_id)

    def target_of(self, inst_id: str) -> Target | None:
        return self._targets.get(inst_id)

    def kick(self, inst_id: str) -> None:
        self._kick(inst_id)

    async def write_status(self, inst_id: str, placement: str, state: str, reason: str,
                           run: Running) -> None:
        await self._status(inst_id, placement, state, reason, run.boot, run.vcpus,
                           run.memory_mb)

    async def stop(self) -> None:
        """Leaves the VMs running (a restarted service adopts them); ends the workers."""
        if self._unsubscribe is not None:
            self._unsubscribe()
        tasks = [*self._workers.values(), *self._watchers.values()]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await self.migrations.stop()

    # adoption --------------------------------------------------------------------------------
    async def _adopt_all(self) -> None:
        instances = {i["key"]: i for i in await self.store.view("instances")}
        for inst_id in sorted(self._dirs):
            found = await asyncio.to_thread(workdir.read_meta,
                                            workdir.path_for(self.run_dir, inst_id))
            if found is None:
                continue
            spec, extra = found
            try:
                machine = await self.driver.adopt(spec)
            except VmmError as exc:
                log.warning("could not adopt a VM", extra={"fields": {
                    "instance": inst_id, "error": str(exc)}})
                continue
            if machine is None:
                continue
            run = Running(machine, int(extra.get("boot", 0)), spec.vcpus, spec.memory_mb,
                          str(extra.get("placement", "")), time.monotonic(),
                          first_byte=size_of(spec.serial_log) > 0)
            self.running[inst_id] = run
            log.info("adopted a running VM", extra={"fields": {
                "instance": inst_id, "pid": machine.pid}})
            inst = instances.get(inst_id)
            observed = current_observed(inst or {})
            if inst is not None and observed and inst.get("placement") == self.me:
                self._written[inst_id] = self._key(run.placement, observed.get("state", ""),
                                                   observed.get("reason", ""),
                                                   int(observed.get("boot", 0)),
                                                   int(observed.get("vcpus", 0)),
                                                   int(observed.get("memory_mb", 0)))
            if not run.first_byte:
                self._watch(inst_id, run, 0)

    # one pass --------------------------------------------------------------------------------
    async def _pass(self) -> None:
        instances = await self.store.view("instances")
        nodes = await self.store.view("nodes")
        dead, disks, synced = await self._lost_hosts()
        decisions: dict[str, Decision] = decide(instances, nodes, set(self.live()) | {self.me},
                                                dead, disks)
        targets: dict[str, Target] = {}
        for inst in instances:
            inst_id = inst["key"]
            d = decisions.get(inst_id)
            if d is None:
                continue
            if inst.get("desired") == "stopped" and inst.get("force"):
                self._force.add(inst_id)  # `vm stop --force`: a stop under way ends at once
            self.migrations.consider(inst, d.node is not None and d.node != self.me)
            if d.node is None and d.candidate == self.me and inst.get("placement") != self.me:
                if synced:  # a view not yet caught up may claim what another node runs
                    await self._claim(inst_id)
                continue
            held = d.node == self.me
            if held or inst_id in self.running or inst_id in self._dirs:
                targets[inst_id] = Target(inst, held, tuple(d.gpus),
                                          elsewhere=d.node is not None and not held)
        present = {i["key"] for i in instances}
        for inst_id in (set(self.running) | self._dirs) - present:
            targets[inst_id] = Target(None)  # deleted (a tombstone leaves the view)
        self._targets = targets
        # copies no longer held go first; until synced, nothing held is started (or touched)
        for inst_id in sorted(targets, key=lambda i: targets[i].held):
            if synced or not targets[inst_id].held:
                self._kick(inst_id)

    async def _lost_hosts(self) -> tuple[Collection[str], Collection[str], bool]:
        """Hosts seen lost, images with a data disk (asked only when a host is lost), and
        whether this node may claim and boot yet (synced with a live peer since it started)."""
        if self.replacement is None:
            return (), (), True
        dead = self.replacement.dead()
        disks = await self.replacement.disk_images() if dead else ()
        return dead, disks, await self.replacement.synced()

    async def _claim(self, inst_id: str) -> None:
        try:
            await self.store.append("instance.place", {"instance": inst_id, "node": self.me})
        except Exception as exc:
            log.warning("could not claim an instance", extra={"fields": {
                "instance": inst_id, "error": str(exc)}})

    def _kick(self, inst_id: str) -> None:
        task = self._workers.get(inst_id)
        if task is not None and not task.done():
            self._dirty.add(inst_id)
            return
        self._workers[inst_id] = asyncio.get_running_loop().create_task(self._work(inst_id))

    async def _work(self, inst_id: str) -> None:
        while True:
            self._dirty.discard(inst_id)
            target = self._targets.get(inst_id)
            if target is None:
                return
            lock = self._locks.setdefault(inst_id, asyncio.Lock())
            async with lock:
                try:
                    await self._converge(inst_id, target)
                except asyncio.CancelledError:
                    raise
                except Exception as exc:
                    log.exception("reconciling an instance failed",
                                  extra={"fields": {"instance": inst_id}})
                    await self._fail(inst_id, target, _one_line(exc))
            if inst_id not in self._dirty:
                return

    # converging one instance ----------------------------------------------------------------
    async def _converge(self, inst_id: str, t: Target) -> None:
        run = self.running.get(inst_id)
        if t.inst is None:  # deleted: end it, remove its files
            if run is not None:
                await self._destroy(inst_id, run)
            await self._remove_dir(inst_id)
            if self.network is not None:
                await self.network.release(inst_id)
            self._written.pop(inst_id, None)
            self._failed.pop(inst_id, None)
            self.publish("removed", {"instance": inst_id})
            return
        inst = t.inst
        if not t.held:  # the placement here no longer holds: this copy goes first
            if self.migrations.claim_pending(inst_id, inst):
                return  # a target's VMM waiting for its own claim to show in the view
            if run is not None and self.migrations.is_outgoing(inst, run):
                if not await self.migrations.send(inst_id, inst, run):
                    return  # failed: claimed back, this copy keeps running
            if run is not None:
                log.info("ending a VM whose placement here no longer holds",
                         extra={"fields": {"instance": inst_id}})
                await self._destroy(inst_id, run)
            if t.elsewhere:  # it runs on another node now: this copy's disk is of no use
                await self._remove_dir(inst_id)
            if self.network is not None:
                await self.network.release(inst_id)
            self._written.pop(inst_id, None)
            return
        placement = str(inst.get("placement_op", ""))
        spec = inst.get("spec") or {}
        boot = int(inst.get("boot", 0))
        vcpus, memory_mb = int(spec.get("vcpus", 1)), int(spec.get("memory_mb", 512))
        if run is not None and run.placement != placement:
            run.placement = placement  # claimed again: the same VM, under the new placement
            self._written.pop(inst_id, None)
        if run is not None and inst_id in self.migrations.incoming:
            await self.migrations.follow_incoming(inst_id, run, placement)
            return
        if inst.get("desired", "running") == "stopped":
            self._failed.pop(inst_id, None)
            if run is not None:
                await self._stop(inst_id, placement, run)
            else:
                self._force.discard(inst_id)
                await self._status(inst_id, placement, "stopped", "", boot, vcpus, memory_mb)
            return
        if run is not None:
            if not await self._alive(run):
                await self._exited(inst_id, t, run)
                return
            if boot > run.boot:
                self.publish("restarting", {"instance": inst_id, "boot": boot})
                await self._destroy(inst_id, run)
                run = None
            elif (vcpus, memory_mb) != (run.vcpus, run.memory_mb):
                if await self._resize(inst_id, run, vcpus, memory_mb):
                    if run.first_byte:
                        await self._status(inst_id, placement, "running", "", run.boot,
                                           vcpus, memory_mb)
                    return
                await self._destroy(inst_id, run)
                run = None
            else:
                if run.first_byte:
                    await self._status(inst_id, placement, "running", "", run.boot,
                                       run.vcpus, run.memory_mb)
                return
        if self._failed.get(inst_id) == _sig(inst):
            retry = self._retry_at.get(inst_id)
            if retry is None or time.monotonic() < retry:
                return  # stays failed until its desired state changes (or the retry is due)
        self._retry_at.pop(inst_id, None)
        await self._start(inst_id, t, placement, boot, vcpus, memory_mb)

    async def _alive(self, run: Running) -> bool:
        """Is the booted VM still up: its VMM answers and the guest has not shut down (Cloud
        Hypervisor keeps its process when the guest powers off or panics: state created or
        shutdown; QEMU exits)."""
        try:
            return (await run.machine.info()).state in ("running", "paused")
        except MachineGone:
            return False
        except VmmError:
            return True  # answering badly is not gone; the next pass asks again

    async def _exited(self, inst_id: str, t: Target, run: Running) -> None:
        self.running.pop(inst_id, None)
        tail = await asyncio.to_thread(tail_lines, run.machine.spec.serial_log)
        assert t.inst is not None
        self._failed[inst_id] = _sig(t.inst)
        with _quiet():
            await run.machine.destroy()
        await self._status(inst_id, run.placement, "failed", "the VM exited", run.boot,
                           run.vcpus, run.memory_mb, tail)

    async def _resize(self, inst_id: str, run: Running, vcpus: int, memory_mb: int) -> bool:
        try:
            done = await run.machine.resize(vcpus, memory_mb)
        except VmmError as exc:
            log.info("live resize refused; restarting", extra={"fields": {
                "instance": inst_id, "error": str(exc)}})
            return False
        if done:
            run.vcpus, run.memory_mb = vcpus, memory_mb
            self.publish("resized", {"instance": inst_id, "vcpus": vcpus,
                                     "memory_mb": memory_mb, "live": True})
        return done

    async def _start(self, inst_id: str, t: Target, placement: str, boot: int, vcpus: int,
                     memory_mb: int) -> None:
        assert t.inst is not None
        spec = t.inst.get("spec") or {}
        att = await self.network.attach(inst_id, t.inst) if self.network is not None else None
        await self._status(inst_id, placement, "placed", "", boot, vcpus, memory_mb)
        digest = str(spec.get("image", ""))
        image = await self.find(digest)
        if image is None:
            await self._fail(inst_id, t, f"image: no image {digest[:16]} in the network")
            return
        self.publish("progress", {"instance": inst_id, "stage": "image"})
        try:
            files = await self.ensure(digest)
        except Exception as exc:  # no peer has it yet, or none answered: tried again
            self._retry_at[inst_id] = time.monotonic() + RETRY_S
            await self._fail(inst_id, t, f"image: {_one_line(exc)}")
            return
        wd = workdir.path_for(self.run_dir, inst_id)
        await asyncio.to_thread(wd.mkdir, parents=True, exist_ok=True)
        self._dirs.add(inst_id)
        disk: Path | None = None
        if "disk" in files:
            disk = wd / workdir.DISK
            if not await asyncio.to_thread(disk.exists):
                self.publish("progress", {"instance": inst_id, "stage": "disk"})
                await workdir.create_overlay(files["disk"], disk, int(spec.get("disk_gb", 5)))
        cmdline = spec.get("cmdline") or image.get("cmdline") or "console=ttyS0"
        nics, seed_disk, cmdline = await seed.boot_network(
            att, wd, inst_id, cmdline, root_of(await self.store.view("ca")))
        mspec = MachineSpec(
            instance=inst_id, name=str(t.inst.get("name", inst_id[:12])), vcpus=vcpus,
            memory_mb=memory_mb, kernel=files["kernel"], workdir=wd,
            serial_log=wd / workdir.SERIAL, initrd=files.get("initrd"), cmdline=cmdline,
            disk=disk, gpus=t.gpus, confidential=spec.get("confidential", "none"),
            nics=nics, seed=seed_disk)
        refusal = self.driver.refusal(mspec)
        if refusal:
            await self._fail(inst_id, t, refusal)
            return
        await asyncio.to_thread(workdir.write_meta, mspec,
                                {"boot": boot, "placement": placement})
        self.publish("progress", {"instance": inst_id, "stage": "vmm"})
        machine = await self.driver.create(mspec)
        run = Running(machine, boot, vcpus, memory_mb, placement)
        self.running[inst_id] = run
        after = size_of(mspec.serial_log)
        try:
            run.booted_at = time.monotonic()
            self.timings.boot_call[inst_id] = run.booted_at
            await machine.boot()
        except VmmError:
            self.running.pop(inst_id, None)
            with _quiet():
                await machine.destroy()
            raise
        await self._status(inst_id, placement, "booting", "", boot, vcpus, memory_mb)
        self._watch(inst_id, run, after)

    def _watch(self, inst_id: str, run: Running, after: int) -> None:
        old = self._watchers.get(inst_id)
        if old is not None:
            old.cancel()
        self._watchers[inst_id] = asyncio.get_running_loop().create_task(
            self._watch_boot(inst_id, run, after))

    async def _watch_boot(self, inst_id: str, run: Running, after: int) -> None:
        """Running the moment the guest writes its first serial byte; Failed when it writes
        nothing for boot_timeout_s or its VMM exits first."""
        serial = run.machine.spec.serial_log
        deadline = time.monotonic() + self.settings.boot_timeout_s
        next_check = time.monotonic() + GONE_CHECK_S
        reason = ""
        while True:
            if size_of(serial) > after:
                break
            now = time.monotonic()
            if now > deadline:
                reason = (f"boot: no serial output in {self.settings.boot_timeout_s:g} s "
                          "(vmm.boot_timeout_s)")
                break
            if now >= next_check:
                next_check = now + GONE_CHECK_S
                if not await self._alive(run):
                    reason = "boot: the VM exited before writing to its serial console"
                    break
            await asyncio.sleep(FIRST_BYTE_POLL_S)
        first = time.monotonic()
        async with self._locks.setdefault(inst_id, asyncio.Lock()):
            if self.running.get(inst_id) is not run:
                return
            if reason:
                self.running.pop(inst_id, None)
                with _quiet():
                    await run.machine.destroy()
                target = self._targets.get(inst_id)
                if target is not None and target.inst is not None:
                    self._failed[inst_id] = _sig(target.inst)
                tail = await asyncio.to_thread(tail_lines, serial)
                await self._status(inst_id, run.placement, "failed", reason, run.boot,
                                   run.vcpus, run.memory_mb, tail)
                return
            run.first_byte = True
            self.timings.first_byte[inst_id] = first
            self.publish("progress", {"instance": inst_id, "stage": "first_serial_byte"})
            await self._status(inst_id, run.placement, "running", "", run.boot, run.vcpus,
                               run.memory_mb)
            self.timings.running_written[inst_id] = time.monotonic()

    async def _stop(self, inst_id: str, placement: str, run: Running) -> None:
        await self._status(inst_id, placement, "stopping", "", run.boot, run.vcpus,
                           run.memory_mb)
        if inst_id not in self._force:
            with _quiet():
                await run.machine.power_button()
            deadline = time.monotonic() + self.settings.stop_grace_s
            while time.monotonic() < deadline and inst_id not in self._force:
                try:
                    if (await run.machine.info()).state == "shutdown":
                        break
                except MachineGone:
                    break
                except VmmError:
                    pass
                await asyncio.sleep(STOP_POLL_S)
        self._force.discard(inst_id)
        await self._destroy(inst_id, run)
        await self._status(inst_id, placement, "stopped", "", run.boot, run.vcpus,
                           run.memory_mb)

    async def _destroy(self, inst_id: str, run: Running) -> None:
        watcher = self._watchers.pop(inst_id, None)
        if watcher is not None and watcher is not asyncio.current_task():
            watcher.cancel()
        self.running.pop(inst_id, None)
        await run.machine.destroy()

    async def _remove_dir(self, inst_id: str) -> None:
        if inst_id in self._dirs:
            await asyncio.to_thread(workdir.remove, workdir.path_for(self.run_dir, inst_id))
            self._dirs.discard(inst_id)

    async def _fail(self, inst_id: str, t: Target, reason: str) -> None:
        """A failure while preparing or starting: Failed with the reason, not retried until
        its desired state changes."""
        if t.inst is None or not t.held:
            return
        self._failed[inst_id] = _sig(t.inst)
        spec = t.inst.get("spec") or {}
        serial = workdir.path_for(self.run_dir, inst_id) / workdir.SERIAL
        tail = await asyncio.to_thread(tail_lines, serial)
        with _quiet():
            await self._status(inst_id, str(t.inst.get("placement_op", "")), "failed", reason,
                               int(t.inst.get("boot", 0)), int(spec.get("vcpus", 1)),
                               int(spec.get("memory_mb", 512)), tail)

    # status ops ------------------------------------------------------------------------------
    @staticmethod
    def _key(placement: str, state: str, reason: str, boot: int, vcpus: int,
             memory_mb: int) -> tuple[Any, ...]:
        return (placement, state, reason, boot, vcpus, memory_mb)

    async def _status(self, inst_id: str, placement: str, state: str, reason: str, boot: int,
                      vcpus: int, memory_mb: int, tail: list[str] | None = None) -> None:
        """Writes an instance.status op, unless the last one written says the same."""
        reason = reason[:REASON_CHARS]
        key = self._key(placement, state, reason, boot, vcpus, memory_mb)
        if self._written.get(inst_id) == key or not placement:
            return
        observed: dict[str, Any] = {
            "state": state, "reason": reason, "since_ms": int(time.time() * 1000),
            "boot": boot, "vcpus": vcpus, "memory_mb": memory_mb, "backend": self.driver.name}
        address = await self.network.address_of(inst_id) if self.network is not None else None
        if address:
            observed["address"] = address
        if tail:
            observed["serial_tail"] = tail
        await self.store.append("instance.status", {
            "instance": inst_id, "placement": placement, "observed": observed})
        self._written[inst_id] = key  # the part publishes the op itself (topic vm, "status")


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


class _quiet:
    """Suppresses VMM errors of best-effort calls (a destroy of a VM already gone)."""

    def __enter__(self) -> None:
        return None

    def __exit__(self, kind: object, exc: object, tb: object) -> bool:
        return isinstance(exc, VmmError | OSError)

    async def __aenter__(self) -> None:
        return None

    async def __aexit__(self, kind: object, exc: object, tb: object) -> bool:
        return self.__exit__(kind, exc, tb)
