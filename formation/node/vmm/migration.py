"""Live migration as a change of desired placement that both nodes reconcile (docs/protocol.md,
"Moving an instance").

1. Someone asks: `instance.update {move: {to, mode, n}}` (the API checked it can work first).
2. The target (move.to is this node, the instance held elsewhere) prepares the same machine:
   the same image files, the same address and MAC (VmNetworkHooks.attach keeps the address
   the instance already has), and starts its VMM waiting for the migration on its mesh
   address. Only then does it claim: `instance.place {from: <the source's placement>,
   incoming: "IP:PORT"}`; mode restart claims plainly (the source stops, this node boots).
3. The source, finding its placement superseded by a claim whose `from` is its own placement,
   does not destroy its copy: it migrates to `incoming`, publishing progress, and destroys the
   copy only once the target runs the guest. If the migration fails it claims the instance
   back (a newer plain claim) and keeps running; the target's waiting VMM is then ended by
   its own "placement no longer holds" path.
4. The target writes Running the moment its VMM runs the guest (incoming_state).

The hooks here are called by the reconciler (`_pass` for the target, `_converge` for the
source) and run under the instance's lock, so nothing else touches the VM meanwhile."""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
import socket
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from formation.node.state.ca_rules import root_of
from formation.node.vmm import seed, workdir
from formation.node.vmm.driver import MigrationProgress
from formation.node.vmm.machine import MachineGone, MachineSpec, Nic, VmmError

if TYPE_CHECKING:
    from formation.node.vmm.reconciler import Reconciler, Running

log = logging.getLogger(__name__)

PROGRESS_EVERY_S = 0.5  # progress events at most this often (the last one always)
INCOMING_POLL_S = 0.05  # the target: how often it asks its VMM whether the guest runs yet
LOOPBACK = "127.0.0.1"


def parse_ports(text: str) -> range:
    """"49152-49215" -> range(49152, 49216)."""
    low, _, high = text.partition("-")
    return range(int(low), int(high or low) + 1)


def free_port(host: str, ports: range) -> int:
    """The first port of the range nobody listens on at `host` now (blocking: a bind test)."""
    for port in ports:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            try:
                s.bind((host, port))
            except OSError:
                continue
            return port
    raise VmmError(f"vmm.migration_ports: no free port in {ports.start}-{ports.stop - 1} "
                   f"on {host}")


def wanted_move(inst: dict[str, Any], me: str) -> dict[str, Any] | None:
    """The instance's move request when it names this node as the target and asks for
    something not done yet (the placement is elsewhere and was not made by this move)."""
    move = inst.get("move")
    if not isinstance(move, dict) or move.get("to") != me:
        return None
    if inst.get("placement") == me or inst.get("placement") is None:
        return None
    if "from" in move and move["from"] != inst.get("placement_op"):
        return None  # spent: the placement it was asked to leave is gone (moved, re-placed)
    return move


def is_outgoing(inst: dict[str, Any], placement: str) -> bool:
    """The claim that superseded `placement` (this node's) is a live move from it that the
    owner or an admin asked for: its `from` is our placement and the instance's move request
    names the claimer, live. A member that claims with `incoming` on its own, unasked, gets a
    plain takeover (this copy ends), never the guest's memory."""
    move = inst.get("move")
    return (bool(placement) and bool(inst.get("incoming"))
            and inst.get("placement_from") == placement
            and isinstance(move, dict) and move.get("mode") == "live"
            and move.get("to") == inst.get("placement")
            and move.get("from", placement) == placement)


def progress_event(inst_id: str, p: MigrationProgress) -> dict[str, Any]:
    data: dict[str, Any] = {"instance": inst_id, "status": p.status,
                            "transferred_bytes": p.transferred_bytes,
                            "remaining_bytes": p.remaining_bytes,
                            "total_bytes": p.total_bytes, "dirty_rate_pps": p.dirty_rate_pps}
    if p.downtime_ms is not None:
        data["downtime_ms"] = p.downtime_ms
    return data


