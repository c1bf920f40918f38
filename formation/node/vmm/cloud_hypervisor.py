"""The Cloud Hypervisor backend: one `cloud-hypervisor --api-socket path=<workdir>/api.sock`
process per VM, driven over its REST API (ch_api.py) with the body ch_config.py builds.

The process starts in its own session with `--no-shutdown` (a guest that powers off leaves
the VMM and its VM, state Created, so the reconciler sees "shutdown" instead of a vanished
process) and its pid in <workdir>/vmm.pid, so a restarted node service adopts it. The pid is
trusted only while /proc says that process is a live one whose command line names this VM's
socket: a recycled pid is never signalled."""

from __future__ import annotations

import asyncio
import ipaddress
import os
import signal
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from formation.node.vmm.ch_api import ChApi
from formation.node.vmm.ch_config import MIB, ceilings, vm_config
from formation.node.vmm.ch_errors import one_line
from formation.node.vmm.ch_host import spec_refusal
from formation.node.vmm.driver import Driver, MigrationProgress, Progress
from formation.node.vmm.machine import (
    CONSOLE_SOCKET,
    MachineGone,
    MachineInfo,
    MachineSpec,
    MachineState,
    VmmError,
)

SOCKET = "api.sock"
PID_FILE = "vmm.pid"
LOG_FILE = "vmm.log"
BOOTED = "booted"  # present once the VM was booted: a later `Created` means shut down
MAX_SOCKET_PATH = 107  # sun_path
MIGRATION_TIMEOUT_S = 3600.0  # vm.send-migration/vm.receive-migration answer at the end
STATES: dict[str, MachineState] = {"Running": "running", "Paused": "paused",
                                   "Shutdown": "shutdown", "Created": "created"}
HOTPLUG_STEP_MB = 128  # CH adds memory (ACPI) in DIMMs of multiples of 128 MiB


