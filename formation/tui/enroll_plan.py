"""The enrollment screen's node fields (hostname, underlay, resources offered, admin SSH keys)
turned into the settings update to save, or into every fault in words naming its field; and the
plan in one line, so the operator reads what will happen before it does. Validated here with
the node's own rules (the settings models, the SSH key check), so nothing is written while any
field is wrong; the node checks again when it saves."""

from __future__ import annotations

import re
from dataclasses import dataclass

from pydantic import ValidationError

from formation.api.console_models import (
    EditableSettings,
    ResourceChoice,
    SettingsUpdate,
    UnderlayChoice,
)
from formation.api.models import Resources
from formation.config.settings import HOSTNAME_PATTERN, ResourceOffer, Underlay, field_named_in
from formation.enroll.ssh_keys import check_ssh_public_key

RESOURCE_NAMES = {"cpus": "CPUs", "memory_mb": "memory MiB", "disk_gb": "disk GB"}


@dataclass(frozen=True)
class NodeFields:
    """What the operator typed, as text (a Select's blank is None)."""

    hostname: str
    interface: str | None
    mode: str
    address: str
    gateway: str
    dns: str
    cpus: str
    memory_mb: str
    disk_gb: str
    keys: str


@dataclass(frozen=True)
class NodePlan:
    update: SettingsUpdate  # only what differs from the saved settings
    underlay: UnderlayChoice
    offer: ResourceChoice
    keys: list[str]
    hostname: str


def host_totals(host: Resources) -> dict[str, int]:
    return {"cpus": host.cpus, "memory_mb": host.memory_total_mb,
            "disk_gb": int(host.disk_total_gb)}


def _words(text: str) -> list[str]:
    return [w for w in re.split(r"[\s,]+", text.strip()) if w]


def _underlay(fields: NodeFields, errors: list[str]) -> UnderlayChoice:
    static = fields.mode == "static"
    data = {"interface": fields.interface or None, "mode": fields.mode,
            "address": (fields.address.strip() or None) if static else None,
            "gateway": (fields.gateway.strip() or None) if static else None,
            "dns": _words(fields.dns)}
    try:
        Underlay.model_validate(data)
    except ValidationError as exc:
        for err in exc.errors():
            loc, message = field_named_in(tuple(err["loc"]), err["type"],
                                          err["msg"].removeprefix("Value error, "))
            name = ".".join(str(p) for p in loc) or "underlay"
            errors.append(f"underlay {name}: {message}")
    return UnderlayChoice.model_validate(data)


def _offer(fields: NodeFields, host: Resources | None, errors: list[str]) -> ResourceChoice:
    values: dict[str, int | None] = {}
    for key in RESOURCE_NAMES:
        text = getattr(fields, key).strip()
        if not text:
            values[key] = None
        elif not text.isdigit():
            errors.append(f"resources {RESOURCE_NAMES[key]}: expected a whole number, or "
                          f"nothing for all the host has (got {text[:12]!r})")
        else:
            values[key] = int(text)
    try:
        ResourceOffer.model_validate({k: v for k, v in values.items() if v is not None})
    except ValidationError as exc:
        for err in exc.errors():
            errors.append(f"resources {RESOURCE_NAMES[str(err['loc'][0])]}: {err['msg']}")
        return ResourceChoice()
    if host is not None:
        totals = host_totals(host)
        for key, value in values.items():
            if value is not None and value > totals[key]:
                errors.append(f"resources {RESOURCE_NAMES[key]}: {value} is more than this "
                              f"host has ({totals[key]})")
    return ResourceChoice.model_validate({k: v for k, v in values.items() if k in RESOURCE_NAMES})


def _keys(text: str, errors: list[str]) -> list[str]:
    keys = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            keys.append(check_ssh_public_key(line))
        except ValueError as exc:
            errors.append(f"admin SSH keys line {number}: {exc}")
    return keys


def node_plan(fields: NodeFields, saved: EditableSettings | None,
              host: Resources | None) -> NodePlan | list[str]:
    """The plan, or every fault (each naming its field)."""
    errors: list[str] = []
    hostname = fields.hostname.strip()
    if not re.match(HOSTNAME_PATTERN, hostname):
        errors.append(f"hostname: expected lowercase letters, digits and '-' (not at either "
                      f"end), at most 63, got {hostname[:30]!r}")
    underlay = _underlay(fields, errors)
    offer = _offer(fields, host, errors)
    keys = _keys(fields.keys, errors)
    if errors:
        return errors
    changed: dict = {}
    if saved is not None:
        if hostname != saved.name:
            changed["name"] = hostname
        if keys != saved.admin_ssh_keys:
            changed["admin_ssh_keys"] = keys
        if underlay != saved.underlay:
            changed["underlay"] = underlay
        if offer != saved.resources:
            changed["resources"] = offer
    return NodePlan(SettingsUpdate(**changed), underlay, offer, keys, hostname)


def underlay_text(underlay: UnderlayChoice) -> str:
    if underlay.interface is None:
        return "image default (DHCP)"
    if underlay.mode == "dhcp":
        how = "DHCP"
    else:
        how = f"static {underlay.address}" + (f" via {underlay.gateway}"
                                              if underlay.gateway else "")
    dns = f", DNS {' '.join(underlay.dns)}" if underlay.dns else ""
    return f"{underlay.interface} ({how}{dns})"


def offer_text(offer: ResourceChoice, host: Resources | None) -> str:
    totals = host_totals(host) if host is not None else {}
    parts = []
    for key, unit in (("cpus", " CPUs"), ("memory_mb", " MiB"), ("disk_gb", " GB")):
        value = getattr(offer, key)
        if value is None:
            parts.append(f"all {totals[key]}{unit}" if key in totals else f"all{unit}")
        else:
            parts.append(f"{value}{unit}")
    return ", ".join(parts)


def plan_text(plan: NodePlan, saved: EditableSettings | None, host: Resources | None) -> str:
    keys = len(plan.keys)
    text = (f"node '{plan.hostname}' on {underlay_text(plan.underlay)} offering "
            f"{offer_text(plan.offer, host)}; {keys} admin key{'s' if keys != 1 else ''}")
    if saved is None:
        return text + " (not saved: the node has no config file)"
    if "name" in plan.update.model_fields_set and saved.running.get("name") != plan.hostname:
        text += " (new hostname from the next node start)"
    return text
