"""The QEMU backend: one qemu-system-x86_64 per VM, driven over QMP on a unix socket in the VM's
workdir with the qemu.qmp library. No daemon: the process runs in its own session, so it outlives
the node service, and a restarted service adopts it from the pid file and the QMP socket.

How the Machine calls map onto QMP (see qemu_args.py for the command line):
  boot          `cont` (the process starts with -S: created, not running)
  info          query-status + query-cpus-fast + query-memory-size-summary
  pause/resume  `stop` / `cont`
  shutdown      stop the guest at once and keep the process, as Cloud Hypervisor's vm.shutdown:
                `stop`, then a reset (the guest starts over on the next boot), and a marker file
                in workdir so `info` says "shutdown" (also after an adoption); boot = `cont`
  power_button  system_powerdown (ACPI power button; microvm has one through its ACPI GED)
  reboot        system_reset, with the reboot action switched to "reset" around it (the process
                runs with -no-reboot so that a guest's own reboot or panic ends it)
  resize        microvm cannot hotplug: False (the caller restarts cold); q35 adds vCPUs live
                up to max_vcpus (device_add), anything else False
  counters      query-blockstats (QEMU has no QMP counters for a tap netdev)
  migrate       migrate-set-parameters (bandwidth), `migrate` to tcp:IP:PORT, then query-migrate
                polled for progress (ram transferred/remaining, dirty-pages-rate) until
                completed (downtime as QEMU measured it) or failed
  create_incoming  the same command line without -S and with `-incoming tcp:IP:PORT`: QEMU
                waits (status inmigrate) and runs the guest the moment the migration completes
  destroy       `quit`, SIGKILL to the process group if it lingers, then the sockets and the pid
                file are removed (serial log and disk stay)
A guest that powers off, reboots or panics ends the process: `info` then raises MachineGone."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import time
from collections.abc import Awaitable
from pathlib import Path
from typing import Any, Literal, TypeVar

from qemu.qmp import ExecuteError, QMPClient, QMPError

from formation.node.vmm import qemu_args
from formation.node.vmm.driver import MigrationProgress, Progress
from formation.node.vmm.machine import MachineGone, MachineInfo, MachineSpec, MachineState, VmmError

T = TypeVar("T")
Accel = Literal["kvm", "tcg"]
SHUTDOWN_MARKER = "shutdown"
MIGRATING_MARKER = "migrating"  # the URI this VM was sent to (an outgoing migration)
START_TIMEOUT_S = 10.0
QUIT_GRACE_S = 5.0
CONNECT_TIMEOUT_S = 3.0
COMMAND_TIMEOUT_S = 30.0  # one QMP command's answer (none of ours is slow to answer)
CLEANUP_S = 1.0  # what a cancelled QMP call may take to clean up before it is left behind
_STATES: dict[str, MachineState] = {
    "prelaunch": "created", "running": "running", "paused": "paused", "suspended": "paused",
    "debug": "paused", "inmigrate": "created", "postmigrate": "paused",
    "finish-migrate": "paused", "save-vm": "paused", "restore-vm": "paused",
    "watchdog": "paused", "colo": "paused",
    "shutdown": "shutdown", "guest-panicked": "shutdown", "internal-error": "shutdown",
    "io-error": "shutdown",
}


def _stale_files(spec: MachineSpec) -> list[Path]:
    names = (qemu_args.QMP_SOCKET, qemu_args.CONSOLE_SOCKET, qemu_args.PID_FILE,
             SHUTDOWN_MARKER, MIGRATING_MARKER)
    return [spec.workdir / name for name in names]


def _remove_stale(spec: MachineSpec) -> None:
    for path in _stale_files(spec):
        path.unlink(missing_ok=True)


def _read_pid(spec: MachineSpec) -> int | None:
    try:
        return int((spec.workdir / qemu_args.PID_FILE).read_text().strip())
    except (OSError, ValueError):
        return None


def _runs_this_vm(pid: int, spec: MachineSpec) -> bool:
    """A live, non-zombie process whose command line names this VM's QMP socket (a pid alone
    may have been reused by an unrelated process)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return False
    if stat.rsplit(")", 1)[-1].split()[0] in ("Z", "X"):
        return False
    return qemu_args.opt(spec.workdir / qemu_args.QMP_SOCKET).encode() in cmdline