def _proc_matches(pid: int, socket: Path) -> bool:
    """True while `pid` is a live (not zombie) process whose command line names `socket`."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return False
    state = stat.rsplit(")", 1)[-1].split()[0] if ")" in stat else "?"
    return state not in ("Z", "X") and str(socket).encode() in cmdline


def _read_pid(path: Path) -> int | None:
    try:
        text = path.read_text()[:32].strip()
    except OSError:
        return None
    return int(text) if text.isdigit() else None


def _listening(host: str, port: int) -> bool:
    """Whether a TCP socket listens on host:port (IPv4), from /proc/net/tcp: a probe
    connection would be taken for the migration by the receiving VMM."""
    want = f"{int.from_bytes(ipaddress.IPv4Address(host).packed, 'little'):08X}:{port:04X}"
    try:
        lines = Path("/proc/net/tcp").read_text().splitlines()[1:]
    except OSError:
        return False
    return any(f[1] == want and f[3] == "0A" for f in (ln.split() for ln in lines) if len(f) > 3)


def _remove(*paths: Path) -> None:
    for path in paths:
        path.unlink(missing_ok=True)


def _log_tail(path: Path, limit: int = 4096) -> str:
    try:
        with path.open("rb") as handle:
            handle.seek(max(0, path.stat().st_size - limit))
            lines = handle.read().decode("utf-8", "replace").strip().splitlines()
    except OSError:
        return ""
    return one_line(lines[-1], 160) if lines else ""


class CloudHypervisorMachine:
    """One VM in its own cloud-hypervisor process (started by us or adopted)."""

    def __init__(self, spec: MachineSpec, pid: int, api: ChApi,
                 process: asyncio.subprocess.Process | None = None,
                 stop_grace_s: float = 5.0) -> None:
        self.spec = spec
        self._pid = pid
        self.api = api
        self._process = process  # our child: waited on (reaped) rather than polled
        self.stop_grace_s = stop_grace_s
        self.receiving: asyncio.Task[Any] | None = None  # vm.receive-migration, answered at end

    @property
    def pid(self) -> int | None:
        return self._pid

    @property
    def socket(self) -> Path:
        return self.spec.workdir / SOCKET

    def alive(self) -> bool:
        if self._process is not None and self._process.returncode is not None:
            return False
        return _proc_matches(self._pid, self.socket)

    def _check(self) -> None:
        if not self.alive():
            raise MachineGone(f"cloud-hypervisor (pid {self._pid}) of {self.spec.name} has "
                              f"exited{self.last_words()}")

    def last_words(self) -> str:
        tail = _log_tail(self.spec.workdir / LOG_FILE)
        return f": {tail}" if tail else ""

    async def _put(self, endpoint: str, body: dict[str, Any] | None = None) -> Any:
        self._check()
        return await self.api.put(endpoint, body)

    async def migrate(self, uri: str, progress: Progress) -> None:
        """vm.send-migration answers once the migration is done (or failed); CH reports no
        progress meanwhile, so only its start and end are published."""
        progress(MigrationProgress("active"))
        self._check()
        long_api = ChApi(self.socket, MIGRATION_TIMEOUT_S)
        try:
            await long_api.put("vm.send-migration", {"destination_url": uri})
        except MachineGone:
            raise
        except VmmError as exc:
            raise VmmError(f"VM {self.spec.name}: migration to {uri} failed: {exc}") from None
        finally:
            await long_api.close()
        progress(MigrationProgress("completed"))

    async def incoming_state(self) -> str:
        task = self.receiving
        if task is None or not task.done():
            self._check()
            return "waiting"
        if task.cancelled() or task.exception() is not None:
            raise MachineGone(f"VM {self.spec.name}: receiving the migration failed: "
                              f"{task.exception() if not task.cancelled() else 'cancelled'}")
        return "running"

    async def boot(self) -> None:
        await self._put("vm.boot")
        await asyncio.to_thread((self.spec.workdir / BOOTED).touch)

    async def info(self) -> MachineInfo:
        self._check()
        answer = await self.api.get("vm.info")
        try:
            state = STATES[answer["state"]]
            config = answer["config"]
            vcpus = int(config["cpus"]["boot_vcpus"])
            memory = config["memory"]
            memory_mb = (int(memory["size"]) + int(memory.get("hotplugged_size") or 0)) // MIB
        except (KeyError, TypeError, ValueError):
            raise VmmError(f"cloud-hypervisor vm.info of {self.spec.name} is missing its "
                           f"state or size") from None
        if state == "created" and await asyncio.to_thread(
                (self.spec.workdir / BOOTED).exists):
            state = "shutdown"  # CH drops a shut-down VM back to Created
        return MachineInfo(state=state, vcpus=vcpus, memory_mb=memory_mb, pid=self._pid)

    async def pause(self) -> None:
        await self._put("vm.pause")

    async def resume(self) -> None:
        await self._put("vm.resume")

    async def shutdown(self) -> None:
        await self._put("vm.shutdown")

    async def power_button(self) -> None:
        await self._put("vm.power-button")

    async def reboot(self) -> None:
        await self._put("vm.reboot")

    async def resize(self, vcpus: int, memory_mb: int) -> bool:
        """Live within the ceilings the VM was created with; memory only grows (ACPI hotplug
        cannot take memory back) and in 128 MiB steps. Anything else: False (cold restart)."""
        if self.spec.confidential != "none":
            return False
        max_vcpus, max_memory_mb = ceilings(self.spec)
        now = await self.info()
        if vcpus < 1 or vcpus > max_vcpus or memory_mb > max_memory_mb:
            return False
        if memory_mb < now.memory_mb or (memory_mb - now.memory_mb) % HOTPLUG_STEP_MB:
            return False
        body: dict[str, Any] = {}
        if vcpus != now.vcpus:
            body["desired_vcpus"] = vcpus
        if memory_mb != now.memory_mb:
            body["desired_ram"] = memory_mb * MIB
        if body:
            await self._put("vm.resize", body)
        return True

    async def counters(self) -> dict[str, dict[str, int]]:
        self._check()
        answer = await self.api.get("vm.counters")
        if not isinstance(answer, dict):
            return {}
        return {str(device): {str(k): v for k, v in values.items() if isinstance(v, int)}
                for device, values in answer.items() if isinstance(values, dict)}

    async def destroy(self) -> None:
        """vm.delete + vmm.shutdown; SIGKILL when the process lingers past the grace time."""
        if self.alive():
            for endpoint in ("vm.delete", "vmm.shutdown"):
                try:
                    await self.api.put(endpoint)
                except MachineGone:
                    break
                except VmmError:
                    continue  # refused or wedged: the next step, or the kill, ends it
            if not await self._exited(self.stop_grace_s):
                if self.alive():
                    try:
                        os.kill(self._pid, signal.SIGKILL)
                    except ProcessLookupError:
                        pass
                await self._exited(5.0)
        await self.api.close()
        await asyncio.to_thread(_remove, self.socket, self.socket.with_name(SOCKET + ".lock"),
                                self.spec.workdir / PID_FILE, self.spec.workdir / CONSOLE_SOCKET)

    async def _exited(self, timeout_s: float) -> bool:
        if self._process is not None:
            try:
                await asyncio.wait_for(self._process.wait(), timeout_s)
                return True
            except TimeoutError:
                return False
        deadline = time.monotonic() + timeout_s
        while self.alive():
            if time.monotonic() > deadline:
                return False
            await asyncio.sleep(0.05)
        return True


class CloudHypervisorDriver:
    """`binary`: the cloud-hypervisor executable (a path or a name on PATH). `firmware` (TD
    firmware) and `igvm` are what TDX and SEV-SNP guests need besides the kernel; `sys_root`
    is where the host's sysfs is read."""

    name = "cloud-hypervisor"

    def __init__(self, binary: str, *, sys_root: Path = Path("/sys"),
                 firmware: Path | None = None, igvm: Path | None = None,
                 start_timeout_s: float = 10.0, stop_grace_s: float = 5.0,
                 api_timeout_s: float = 30.0) -> None:
        self.binary = binary
        self.sys_root = sys_root
        self.firmware = firmware
        self.igvm = igvm
        self.start_timeout_s = start_timeout_s
        self.stop_grace_s = stop_grace_s
        self.api_timeout_s = api_timeout_s
        self.features: frozenset[str] | None = None  # the build's, from its first vmm.ping
        self.version: str | None = None

    def refusal(self, spec: MachineSpec) -> str | None:
        return spec_refusal(spec, self.sys_root, self.features, firmware=self.firmware,
                            igvm=self.igvm)

    async def create(self, spec: MachineSpec) -> CloudHypervisorMachine:
        reason = self.refusal(spec)
        if reason is not None:
            raise VmmError(reason)
        socket = spec.workdir / SOCKET
        if len(str(socket).encode()) > MAX_SOCKET_PATH:
            raise VmmError(f"the VM's API socket path is too long for a unix socket "
                           f"({len(str(socket))} > {MAX_SOCKET_PATH} bytes): {socket}")
        existing = await self.adopt(spec)
        if existing is not None:
            await existing.api.close()
            raise VmmError(f"a cloud-hypervisor for {spec.name} already runs in "
                           f"{spec.workdir}: adopt it instead of creating another")
        machine = await self._start(spec)
        try:
            await self._learn(machine)
            reason = self.refusal(spec)
            if reason is not None:
                raise VmmError(reason)
            await machine.api.put("vm.create", vm_config(spec, firmware=self.firmware,
                                                          igvm=self.igvm))
        except BaseException:
            await machine.destroy()
            raise
        return machine

    async def create_incoming(self, spec: MachineSpec, listen: str) -> CloudHypervisorMachine:
        """A VMM without a VM, receiving one: vm.receive-migration answers only once the
        migration is done, so it runs as a task that incoming_state looks at."""
        reason = self.refusal(spec)
        if reason is not None:
            raise VmmError(reason)
        machine = await self._start(spec)
        long_api = ChApi(machine.socket, MIGRATION_TIMEOUT_S)

        async def receive() -> Any:
            try:
                return await long_api.put("vm.receive-migration",
                                          {"receiver_url": f"tcp:{listen}"})
            finally:
                await long_api.close()

        machine.receiving = asyncio.get_running_loop().create_task(receive())
        # the claim that makes the source send follows this return: listen first
        host, _, port = listen.rpartition(":")
        deadline = time.monotonic() + self.start_timeout_s
        while not await asyncio.to_thread(_listening, host, int(port)):
            if machine.receiving.done() or time.monotonic() > deadline:
                await machine.destroy()
                raise VmmError(f"cloud-hypervisor did not listen for the migration on {listen}")
            await asyncio.sleep(0.02)
        return machine

    async def _start(self, spec: MachineSpec) -> CloudHypervisorMachine:
        socket = spec.workdir / SOCKET
        await asyncio.to_thread(spec.workdir.mkdir, parents=True, exist_ok=True)
        # a VM created afresh in this workdir (a cold restart) has not been booted yet
        await asyncio.to_thread(_remove, socket, spec.workdir / PID_FILE,
                                spec.workdir / BOOTED, spec.workdir / CONSOLE_SOCKET)
        log = await asyncio.to_thread(open, spec.workdir / LOG_FILE, "ab")
        try:
            process = await asyncio.create_subprocess_exec(
                self.binary, "--api-socket", f"path={socket}", "--no-shutdown",
                stdin=asyncio.subprocess.DEVNULL, stdout=log, stderr=log,
                start_new_session=True)
        except OSError as exc:
            raise VmmError(f"cannot start cloud-hypervisor ({self.binary}): "
                           f"{one_line(exc.strerror or str(exc), 120)}") from None
        finally:
            log.close()
        await asyncio.to_thread((spec.workdir / PID_FILE).write_text, f"{process.pid}\n")
        machine = CloudHypervisorMachine(spec, process.pid, ChApi(socket, self.api_timeout_s),
                                         process, self.stop_grace_s)
        deadline = time.monotonic() + self.start_timeout_s
        while True:
            if process.returncode is not None:
                await machine.destroy()
                raise VmmError(f"cloud-hypervisor exited at start (code {process.returncode})"
                               f"{machine.last_words()}")
            try:
                await machine.api.get("vmm.ping")
                return machine
            except MachineGone:
                pass
            if time.monotonic() > deadline:
                await machine.destroy()
                raise VmmError(f"cloud-hypervisor did not open its API socket {socket} within "
                               f"{self.start_timeout_s:g} s")
            await asyncio.sleep(0.02)

    async def probe_features(self) -> frozenset[str]:
        """The build's features without starting a VM (`--version -v`), for an offer or
        `formation doctor` that must not promise a confidential VM the build would ignore.
        Empty when the binary does not say (or cannot run)."""
        try:
            process = await asyncio.create_subprocess_exec(
                self.binary, "--version", "-v", stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.DEVNULL)
            out, _ = await asyncio.wait_for(process.communicate(), self.start_timeout_s)
        except (OSError, TimeoutError):
            return frozenset()
        for line in out.decode("utf-8", "replace").splitlines()[:20]:
            if line.startswith("Enabled features:"):
                names = line.split(":", 1)[1].strip(" []")
                self.features = frozenset(n.strip(' "') for n in names.split(",")
                                          if n.strip(' "'))
                return self.features
        return frozenset()

    async def _learn(self, machine: CloudHypervisorMachine) -> None:
        """Remember the build's version and features (vmm.ping) for later refusals."""
        pong = await machine.api.get("vmm.ping")
        if isinstance(pong, dict):
            features = pong.get("features")
            if isinstance(features, list):
                self.features = frozenset(str(item) for item in features)
            if isinstance(pong.get("version"), str):
                self.version = pong["version"]

    async def adopt(self, spec: MachineSpec) -> CloudHypervisorMachine | None:
        socket = spec.workdir / SOCKET
        pid = await asyncio.to_thread(_read_pid, spec.workdir / PID_FILE)
        if pid is not None and _proc_matches(pid, socket):
            machine = CloudHypervisorMachine(spec, pid, ChApi(socket, self.api_timeout_s),
                                             stop_grace_s=self.stop_grace_s)
            try:
                await self._learn(machine)
                return machine
            except VmmError:
                await machine.destroy()  # ours, but not answering: end it, start afresh
                return None
        await asyncio.to_thread(_remove, socket, socket.with_name(SOCKET + ".lock"),
                                spec.workdir / PID_FILE)
        return None


if TYPE_CHECKING:  # mypy proves the backend implements the one driver interface
    _driver: Driver = CloudHypervisorDriver("cloud-hypervisor")
