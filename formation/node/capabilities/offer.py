"""What this node offers to the network's instances: the `resources` setting checked against
the host's totals, and the figures published in the node's own record (a setting left unset
offers all the host has)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from formation.api.models import Resources
from formation.config.settings import ResourceOffer
from formation.node.capabilities.gpus import SYSFS, confidential_kinds, offered_gpus


def host_totals(host: Resources) -> dict[str, int]:
    return {"cpus": host.cpus, "memory_mb": host.memory_total_mb,
            "disk_gb": int(host.disk_total_gb)}


UNITS = {"cpus": "CPUs", "memory_mb": "MiB of memory", "disk_gb": "GB of disk"}


def offer_problems(offer: ResourceOffer, host: Resources) -> list[tuple[str, str]]:
    """(field, message) for each figure above what the host has."""
    totals = host_totals(host)
    return [(f"resources.{key}", f"{value} is more than this host has ({totals[key]} "
             f"{UNITS[key]})")
            for key, value in offer.model_dump(include=set(UNITS)).items()
            if value is not None and value > totals[key]]


def offered(offer: ResourceOffer, host: Resources) -> dict[str, int]:
    """The node record's `resources`: each figure as set (never above the host's total, should
    the file have been edited by hand), else the host's total."""
    totals = host_totals(host)
    return {key: min(value, totals[key]) if value is not None else totals[key]
            for key, value in offer.model_dump(include=set(UNITS)).items()}


def offered_with_devices(offer: ResourceOffer, host: Resources,
                         sysfs: Path = SYSFS) -> dict[str, Any]:
    """offered() plus the devices placement needs: `gpus` (PCI addresses, limited by the
    `resources.gpus` setting) and `confidential` (sev-snp, tdx). Each is left out when empty,
    so a record without them reads as before. Reads sysfs: blocking, call it in a thread."""
    out: dict[str, Any] = dict(offered(offer, host))
    gpus = offered_gpus(offer.gpus, sysfs)
    if gpus:
        out["gpus"] = gpus
    kinds = confidential_kinds(sysfs)
    if kinds:
        out["confidential"] = kinds
    return out