def _machine_of(pid: int) -> qemu_args.Machine:
    """The machine type a running QEMU was started with (an adopting driver may prefer
    another for new VMs)."""
    try:
        args = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return "microvm"
    kinds = [args[i + 1] for i, arg in enumerate(args[:-1]) if arg == b"-M"]
    return "q35" if kinds and kinds[0] == b"q35" else "microvm"


def _read_text(path: Path) -> str | None:
    try:
        return path.read_text()
    except OSError:
        return None


def _last_line(path: Path) -> str:
    try:
        lines = [ln for ln in path.read_text(errors="replace").splitlines() if ln.strip()]
    except OSError:
        return ""
    return lines[-1] if lines else ""


class QemuMachine:
    def __init__(self, spec: MachineSpec, pid: int,
                 process: asyncio.subprocess.Process | None = None,
                 machine: qemu_args.Machine = "microvm") -> None:
        self.spec = spec
        self._pid = pid
        self._machine = machine
        self._process = process  # ours when we started it; None when adopted
        self._lock = asyncio.Lock()

    @property
    def pid(self) -> int | None:
        return self._pid if self._alive() else None

    def _alive(self) -> bool:
        if self._process is not None:
            return self._process.returncode is None
        return _runs_this_vm(self._pid, self.spec)

    def _gone(self) -> MachineGone:
        why = _last_line(self.spec.workdir / qemu_args.STDERR_LOG)
        return MachineGone(f"VM {self.spec.name}: the QEMU process (pid {self._pid}) has exited"
                           + (f": {why}" if why else ""))

    async def _qmp(self, command: str, arguments: dict[str, Any] | None = None) -> Any:
        return (await self._qmp_all([(command, arguments)]))[0]

    async def _qmp_all(self, commands: list[tuple[str, dict[str, Any] | None]]) -> list[Any]:
        """Runs the commands over one QMP connection, opened for them and closed after. QEMU
        serves one QMP client at a time: holding none between calls lets a restarted service
        (or `formation doctor`, or an operator's qmp-shell) talk to the VM."""
        async with self._lock:
            if not self._alive():
                raise self._gone()
            command = commands[0][0]
            try:
                client = await _connect(self.spec)
                try:
                    results = []
                    for command, arguments in commands:
                        results.append(await _within(client.execute(command, arguments),
                                                     COMMAND_TIMEOUT_S))
                    return results
                finally:
                    await _close(client)
            except ExecuteError as exc:
                raise VmmError(f"VM {self.spec.name}: QEMU refused {command}: {exc}") from exc
            except (QMPError, OSError, EOFError, TimeoutError) as exc:
                if not self._alive() or not await self._exits_soon():
                    raise self._gone() from exc
                raise VmmError(f"VM {self.spec.name}: QMP {command} failed: {exc}") from exc

    async def _exits_soon(self) -> bool:
        """After a broken QMP connection: True while the process still runs a moment later."""
        return not await self._ends_within(0.5)

    async def _ends_within(self, seconds: float) -> bool:
        """Polls (an adopted process is no child of ours: nothing to wait on) until it ends."""
        for _ in range(max(1, int(seconds / 0.05))):
            if not self._alive():
                return True
            await asyncio.sleep(0.05)
        return not self._alive()

    async def boot(self) -> None:
        await asyncio.to_thread((self.spec.workdir / SHUTDOWN_MARKER).unlink, missing_ok=True)
        await self._qmp("cont")

    async def info(self) -> MachineInfo:
        status, cpus, memory = await self._qmp_all([
            ("query-status", None), ("query-cpus-fast", None),
            ("query-memory-size-summary", None)])
        state = _STATES.get(str(status.get("status")), "paused")
        if state == "created" and (self.spec.workdir / SHUTDOWN_MARKER).exists():
            state = "shutdown"
        total = int(memory.get("base-memory", 0)) + int(memory.get("plugged-memory", 0))
        return MachineInfo(state=state, vcpus=len(cpus), memory_mb=total // (1024 * 1024),
                           pid=self._pid)

    async def pause(self) -> None:
        await self._qmp("stop")

    async def resume(self) -> None:
        await self._qmp("cont")

    async def shutdown(self) -> None:
        await self._qmp("stop")
        await self._reset()
        await asyncio.to_thread((self.spec.workdir / SHUTDOWN_MARKER).write_text, "")

    async def power_button(self) -> None:
        await self._qmp("system_powerdown")

    async def reboot(self) -> None:
        await self._reset()

    async def _reset(self) -> None:
        """system_reset without -no-reboot turning it into an exit: the action is read when the
        reset is requested, so it is switched back right after."""
        await self._qmp("set-action", {"reboot": "reset"})
        try:
            await self._qmp("system_reset")
        finally:
            with contextlib.suppress(VmmError):
                await self._qmp("set-action", {"reboot": "shutdown"})

    async def resize(self, vcpus: int, memory_mb: int) -> bool:
        current = await self.info()
        if vcpus == current.vcpus and memory_mb == current.memory_mb:
            return True
        spec = self.spec
        if (not qemu_args.can_hotplug(spec, self._machine) or memory_mb != current.memory_mb
                or vcpus < current.vcpus or vcpus > (spec.max_vcpus or spec.vcpus)):
            return False
        slots = await self._qmp("query-hotpluggable-cpus")
        free = [s for s in slots if "qom-path" not in s]
        for slot in free[:vcpus - current.vcpus]:
            props = slot["props"]
            await self._qmp("device_add", {"driver": slot["type"],
                                           "id": f"cpu-{props.get('socket-id', 0)}-"
                                                 f"{props.get('core-id', 0)}", **props})
        return True

    async def counters(self) -> dict[str, dict[str, int]]:
        out: dict[str, dict[str, int]] = {}
        for entry in await self._qmp("query-blockstats"):
            name = entry.get("qdev") or entry.get("device") or entry.get("node-name") or "disk"
            stats = entry.get("stats", {})
            out[str(name)] = {key.replace("_", "-"): int(stats[key]) for key in
                              ("rd_bytes", "wr_bytes", "rd_operations", "wr_operations")
                              if key in stats}
        return out

    async def migrate(self, uri: str, progress: Progress) -> None:
        # A node service restarted mid-migration finds QEMU still at it, or done: follow it
        # rather than start another (which would fail, and the source claim back a stale VM).
        # Only a migration this VM was sent on counts (the marker): query-migrate on a VM that
        # came in by migration reports that incoming one as completed.
        marker = self.spec.workdir / MIGRATING_MARKER
        sent = await asyncio.to_thread(_read_text, marker)
        status = str((await self._qmp("query-migrate")).get("status", "none"))
        if sent != uri or status not in ("active", "setup", "completed", "device",
                                         "pre-switchover"):
            await asyncio.to_thread(marker.write_text, uri)
            await self._qmp("migrate-set-parameters", MIGRATION_PARAMETERS)
            await self._qmp("migrate", {"uri": uri})
        while True:
            info = await self._qmp("query-migrate")
            now = progress_of(info)
            progress(now)
            if now.status == "completed":
                return
            if now.status == "failed":
                why = str(info.get("error-desc") or info.get("status"))
                raise VmmError(f"VM {self.spec.name}: migration to {uri} failed: {why}")
            await asyncio.sleep(MIGRATION_POLL_S)

    async def incoming_state(self) -> str:
        status = str((await self._qmp("query-status")).get("status"))
        return "waiting" if status == "inmigrate" else status

    async def destroy(self) -> None:
        if self._alive():
            try:
                await self._qmp("quit")
                asked = True
            except VmmError:  # gone meanwhile (MachineGone), or QMP does not answer
                asked = False
            # Waiting on a QEMU that did not take the quit would only delay the kill.
            if not await self._ends_within(QUIT_GRACE_S if asked else 0.0):
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(self._pid, signal.SIGKILL)
                await self._ends_within(QUIT_GRACE_S)
        if self._process is not None:
            with contextlib.suppress(ProcessLookupError):
                await self._process.wait()
        await asyncio.to_thread(_remove_stale, self.spec)


