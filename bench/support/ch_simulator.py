"""A Cloud Hypervisor API simulator, for tests and benchmarks on hosts where the real binary
cannot run (no KVM, not installed). It is the only mock the suite allows; tests using it say
"simulator" in their names.

Run it with the binary's own command line:
    python -m bench.support.ch_simulator --api-socket path=/run/vm/api.sock [--no-shutdown]
    python -m bench.support.ch_simulator --version [-v]
or through an executable wrapper (`write_wrapper`) passed to the driver as its binary.

What it answers is the v53.0 spec file (cloud-hypervisor-v53.0.yaml, next to this file, byte
for byte) as the binary at that tag really behaves (see the spec README): every path of the
file and no other; the VmState machine (Created, Running, Paused; a shut-down VM drops back to
Created); errors as JSON arrays of strings (the error chain), `{"error": ...}` from the HTTP
layer (POST/DELETE, chunked bodies, bodies over 50 KiB), 404 for boot/info/reboot before the
VM exists, 500 for the wrong state, vmm.shutdown 200, a wrong method 400; PUTs that take no
body refuse one. Every request body is validated against the spec file (with the binary's
stricter `required` lists); an invalid one gets 400 and the validation message.

While the VM runs it writes a boot marker line to the serial file of its config, so the
reconciler and the console see serial output without a guest; a kernel command line holding
`ch_simulator.panic` plays a guest that panics at boot (panic lines on serial, then it is off:
vm.info says Created), for the Failed-with-serial-tail paths. Environment:
- CH_SIMULATOR_FEATURES: the build's features for vmm.ping (default "kvm,io_uring"), e.g.
  "kvm,io_uring,sev_snp,igvm" to play a confidential-capable build;
- CH_SIMULATOR_CAPTURE: a file to which each request is appended as one JSON line
  (method, endpoint, body, status, refused reason, fields the spec does not know).

Only the lifecycle is simulated in depth; the hotplug endpoints validate their body, then
record the device in the config; snapshot, restore, migration, coredump and resize-disk/zone
answer 500 "not simulated"."""

from __future__ import annotations

import argparse
import asyncio
import copy
import json
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

if TYPE_CHECKING:  # imported where used: `--version` answers without loading them
    from aiohttp import web
    from openapi_schema_validator import OAS30Validator

SPEC_FILE = Path(__file__).with_name("cloud-hypervisor-v53.0.yaml")
API_ROOT = "/api/v1/"
MAX_BODY = 50 * 1024  # micro_http's payload limit
MIB = 1024 * 1024
VERSION = "v53.0"
DEFAULT_FEATURES = "kvm,io_uring"
REPO = Path(__file__).resolve().parents[2]
DROPPED = "\nAll previous unanswered requests will be dropped."
PANIC = "ch_simulator.panic"  # on the kernel command line: the played guest panics at boot

# endpoint -> (method, request body schema or None). Written out, not read from the spec file,
# so that the routes test compares two independent lists.
ROUTES: dict[str, tuple[str, str | None]] = {
    "vmm.ping": ("GET", None),
    "vmm.shutdown": ("PUT", None),
    "vm.info": ("GET", None),
    "vm.counters": ("GET", None),
    "vm.create": ("PUT", "VmConfig"),
    "vm.delete": ("PUT", None),
    "vm.boot": ("PUT", None),
    "vm.pause": ("PUT", None),
    "vm.resume": ("PUT", None),
    "vm.shutdown": ("PUT", None),
    "vm.reboot": ("PUT", None),
    "vm.power-button": ("PUT", None),
    "vm.resize": ("PUT", "VmResize"),
    "vm.resize-disk": ("PUT", "VmResizeDisk"),
    "vm.resize-zone": ("PUT", "VmResizeZone"),
    "vm.add-device": ("PUT", "DeviceConfig"),
    "vm.remove-device": ("PUT", "VmRemoveDevice"),
    "vm.add-disk": ("PUT", "DiskConfig"),
    "vm.add-fs": ("PUT", "FsConfig"),
    "vm.add-generic-vhost-user": ("PUT", "GenericVhostUserConfig"),
    "vm.add-pmem": ("PUT", "PmemConfig"),
    "vm.add-net": ("PUT", "NetConfig"),
    "vm.add-vsock": ("PUT", "VsockConfig"),
    "vm.add-vdpa": ("PUT", "VdpaConfig"),
    "vm.add-user-device": ("PUT", "VmAddUserDevice"),
    "vm.snapshot": ("PUT", "VmSnapshotConfig"),
    "vm.coredump": ("PUT", "VmCoredumpData"),
    "vm.nmi": ("PUT", None),
    "vm.restore": ("PUT", "RestoreConfig"),
    "vm.receive-migration": ("PUT", "ReceiveMigrationData"),
    "vm.send-migration": ("PUT", "SendMigrationData"),
}

