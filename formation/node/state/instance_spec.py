"""What an instance's `spec` and its node's `observed` report may hold, checked by the rules on
every replica. The limits are the API's (formation/api/vm_models.py), imported rather than
copied, so a spec the API accepts is one every replica accepts and the other way round.

Each check returns None or one line "field: expected ...", which the rules turn into the
op's refusal (payload.spec.vcpus: expected ...), so whoever wrote it learns which field."""

from __future__ import annotations

import ipaddress
import re
from typing import Any

from formation.api.vm_models import DISK_GB, MEMORY_MB, VCPUS

GPUS = (0, 16)
CONFIDENTIAL = ("none", "sev-snp", "tdx")
MAX_CMDLINE = 1024
_HEX64 = re.compile(r"^[0-9a-f]{64}$")
PCI_ADDRESS = re.compile(r"^[0-9a-f]{4}:[0-9a-f]{2}:[0-9a-f]{2}\.[0-7]$")

SPEC_REQUIRED = ("image", "vcpus", "memory_mb", "disk_gb")
SPEC_FIELDS = frozenset((*SPEC_REQUIRED, "gpus", "confidential", "node", "cmdline", "egress",
                         "ports", "replicate"))
REPLICATE = ("restart", "never")
MAX_PORTS = 16
PORT = re.compile(r"^([1-9][0-9]{0,4})/(tcp|udp)$")

OBSERVED_STATES = ("placed", "booting", "running", "stopping", "stopped", "failed")
MAX_OBSERVED_BYTES = 4096
MAX_TAIL_LINES = 20
MAX_TAIL_LINE = 200
MAX_REASON = 512


def is_uint(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool) and v >= 0


def _in_range(v: Any, bounds: tuple[int, int]) -> bool:
    return is_uint(v) and bounds[0] <= v <= bounds[1]


def spec_problem(spec: Any) -> str | None:
    """What is wrong with an instance spec, as "field: expected ...", or None. Every required
    field must be there (an update's spec replaces the whole spec) and no other field."""
    if not isinstance(spec, dict):
        return "spec: expected a map"
    extra = sorted(str(k) for k in set(spec) - SPEC_FIELDS)
    if extra:
        return f"spec.{extra[0]}: not a field of a spec (expected {', '.join(sorted(SPEC_FIELDS))})"
    checks: list[tuple[str, bool, str]] = [
        ("image", isinstance(spec.get("image"), str) and bool(_HEX64.match(spec["image"])),
         "an image digest, 64 hex"),
        ("vcpus", _in_range(spec.get("vcpus"), VCPUS), f"an integer from {VCPUS[0]} to {VCPUS[1]}"),
        ("memory_mb", _in_range(spec.get("memory_mb"), MEMORY_MB),
         f"MiB from {MEMORY_MB[0]} to {MEMORY_MB[1]}"),
        ("disk_gb", _in_range(spec.get("disk_gb"), DISK_GB),
         f"GB from {DISK_GB[0]} to {DISK_GB[1]}"),
    ]
    for name, ok, expected in checks:
        if not ok:
            return f"spec.{name}: expected {expected}"
    if "gpus" in spec and not _in_range(spec["gpus"], GPUS):
        return f"spec.gpus: expected an integer from {GPUS[0]} to {GPUS[1]}"
    if "confidential" in spec and spec["confidential"] not in CONFIDENTIAL:
        return "spec.confidential: expected none, sev-snp or tdx"
    if "node" in spec and not (isinstance(spec["node"], str) and _HEX64.match(spec["node"])):
        return "spec.node: expected a node key, 64 hex"
    if "cmdline" in spec and not (isinstance(spec["cmdline"], str)
                                  and len(spec["cmdline"]) <= MAX_CMDLINE):
        return f"spec.cmdline: expected text up to {MAX_CMDLINE} characters"
    return _network_problem(spec)


def port_ok(text: Any) -> bool:
    """"80/tcp", "53/udp": a port the instance serves (DNS gives it an SRV record)."""
    found = PORT.match(text) if isinstance(text, str) else None
    return found is not None and int(found.group(1)) <= 65535


def _network_problem(spec: dict[str, Any]) -> str | None:
    """The VM-network and re-placement fields: egress (NAT through the host), ports (EXPOSE),
    replicate (what a lost host means for it: restart elsewhere, or stay failed)."""
    if "egress" in spec and not isinstance(spec["egress"], bool):
        return "spec.egress: expected true or false"
    if "ports" in spec:
        ports = spec["ports"]
        if not (isinstance(ports, list) and len(ports) <= MAX_PORTS
                and all(port_ok(p) for p in ports)):
            return f"spec.ports: expected up to {MAX_PORTS} ports like 80/tcp or 53/udp"
    if "replicate" in spec and spec["replicate"] not in REPLICATE:
        return "spec.replicate: expected restart or never"
    return None


_OBSERVED_TYPES: dict[str, tuple[Any, str]] = {
    "reason": (lambda v: isinstance(v, str) and len(v) <= MAX_REASON,
               f"text up to {MAX_REASON} characters"),
    "since_ms": (is_uint, "Unix milliseconds"),
    "boot": (is_uint, "a boot counter (integer >= 0)"),
    "vcpus": (is_uint, "an integer >= 0"),
    "memory_mb": (is_uint, "MiB, an integer >= 0"),
    "backend": (lambda v: isinstance(v, str) and 0 < len(v) <= 64, "a VMM name"),
}


def _is_ip(v: Any) -> bool:
    try:
        ipaddress.ip_address(v)
    except (ValueError, TypeError):
        return False
    return True


def observed_problem(observed: Any, encoded_size: int) -> str | None:
    """What is wrong with an instance.status `observed` map, or None. `encoded_size` is its
    canonical CBOR size: the bound keeps a node from filling every replica's log with one
    status. `address` (the instance's IP, which DNS answers with) is allowed too."""
    if not isinstance(observed, dict):
        return "observed: expected a map"
    if encoded_size > MAX_OBSERVED_BYTES:
        return f"observed: expected at most {MAX_OBSERVED_BYTES} bytes encoded, got {encoded_size}"
    allowed = set(_OBSERVED_TYPES) | {"state", "serial_tail", "address"}
    extra = sorted(str(k) for k in set(observed) - allowed)
    if extra:
        return f"observed.{extra[0]}: not a field of an observed status"
    state = observed.get("state")
    if state not in OBSERVED_STATES:
        return f"observed.state: expected one of {', '.join(OBSERVED_STATES)}"
    for name, (ok, expected) in _OBSERVED_TYPES.items():
        if name in observed and not ok(observed[name]):
            return f"observed.{name}: expected {expected}"
    if "address" in observed and not _is_ip(observed["address"]):
        return "observed.address: expected an IP address"
    if "serial_tail" in observed:
        tail = observed["serial_tail"]
        if state != "failed":
            return "observed.serial_tail: only with state failed"
        if not (isinstance(tail, list) and len(tail) <= MAX_TAIL_LINES and all(
                isinstance(line, str) and len(line) <= MAX_TAIL_LINE for line in tail)):
            return (f"observed.serial_tail: expected at most {MAX_TAIL_LINES} lines of at most "
                    f"{MAX_TAIL_LINE} characters")
    return None