MIGRATION_POLL_S = 0.2
# Applied before every outgoing migration, and by the bench's bare-QEMU comparison: QEMU's
# default bandwidth cap (128 MiB/s) would slow a migration over a fast mesh for nothing.
MIGRATION_PARAMETERS: dict[str, Any] = {"max-bandwidth": 4 << 30}
_MIGRATION_STATUS = {"none": "setup", "setup": "setup", "completed": "completed",
                     "failed": "failed", "cancelled": "failed", "cancelling": "failed"}


def progress_of(info: dict[str, Any]) -> MigrationProgress:
    """query-migrate's answer as a backend-neutral MigrationProgress."""
    ram = info.get("ram") or {}
    status = _MIGRATION_STATUS.get(str(info.get("status", "none")), "active")
    downtime = info.get("downtime")
    return MigrationProgress(
        status=status, transferred_bytes=int(ram.get("transferred", 0)),
        remaining_bytes=int(ram.get("remaining", 0)), total_bytes=int(ram.get("total", 0)),
        dirty_rate_pps=int(ram.get("dirty-pages-rate", 0)),
        downtime_ms=int(downtime) if status == "completed" and downtime is not None else None)


def incoming_args(args: list[str], listen: str) -> list[str]:
    """A target's command line: no -S (QEMU starts the guest itself when the migration
    completes, as the source was running: no extra round trip in the downtime) and
    -incoming on the listener."""
    return [a for a in args if a != "-S"] + ["-incoming", f"tcp:{listen}"]