# hotplug endpoint -> (VmConfig list it extends, error text of the binary's ApiError)
ADD = {
    "vm.add-device": ("devices", "The device could not be added to the VM"),
    "vm.add-disk": ("disks", "The disk could not be added to the VM"),
    "vm.add-fs": ("fs", "The fs could not be added to the VM"),
    "vm.add-generic-vhost-user": ("generic-vhost-user",
                                  "The generic vhost-user device could not be added to the VM"),
    "vm.add-pmem": ("pmem", "The pmem device could not be added to the VM"),
    "vm.add-net": ("net", "The network device could not be added to the VM"),
    "vm.add-vsock": ("vsock", "The vsock device could not be added to the VM"),
    "vm.add-vdpa": ("vdpa", "The vDPA device could not be added to the VM"),
    "vm.add-user-device": ("user_devices", "The user device could not be added to the VM"),
}
NOT_SIMULATED = {
    "vm.resize-disk": "The disk could not be resized",
    "vm.resize-zone": "The memory zone could not be resized",
    "vm.snapshot": "The VM could not be snapshotted",
    "vm.coredump": "The VM could not be coredumped",
    "vm.restore": "The VM could not be restored",
}
# Played as a live migration: the source sends its VM config over TCP to the receiver, which
# answers only once it holds the VM (as the binary's requests answer at the end).
MIGRATION_ERRORS = {"vm.receive-migration": "Error receiving migration",
                    "vm.send-migration": "Error sending migration"}
MIGRATION_LINE_MAX = 1 << 20


def load_spec(path: Path = SPEC_FILE) -> dict[str, Any]:
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    with path.open() as handle:
        spec: dict[str, Any] = yaml.load(handle, Loader=loader)  # a safe loader, C if built
    return spec


def spec_routes(spec: dict[str, Any]) -> set[tuple[str, str]]:
    """(METHOD, endpoint) for every operation of the spec file."""
    return {(method.upper(), path.lstrip("/"))
            for path, item in spec["paths"].items() for method in item
            if method in ("get", "put", "post", "delete", "patch")}


def binary_schemas(spec: dict[str, Any]) -> dict[str, Any]:
    """The spec's components as the v53.0 binary applies them (spec README): some `required`
    lists differ both ways, and some integers are narrower than their format says."""
    schemas = copy.deepcopy(spec["components"]["schemas"])

    def require(name: str, *fields: str) -> None:
        schemas[name]["required"] = sorted(set(schemas[name].get("required", [])) | set(fields))

    def relax(name: str, *fields: str) -> None:
        schemas[name]["required"] = [f for f in schemas[name].get("required", [])
                                     if f not in fields]

    require("VmResizeDisk", "id", "desired_size")
    require("VmResizeZone", "id")
    require("VmRemoveDevice", "id")
    require("VmSnapshotConfig", "destination_url")
    require("VmCoredumpData", "destination_url")
    require("CpuTopology", "threads_per_core", "cores_per_die", "dies_per_package", "packages")
    relax("FsConfig", "num_queues", "queue_size")
    relax("VdpaConfig", "num_queues")
    relax("PciSegmentConfig", "pci_segment")
    for schema in schemas.values():
        segment = schema.get("properties", {}).get("pci_segment")
        if segment is not None:
            segment.update(minimum=0, maximum=0xFFFF)
    schemas["VsockConfig"]["properties"]["cid"].update(maximum=0xFFFFFFFF)
    schemas["NumaDistance"]["properties"]["distance"].update(minimum=0, maximum=0xFF)
    return schemas