class Migrations:
    """The migration side of one node's reconciler."""

    def __init__(self, reconciler: Reconciler) -> None:
        self.r = reconciler
        self.handled: dict[str, int] = {}  # instance -> the move number acted on here
        self.incoming: set[str] = set()  # instances whose VMM here waits for a migration
        self.source_of: dict[str, str] = {}  # incoming instance -> the placement it leaves
        self._tasks: dict[str, asyncio.Task[None]] = {}

    # the target -------------------------------------------------------------------------------
    def consider(self, inst: dict[str, Any], held_elsewhere: bool) -> None:
        """From the pass: start preparing when a move names this node (once per request)."""
        inst_id = str(inst["key"])
        move = wanted_move(inst, self.r.me)
        if move is None or not held_elsewhere or inst.get("desired", "running") != "running":
            return
        n = int(move.get("n", 0))
        if self.handled.get(inst_id, -1) >= n:
            return
        task = self._tasks.get(inst_id)
        if task is not None and not task.done():
            return
        self.handled[inst_id] = n
        self._tasks[inst_id] = asyncio.get_running_loop().create_task(
            self._prepare(inst, str(move.get("mode", "live"))))

    async def stop(self) -> None:
        tasks = list(self._tasks.values())
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    async def _prepare(self, inst: dict[str, Any], mode: str) -> None:
        inst_id = str(inst["key"])
        source = str(inst.get("placement_op", ""))
        try:
            if mode != "live":
                await self.r.store.append("instance.place", {"instance": inst_id,
                                                             "node": self.r.me})
                return
            async with self.r.lock_for(inst_id):
                self.source_of[inst_id] = source
                listen = await self._listen_on(inst_id, inst)
                await self.r.store.append("instance.place", {
                    "instance": inst_id, "node": self.r.me, "from": source,
                    "incoming": listen})
            self.r.publish("migration_incoming", {"instance": inst_id, "listen": listen})
            self.r.wake()
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            log.warning("could not prepare an incoming migration", extra={"fields": {
                "instance": inst_id, "error": str(exc)}})
            self.r.publish("migration_failed", {"instance": inst_id,
                                                "reason": f"target: {_line(exc)}"})
            run = self.r.running.get(inst_id)
            if run is not None and inst_id in self.incoming:
                self.incoming.discard(inst_id)
                self.r.running.pop(inst_id, None)
                with contextlib.suppress(VmmError, OSError):
                    await run.machine.destroy()

    async def _listen_on(self, inst_id: str, inst: dict[str, Any]) -> str:
        """Starts this node's VMM for the instance waiting on a free port of its mesh
        address; returns IP:PORT."""
        from formation.node.vmm.reconciler import Running

        host = await self._mesh_address()
        mspec = await self._machine_spec(inst_id, inst)
        ports = parse_ports(self.r.settings.migration_ports)
        spec = inst.get("spec") or {}
        placement = ""  # not ours yet: the claim follows
        await asyncio.to_thread(workdir.write_meta, mspec,
                                {"boot": int(inst.get("boot", 0)), "placement": placement})
        last: Exception | None = None
        for _ in range(3):  # a port taken between the bind test and QEMU's own bind
            port = await asyncio.to_thread(free_port, host, ports)
            try:
                machine = await self.r.driver.create_incoming(mspec, f"{host}:{port}")
            except VmmError as exc:
                last = exc
                continue
            run = Running(machine, int(inst.get("boot", 0)), int(spec.get("vcpus", 1)),
                          int(spec.get("memory_mb", 512)), placement)
            self.r.running[inst_id] = run
            self.incoming.add(inst_id)
            return f"{host}:{port}"
        raise last or VmmError("could not start the incoming VMM")

    async def _mesh_address(self) -> str:
        """Where the target listens: vmm.migration_address when set (tests: loopback), else
        this node's mesh address from the nodes view."""
        if self.r.settings.migration_address:
            return str(self.r.settings.migration_address)
        for node in await self.r.store.view("nodes"):
            if node.get("key") == self.r.me and isinstance(node.get("address"), str):
                return str(ipaddress.ip_interface(node["address"]).ip)
        raise VmmError("this node has no mesh address to receive a migration on "
                       "(mesh.enabled, or vmm.migration_address)")

    async def _machine_spec(self, inst_id: str, inst: dict[str, Any]) -> MachineSpec:
        """The same machine the source runs: same image files, same devices, the same address
        and MAC (attach keeps the address the instance has)."""
        r = self.r
        spec = inst.get("spec") or {}
        att = await r.network.attach(inst_id, inst) if r.network is not None else None
        digest = str(spec.get("image", ""))
        image = await r.find(digest)
        if image is None:
            raise VmmError(f"image: no image {digest[:16]} in the network")
        files = await r.ensure(digest)
        wd = workdir.path_for(r.run_dir, inst_id)
        await asyncio.to_thread(wd.mkdir, parents=True, exist_ok=True)
        r.add_dir(inst_id)
        disk: Path | None = None
        if "disk" in files:
            disk = wd / workdir.DISK
            await asyncio.to_thread(disk.unlink, missing_ok=True)  # block migration fills it
            await workdir.create_overlay(files["disk"], disk, int(spec.get("disk_gb", 5)))
        cmdline = spec.get("cmdline") or image.get("cmdline") or "console=ttyS0"
        nics: tuple[Nic, ...] = ()
        seed_disk: Path | None = None
        if att is not None:
            nics = att.nics
            seed_disk = await seed.write(wd, inst_id, att, root_of(await r.store.view("ca")))
            if " ip=" not in f" {cmdline}":
                cmdline = f"{cmdline} {att.cmdline}"
        mspec = MachineSpec(
            instance=inst_id, name=str(inst.get("name", inst_id[:12])),
            vcpus=int(spec.get("vcpus", 1)), memory_mb=int(spec.get("memory_mb", 512)),
            kernel=files["kernel"], workdir=wd, serial_log=wd / workdir.SERIAL,
            initrd=files.get("initrd"), cmdline=cmdline, disk=disk,
            confidential=spec.get("confidential", "none"), nics=nics, seed=seed_disk)
        refusal = r.driver.refusal(mspec)
        if refusal:
            raise VmmError(refusal)
        return mspec

    def claim_pending(self, inst_id: str, inst: dict[str, Any]) -> bool:
        """A pass computed before this node's move claim was applied still shows the source's
        placement: the waiting VMM is not to be ended for it."""
        return inst_id in self.incoming and inst.get("placement_op") == self.source_of.get(inst_id)

    async def follow_incoming(self, inst_id: str, run: Running, placement: str) -> None:
        """The target, its claim holding: Running the moment its VMM runs the guest; Failed
        when the VMM gives up (the source failed, or went away)."""
        r = self.r
        run.placement = placement
        await asyncio.to_thread(workdir.write_meta, run.machine.spec,
                                {"boot": run.boot, "placement": placement})
        # said at once, with the address it keeps: its name keeps answering while it moves
        await r.write_status(inst_id, placement, "booting", "live migration in progress", run)
        deadline = time.monotonic() + r.settings.migration_timeout_s
        reason = ""
        while True:
            try:
                state = await run.machine.incoming_state()
            except MachineGone as exc:
                reason = f"migration: the incoming VM ended: {_line(exc)}"
                break
            if state == "running":
                break
            now = r.target_of(inst_id)
            if now is None or not now.held:  # the source claimed it back, or it was deleted
                self.incoming.discard(inst_id)
                r.kick(inst_id)
                return
            if state not in ("waiting", "finish-migrate"):
                with contextlib.suppress(VmmError):
                    await run.machine.resume()  # the source was paused: run it here
                break
            if time.monotonic() > deadline:
                reason = (f"migration: not completed in {r.settings.migration_timeout_s:g} s "
                          "(vmm.migration_timeout_s)")
                break
            await asyncio.sleep(INCOMING_POLL_S)
        self.incoming.discard(inst_id)
        if reason:
            r.running.pop(inst_id, None)
            with contextlib.suppress(VmmError, OSError):
                await run.machine.destroy()
            await r.write_status(inst_id, placement, "failed", reason, run)
            return
        run.first_byte = True
        run.booted_at = time.monotonic()
        r.publish("migration_done", {"instance": inst_id, "node": r.me, "side": "target"})
        await r.write_status(inst_id, placement, "running", "", run)

    # the source -------------------------------------------------------------------------------
    def is_outgoing(self, inst: dict[str, Any], run: Running | None) -> bool:
        return run is not None and is_outgoing(inst, run.placement)

    async def send(self, inst_id: str, inst: dict[str, Any], run: Running) -> bool:
        """Migrates the VM to the target's listener. True: the target runs it (this copy is
        to be destroyed); False: it failed, this node claimed the instance back and keeps
        running it."""
        r = self.r
        incoming = str(inst.get("incoming"))
        r.publish("migration_started", {"instance": inst_id, "to": inst.get("placement"),
                                        "incoming": incoming})
        last = [0.0]

        def progress(p: MigrationProgress) -> None:
            now = time.monotonic()
            if p.status in ("completed", "failed") or now - last[0] >= PROGRESS_EVERY_S:
                last[0] = now
                r.publish("migration_progress", progress_event(inst_id, p))

        try:
            await run.machine.migrate(f"tcp:{incoming}", progress)
        except VmmError as exc:
            r.publish("migration_failed", {"instance": inst_id, "reason": _line(exc)})
            log.warning("live migration failed; keeping the VM here", extra={"fields": {
                "instance": inst_id, "error": str(exc)}})
            with contextlib.suppress(Exception):
                await r.store.append("instance.place", {"instance": inst_id, "node": r.me})
            return False
        r.publish("migration_done", {"instance": inst_id, "to": inst.get("placement"),
                                     "side": "source"})
        return True


def _line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__