async def _within(call: Awaitable[T], seconds: float) -> T:
    """`call`, or TimeoutError after `seconds`. Unlike asyncio.wait_for (3.11), it does not
    wait without end for the cancelled call to finish: qemu.qmp's cleanup of a session QEMU
    stopped answering can wait on the peer for ever (a test hung so, in select() with no
    timer, until pytest's 240 s timeout)."""
    task = asyncio.ensure_future(call)
    done, _ = await asyncio.wait({task}, timeout=seconds)
    if task in done:
        return task.result()
    task.add_done_callback(_retrieved)  # a late failure is not logged as never retrieved
    task.cancel()
    await asyncio.wait({task}, timeout=CLEANUP_S)
    raise TimeoutError(f"QMP: no answer within {seconds:g} s")


def _retrieved(task: asyncio.Future[Any]) -> None:
    if not task.cancelled():
        task.exception()


async def _connect(spec: MachineSpec) -> QMPClient:
    """A QMP session; bounded, since QEMU leaves a second client waiting for its greeting."""
    client = QMPClient(f"formation-{spec.instance[:12]}")
    try:
        await _within(client.connect(str(spec.workdir / qemu_args.QMP_SOCKET)),
                      CONNECT_TIMEOUT_S)
    except BaseException:
        await _close(client)
        raise
    return client


async def _close(client: QMPClient) -> None:
    with contextlib.suppress(QMPError, OSError, EOFError, TimeoutError):
        await _within(client.disconnect(), CONNECT_TIMEOUT_S)