class Validators:
    """Request body checks, one validator per schema name."""

    def __init__(self, spec: dict[str, Any]) -> None:
        self.schemas = binary_schemas(spec)
        self._cache: dict[str, OAS30Validator] = {}

    def problem(self, name: str, body: Any) -> str | None:
        """The first validation error, as `field: message`; None when valid."""
        validator = self._cache.get(name)
        if validator is None:
            from openapi_schema_validator import OAS30Validator, oas30_format_checker

            root = {"$ref": f"#/components/schemas/{name}",
                    "components": {"schemas": self.schemas}}
            validator = self._cache[name] = OAS30Validator(
                root, format_checker=oas30_format_checker)
        errors = sorted(validator.iter_errors(body), key=lambda e: list(e.absolute_path))
        if not errors:
            return None
        error = errors[0]
        where = ".".join(str(part) for part in error.absolute_path)
        return f"{where}: {error.message}" if where else error.message

    def unknown_fields(self, name: str, body: Any, prefix: str = "") -> list[str]:
        """Fields of `body` the schema does not name (the binary ignores them silently)."""
        schema = self.schemas[name]
        found: list[str] = []
        if not isinstance(body, dict):
            return found
        properties = schema.get("properties", {})
        for key, value in body.items():
            where = f"{prefix}{key}"
            if key not in properties:
                found.append(where)
                continue
            prop = properties[key]
            ref = prop.get("$ref") or prop.get("items", {}).get("$ref")
            if ref is None:
                continue
            child = ref.rsplit("/", 1)[-1]
            for item in (value if isinstance(value, list) else [value]):
                found += self.unknown_fields(child, item, where + ".")
        return found


class Refused(Exception):
    """An error answer: `body` a list (the error chain), a dict ({"error"}) or None (empty)."""

    def __init__(self, status: int, body: list[str] | dict[str, str] | None) -> None:
        super().__init__(status, body)
        self.status, self.body = status, body


def api_error(status: int, *chain: str) -> Refused:
    return Refused(status, ["Error from API", *chain])


def transition(action: str, current: str, new: str, verb: str) -> Refused:
    return api_error(500, action, f"Cannot {verb} VM",
                     f"Failed to {verb} migratable component",
                     f"Invalid transition: InvalidStateTransition({current}, {new})")


def backing_file(path: Path) -> bool:
    """True when `path` is a qcow2 image with a backing file."""
    try:
        with path.open("rb") as handle:
            header = handle.read(16)
    except OSError:
        return False
    return header[:4] == b"QFI\xfb" and int.from_bytes(header[8:16], "big") != 0