class QemuDriver:
    name = "qemu"

    def __init__(self, binary: str, accel: Accel, sysfs: Path = Path("/sys"),
                 machine: qemu_args.Machine = "microvm") -> None:
        """`machine`: the machine type of VMs without GPUs; q35 boots slower (firmware) but
        can add vCPUs live up to a spec's max_vcpus."""
        self.binary = binary
        self.accel = accel
        self.sysfs = sysfs
        self.machine = machine

    def refusal(self, spec: MachineSpec) -> str | None:
        if spec.confidential != "none":
            return (f"confidential: {spec.confidential} VMs need Cloud Hypervisor on a host with "
                    f"{spec.confidential.upper()}; the QEMU backend here does not run them")
        for address in spec.gpus:
            device = self.sysfs / "bus" / "pci" / "devices" / address
            if not device.exists():
                return f"gpus: {address} is not a PCI device on this host"
            driver = device / "driver"
            bound = driver.resolve().name if driver.exists() else None
            if bound != "vfio-pci":
                return (f"gpus: {address} is bound to {bound or 'no driver'}, not vfio-pci "
                        "(bind it to vfio-pci to pass it through)")
        return None

    async def create(self, spec: MachineSpec) -> QemuMachine:
        return await self._launch(spec, None)

    async def create_incoming(self, spec: MachineSpec, listen: str) -> QemuMachine:
        return await self._launch(spec, listen)

    async def _launch(self, spec: MachineSpec, listen: str | None) -> QemuMachine:
        why = self.refusal(spec) or qemu_args.socket_problem(spec)
        if why is not None:
            raise VmmError(why)
        await asyncio.to_thread(self._prepare, spec)
        args = qemu_args.qemu_args(spec, self.binary, self.accel, self.machine)
        if listen is not None:
            args = incoming_args(args, listen)
        stderr = await asyncio.to_thread((spec.workdir / qemu_args.STDERR_LOG).open, "ab")
        try:
            process = await asyncio.create_subprocess_exec(
                *args, stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.DEVNULL,
                stderr=stderr, start_new_session=True)
        except OSError as exc:
            raise VmmError(f"cannot run {self.binary}: {exc.strerror}") from exc
        finally:
            stderr.close()
        deadline = time.monotonic() + START_TIMEOUT_S
        while True:
            if process.returncode is not None:
                why = _last_line(spec.workdir / qemu_args.STDERR_LOG)
                raise VmmError(f"VM {spec.name}: QEMU exited at start: "
                               f"{why or f'status {process.returncode}'}")
            try:
                # QEMU creates the socket before it runs the monitor: no connect (and no
                # logged connection error) before it exists.
                if not (spec.workdir / qemu_args.QMP_SOCKET).exists():
                    raise FileNotFoundError(qemu_args.QMP_SOCKET)
                await _close(await _connect(spec))
                break
            except (QMPError, OSError):
                if time.monotonic() > deadline:
                    with contextlib.suppress(ProcessLookupError):
                        os.killpg(process.pid, signal.SIGKILL)
                    await process.wait()
                    raise VmmError(f"VM {spec.name}: QEMU did not answer on QMP within "
                                   f"{START_TIMEOUT_S:g} s") from None
                await asyncio.sleep(0.02)
        return QemuMachine(spec, process.pid, process, self.machine)

    @staticmethod
    def _prepare(spec: MachineSpec) -> None:
        spec.workdir.mkdir(parents=True, exist_ok=True)
        spec.serial_log.parent.mkdir(parents=True, exist_ok=True)
        _remove_stale(spec)

    async def adopt(self, spec: MachineSpec) -> QemuMachine | None:
        pid = await asyncio.to_thread(_read_pid, spec)
        if pid is not None and await asyncio.to_thread(_runs_this_vm, pid, spec):
            try:
                await _close(await _connect(spec))
            except (QMPError, OSError, TimeoutError) as exc:
                # Running but silent: starting it again would run the VM twice.
                raise VmmError(f"VM {spec.name}: QEMU (pid {pid}) runs but does not answer on "
                               f"QMP: {exc or type(exc).__name__}") from exc
            kind = await asyncio.to_thread(_machine_of, pid)
            return QemuMachine(spec, pid, machine=kind)
        if spec.workdir.exists():
            await asyncio.to_thread(_remove_stale, spec)
        return None