class Simulator:
    """One VMM: at most one VM config and, once booted, its running state."""

    def __init__(self, features: list[str], no_shutdown: bool, capture: Path | None,
                 spec: dict[str, Any] | None = None) -> None:
        self.features = features
        self.no_shutdown = no_shutdown
        self.capture = capture
        self.validators = Validators(spec or load_spec())
        self.config: dict[str, Any] | None = None
        self.state: str | None = None  # None: no VM (Created when config is set)
        self.booted_at = 0.0
        self.stopped = asyncio.Event()
        self.exit_after_answer = False
        self.current = ""
        self.console: asyncio.AbstractServer | None = None
        self.console_opening: asyncio.Future[None] | None = None
        self.handlers: dict[str, Callable[[Any], tuple[int, Any]]] = {
            endpoint: getattr(self, "do_" + endpoint.replace(".", "_").replace("-", "_"),
                              self.do_hotplug)
            for endpoint in ROUTES}

    # -- HTTP ------------------------------------------------------------------------------

    async def handle(self, request: web.Request) -> web.StreamResponse:
        from aiohttp import web
        endpoint = request.path[len(API_ROOT):] if request.path.startswith(API_ROOT) else ""
        record: dict[str, Any] = {"method": request.method, "endpoint": endpoint}
        try:
            status, payload = await self._answer(request, endpoint, record)
        except Refused as refused:
            status, payload = refused.status, refused.body
            record["refused"] = refused.body
        record["status"] = status
        self._capture(record)
        if payload is None:
            response = web.Response(status=status)
        elif isinstance(payload, dict) and set(payload) == {"error"}:
            # micro_http writes this one by hand, raw newline and all (not valid JSON)
            text = '{ "error": "' + payload["error"] + '" }'
            response = web.Response(status=status, text=text, content_type="application/json")
        else:
            response = web.json_response(payload, status=status)
        if self.exit_after_answer:
            asyncio.get_running_loop().call_soon(self.stopped.set)
        return response

    async def _answer(self, request: web.Request, endpoint: str,
                      record: dict[str, Any]) -> tuple[int, Any]:
        if request.method not in ("GET", "PUT", "PATCH"):
            raise Refused(400, {"error": "Invalid HTTP Method: Unsupported HTTP method."
                                + DROPPED})
        if request.headers.get("Transfer-Encoding", "").lower() == "chunked":
            raise Refused(400, {"error": "Unsupported transfer encoding: chunked." + DROPPED})
        size = request.content_length or 0
        if size > MAX_BODY:
            raise Refused(400, {"error": f"Request payload with size {size} is larger than the "
                                         f"limit of {MAX_BODY} allowed by server." + DROPPED})
        route = ROUTES.get(endpoint)
        if route is None:
            raise Refused(404, ["Not Found"])
        method, schema = route
        if request.method == "PATCH":
            raise Refused(400, None)
        if request.method != method:
            raise Refused(400, ["Bad Request"])
        raw = await request.read() if size else b""
        body: Any = None
        if schema is None:
            if raw:
                record["body"] = raw.decode("utf-8", "replace")
                raise Refused(400, ["Bad Request"])
        else:
            if not raw:
                raise Refused(400, None)
            try:
                body = json.loads(raw)
            except ValueError as exc:
                raise Refused(400, ["Failed to deserialize JSON", str(exc)]) from None
            record["body"] = body
            problem = self.validators.problem(schema, body)
            if problem is not None:
                raise Refused(400, ["Failed to deserialize JSON", problem])
            record["unknown"] = self.validators.unknown_fields(schema, body)
        self.current = endpoint  # for the handler the add-* endpoints share
        if endpoint == "vm.send-migration":
            return await self.send_migration(body)
        if endpoint == "vm.receive-migration":
            return await self.receive_migration(body)
        return self.handlers[endpoint](body)

    def _capture(self, record: dict[str, Any]) -> None:
        if self.capture is not None:
            with self.capture.open("a") as handle:
                handle.write(json.dumps(record) + "\n")

    # -- the guest, played ----------------------------------------------------------------

    def _serial(self, line: str) -> None:
        serial = (self.config or {}).get("serial") or {}
        if serial.get("mode") == "File" and serial.get("file"):
            with open(serial["file"], "a") as handle:
                handle.write(line + "\n")

    def _open_console(self) -> None:
        """`console: {mode: Socket}`: the virtio console (hvc0) on a unix socket, as the binary
        serves it; the played guest's terminal echoes what is typed."""
        console = (self.config or {}).get("console") or {}
        if console.get("mode") != "Socket" or not console.get("socket") or self.console:
            return

        async def client(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            writer.write(b"[ch-simulator] console (hvc0)\r\n")
            while data := await reader.read(4096):
                writer.write(data.replace(b"\n", b"\r\n"))
                await writer.drain()
            writer.close()

        async def open_server() -> None:
            Path(console["socket"]).unlink(missing_ok=True)
            self.console = await asyncio.start_unix_server(client, console["socket"])

        self.console_opening = asyncio.ensure_future(open_server())

    def _run(self) -> None:
        assert self.config is not None
        self.state, self.booted_at = "Running", time.monotonic()
        self._open_console()
        cpus, memory = self.config.get("cpus", {}), self.config.get("memory", {})
        if PANIC in self.config["payload"].get("cmdline", ""):
            self._serial("[    0.000000] Linux version 6.1.0 (ch-simulator)")
            self._serial(f"[    0.420000] Kernel panic - not syncing: {PANIC} on the kernel "
                         f"command line")
            self._guest_off()
            return
        self._serial(f"[ch-simulator] guest booted: {cpus.get('boot_vcpus', 1)} vCPUs, "
                     f"{memory.get('size', 512 * MIB) // MIB} MiB, cmdline "
                     f"{self.config['payload'].get('cmdline', '')!r}")

    def _boot_problem(self) -> str | None:
        """What the binary's config validation and payload loading would refuse."""
        assert self.config is not None
        cpus = self.config.get("cpus") or {"boot_vcpus": 1, "max_vcpus": 1}
        if cpus["max_vcpus"] < cpus["boot_vcpus"]:
            return f"Max CPUs ({cpus['max_vcpus']}) lower than boot CPUs ({cpus['boot_vcpus']})"
        payload, platform = self.config["payload"], self.config.get("platform") or {}
        if "tdx" in self.features and platform.get("tdx"):
            if not payload.get("firmware"):
                return "No TDX firmware specified"
            if cpus["max_vcpus"] != cpus["boot_vcpus"]:
                return "CPU hotplug is not permitted with TDX"
        if ("sev_snp" in self.features and "igvm" in self.features
                and platform.get("sev_snp") and not payload.get("igvm")):
            return "SEV-SNP requires an IGVM payload (--payload igvm=<path>)"
        if not any(payload.get(key) for key in ("kernel", "firmware", "igvm")):
            return "No payload to boot"
        for key in ("kernel", "initramfs", "firmware", "igvm"):
            if payload.get(key) and not Path(payload[key]).is_file():
                return f"Cannot open the {key} file {payload[key]}"
        for disk in self.config.get("disks") or []:
            path = Path(disk.get("path") or "")
            if not path.is_file():
                return f"Failed to open disk image {path}"
            if backing_file(path) and not disk.get("backing_files"):
                return f"Disk image {path} has a backing file, and backing_files is off"
        return None

    # -- endpoints ------------------------------------------------------------------------

    def do_vmm_ping(self, _: Any) -> tuple[int, Any]:
        return 200, {"build_version": f"{VERSION}-simulator", "version": VERSION,
                     "pid": os.getpid(), "features": self.features}

    def do_vmm_shutdown(self, _: Any) -> tuple[int, Any]:
        self.do_vm_delete(None)
        self.exit_after_answer = True
        return 200, None

    def do_vm_create(self, body: Any) -> tuple[int, Any]:
        if self.config is not None:
            raise api_error(500, "The VM could not be created", "VM is already created")
        self.config = body
        return 204, None

    def do_vm_boot(self, _: Any) -> tuple[int, Any]:
        if self.config is None:
            raise api_error(404, "The VM could not boot", "VM config is missing")
        if self.state is not None:
            raise api_error(500, "The VM could not boot", "VM is already created")
        problem = self._boot_problem()
        if problem is not None:
            raise api_error(500, "The VM could not boot", "Failed to validate config", problem)
        self._run()
        return 204, None

    def do_vm_info(self, _: Any) -> tuple[int, Any]:
        if self.config is None:
            raise api_error(404, "The VM info is not available", "VM is not created")
        memory = self.config.get("memory") or {"size": 512 * MIB}
        return 200, {"config": self.config, "state": self.state or "Created",
                     "memory_actual_size": memory["size"] + (memory.get("hotplugged_size") or 0),
                     "device_tree": {}}

    def _not_running(self, action: str) -> Refused:
        return api_error(500, action, "VM is not running")

    def do_vm_pause(self, _: Any) -> tuple[int, Any]:
        action = "The VM could not be paused"
        if self.state is None:
            raise self._not_running(action)
        if self.state != "Running":
            raise transition(action, self.state, "Paused", "pause")
        self.state = "Paused"
        return 204, None

    def do_vm_resume(self, _: Any) -> tuple[int, Any]:
        action = "The VM could not resume"
        if self.state is None:
            raise self._not_running(action)
        if self.state != "Paused":
            raise transition(action, self.state, "Running", "resume")
        self.state = "Running"
        return 204, None

    def do_vm_shutdown(self, _: Any) -> tuple[int, Any]:
        if self.state is None:
            raise self._not_running("The VM could not shutdown")
        self.state = None  # the binary drops the VM: vm.info says Created again
        self._serial("[ch-simulator] guest stopped (vm.shutdown)")
        return 204, None

    def do_vm_reboot(self, _: Any) -> tuple[int, Any]:
        if self.state is None:
            raise api_error(404, "The VM could not reboot", "VM is not created")
        self._serial("[ch-simulator] guest rebooting")
        self._run()
        return 204, None

    def do_vm_power_button(self, _: Any) -> tuple[int, Any]:
        if self.state is None:
            raise self._not_running("Error triggering power button")
        if self.state == "Running":  # the guest powers off at once
            self._serial("[ch-simulator] power button: guest powered off")
            self._guest_off()
        return 204, None

    def _guest_off(self) -> None:
        """The guest ended itself: the binary with --no-shutdown drops the VM (Created),
        without it the VMM exits."""
        self.state = None
        if not self.no_shutdown:
            self.config = None
            self.exit_after_answer = True

    def do_vm_delete(self, _: Any) -> tuple[int, Any]:
        self.state, self.config = None, None
        return 204, None

    def do_vm_counters(self, _: Any) -> tuple[int, Any]:
        if self.state is None or self.config is None:
            raise self._not_running("The VM info is not available")
        ticks = int((time.monotonic() - self.booted_at) * 1000) + 1
        counters: dict[str, dict[str, int]] = {}
        for index, _disk in enumerate(self.config.get("disks") or []):
            counters[f"_disk{index}"] = {"read_bytes": ticks * 4096, "read_ops": ticks,
                                         "write_bytes": ticks * 512, "write_ops": ticks // 8,
                                         "read_latency_min": 10, "read_latency_max": 900,
                                         "read_latency_avg": 80}
        for index, _net in enumerate(self.config.get("net") or []):
            counters[f"_net{index + 1}"] = {"rx_bytes": ticks * 1500, "rx_frames": ticks,
                                            "tx_bytes": ticks * 700, "tx_frames": ticks}
        counters["__rng"] = {"read_bytes": 64 + ticks}
        return 200, counters

    def do_vm_resize(self, body: Any) -> tuple[int, Any]:
        action = "The VM could not be resized"
        if self.config is None:
            raise api_error(404, action, "VM is not created")
        cpus = self.config.setdefault("cpus", {"boot_vcpus": 1, "max_vcpus": 1})
        memory = self.config.setdefault("memory", {"size": 512 * MIB})
        vcpus, ram = body.get("desired_vcpus"), body.get("desired_ram")
        if self.state is not None:
            if vcpus is not None and vcpus > cpus["max_vcpus"]:
                raise api_error(500, action, "Error from CPU manager",
                                "Requested vCPUs exceed maximum")
            if ram is not None and ram > memory["size"] and memory.get("hotplug_size"):
                if (ram - memory["size"]) % (128 * MIB):
                    raise api_error(500, action, "Memory manager error", "The requested "
                                    "hotplug memory addition is not a valid size")
                if ram > memory["size"] + memory["hotplug_size"] - (
                        memory.get("hotplugged_size") or 0):
                    raise api_error(500, action, "Memory manager error",
                                    "Failed to allocate a memory range")
        if vcpus is not None:
            cpus["boot_vcpus"] = vcpus
        if ram is not None:
            memory["size"] = ram  # ACPI: the config follows, the guest keeps what it has
        return 204, None

    def do_vm_nmi(self, _: Any) -> tuple[int, Any]:
        if self.state is None:
            raise self._not_running("Error triggering NMI")
        return 204, None

    def do_vm_remove_device(self, body: Any) -> tuple[int, Any]:
        action = "The device could not be removed from the VM"
        if self.config is None:
            raise api_error(404, action, "VM is not created")
        for key, _ in ADD.values():
            items = self.config.get(key)
            if isinstance(items, list) and any(i.get("id") == body["id"] for i in items):
                self.config[key] = [i for i in items if i.get("id") != body["id"]]
                return 204, None
        raise api_error(500, action, f"Unknown device id {body['id']}")

    @staticmethod
    def _tcp(url: str, endpoint: str) -> tuple[str, int]:
        host, _, port = url.removeprefix("tcp:").rpartition(":")
        if not url.startswith("tcp:") or not host or not port.isdigit():
            raise api_error(500, MIGRATION_ERRORS[endpoint],
                            f"Invalid migration URL {url} (the simulator plays tcp:HOST:PORT)")
        return host, int(port)

    async def send_migration(self, body: dict[str, Any]) -> tuple[int, Any]:
        host, port = self._tcp(body["destination_url"], "vm.send-migration")
        if self.config is None or self.state not in ("Running", "Paused"):
            raise api_error(500, MIGRATION_ERRORS["vm.send-migration"], "VM is not running")
        try:
            reader, writer = await asyncio.open_connection(host, port)
        except OSError as exc:
            raise api_error(500, MIGRATION_ERRORS["vm.send-migration"],
                            f"Error connecting to {host}:{port}: {exc.strerror}") from None
        try:
            writer.write(json.dumps({"config": self.config, "state": self.state}).encode()
                         + b"\n")
            await writer.drain()
            ack = await reader.readline()
        finally:
            writer.close()
        if ack.strip() != b"ok":
            raise api_error(500, MIGRATION_ERRORS["vm.send-migration"],
                            "The destination did not acknowledge the VM")
        self._serial("[ch-simulator] migrated out")
        self.config, self.state = None, None  # the VM lives on at the destination
        return 204, None

    async def receive_migration(self, body: dict[str, Any]) -> tuple[int, Any]:
        host, port = self._tcp(body["receiver_url"], "vm.receive-migration")
        if self.config is not None:
            raise api_error(500, MIGRATION_ERRORS["vm.receive-migration"],
                            "VM is already created")
        loop = asyncio.get_running_loop()
        got: asyncio.Future[dict[str, Any]] = loop.create_future()

        async def one(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            try:
                line = await reader.readuntil(b"\n")
                data = json.loads(line[:MIGRATION_LINE_MAX])
                problem = self.validators.problem("VmConfig", data.get("config"))
                if problem is not None or got.done():
                    return
                writer.write(b"ok\n")
                await writer.drain()
                got.set_result(data)
            except (ValueError, asyncio.IncompleteReadError, asyncio.LimitOverrunError):
                return
            finally:
                writer.close()

        try:
            server = await asyncio.start_server(one, host, port, limit=MIGRATION_LINE_MAX)
        except OSError as exc:
            raise api_error(500, MIGRATION_ERRORS["vm.receive-migration"],
                            f"Error binding to {host}:{port}: {exc.strerror}") from None
        try:
            data = await got
        finally:
            server.close()
        self.config = data["config"]
        self.state, self.booted_at = data.get("state") or "Running", time.monotonic()
        self._open_console()
        self._serial("[ch-simulator] migrated in")
        return 204, None

    def do_hotplug(self, body: Any) -> tuple[int, Any]:
        """The add-* endpoints and those the simulator does not play (NOT_SIMULATED)."""
        endpoint = self.current
        if endpoint in NOT_SIMULATED:
            raise api_error(500, NOT_SIMULATED[endpoint], "not simulated by ch_simulator")
        key, action = ADD[endpoint]
        if self.config is None:
            raise api_error(404, action, "VM is not created")
        items = self.config.setdefault(key, []) if key != "vsock" else None
        device_id = body.get("id") or f"_{key}{len(items or [])}"
        body = {**body, "id": device_id}
        if items is None:
            self.config[key] = body
        else:
            items.append(body)
        if self.state is None:
            return 204, None  # cold-added: it comes with the next boot
        return 200, {"id": device_id, "bdf": f"0000:00:{6 + len(items or []):02x}.0"}


def make_app(simulator: Simulator) -> web.Application:
    from aiohttp import web
    app = web.Application(client_max_size=4 * MAX_BODY)
    app.router.add_route("*", "/{tail:.*}", simulator.handle)
    return app


def new_simulator(features: list[str] | None = None, no_shutdown: bool = False,
                  capture: Path | None = None) -> Simulator:
    return Simulator(env_features() if features is None else features, no_shutdown, capture)


def env_features() -> list[str]:
    return [f for f in os.environ.get("CH_SIMULATOR_FEATURES", DEFAULT_FEATURES).split(",") if f]


async def serve(socket: Path, simulator: Simulator) -> None:
    from aiohttp import web
    runner = web.AppRunner(make_app(simulator), handle_signals=True)
    await runner.setup()
    socket.unlink(missing_ok=True)
    site = web.UnixSite(runner, str(socket))
    await site.start()
    try:
        await simulator.stopped.wait()
    finally:
        await runner.cleanup()


def write_wrapper(directory: Path, *, features: str | None = None,
                  capture: Path | None = None, name: str = "cloud-hypervisor") -> Path:
    """An executable that runs the simulator with the binary's command line: what a test
    passes to CloudHypervisorDriver as `binary`."""
    directory.mkdir(parents=True, exist_ok=True)
    lines = ["#!/bin/sh",
             f"export PYTHONPATH='{REPO}'${{PYTHONPATH:+:$PYTHONPATH}}"]
    if features is not None:
        lines.append(f"export CH_SIMULATOR_FEATURES='{features}'")
    if capture is not None:
        lines.append(f"export CH_SIMULATOR_CAPTURE='{capture}'")
    lines.append(f"exec '{sys.executable}' -m bench.support.ch_simulator \"$@\"")
    path = directory / name
    path.write_text("\n".join(lines) + "\n")
    path.chmod(0o755)
    return path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="cloud-hypervisor")
    parser.add_argument("--api-socket")
    parser.add_argument("--version", action="store_true")
    parser.add_argument("-v", action="count", default=0)
    parser.add_argument("--no-shutdown", action="store_true")
    parser.add_argument("--log-file")
    args, _unknown = parser.parse_known_args(argv)
    if args.version:
        print(f"cloud-hypervisor {VERSION}")
        print("Migration Protocol Versions: 1.0")
        if args.v:
            print(f"Enabled features: {json.dumps(env_features())}")
        return 0
    simulator = new_simulator(
        no_shutdown=args.no_shutdown,
        capture=Path(os.environ["CH_SIMULATOR_CAPTURE"])
        if os.environ.get("CH_SIMULATOR_CAPTURE") else None)
    if not args.api_socket or not args.api_socket.startswith("path="):
        print("Error: --api-socket path=<path> is required by the simulator", file=sys.stderr)
        return 1
    asyncio.run(serve(Path(args.api_socket.split("=", 1)[1].split(",")[0]), simulator))
    return 0


if __name__ == "__main__":
    sys.exit(main())
