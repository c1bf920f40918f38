"""The create-instance form's values turned into a VmCreate, or into one line per field that
says what was expected; and a refusal from the node put back on the field it names, so the
operator sees the error beside what to change. Pure: tested without a terminal."""

from __future__ import annotations

import re
from dataclasses import dataclass

from formation.api.vm_models import DISK_GB, MEMORY_MB, NAME, VCPUS, VmCreate
from formation.errors import FormationError

FIELDS = ("image", "formfile", "name", "vcpus", "memory_mb", "disk_gb")
GENERAL = "form"  # an error that names no field of the form
# The node may name a field by its spec's name or its path in the body ("body.vcpus").
ALIASES = {"memory": "memory_mb", "disk": "disk_gb", "cpus": "vcpus", "size": GENERAL,
           "context": "formfile", "context_tar": "formfile"}
# Without a field in the answer: what the status means for this form (vm_routes.vm_create).
BY_STATUS = {404: "image", 409: "name"}
# The node names the request at the end of a refusal ("…: POST /v1/vms"): beside a field of the
# form, that is noise.
ROUTE_SUFFIX = re.compile(r": (GET|POST|PUT|PATCH|DELETE) /\S*$")


@dataclass
class FormValues:
    image: str | None  # an image's digest, None when none is chosen
    name: str = ""
    vcpus: str = "1"
    memory_mb: str = "512"
    disk_gb: str = "5"
    formfile: str = ""  # a Formfile path on the node: built, then used instead of `image`


def _whole(text: str, limits: tuple[int, int], unit: str, errors: dict[str, str],
           field: str) -> int:
    low, high = limits
    expected = f"a whole number of {unit} from {low} to {high}"
    if not text.strip().isdigit():
        errors[field] = f"expected {expected}"
        return low
    value = int(text.strip())
    if not low <= value <= high:
        errors[field] = f"expected {expected}, got {value}"
    return value


def build_request(values: FormValues) -> VmCreate | dict[str, str]:
    """The request, or field -> what is wrong with it (checked here first, so the common
    mistakes need no round trip; the node checks everything again)."""
    errors: dict[str, str] = {}
    if not values.image:
        errors["image"] = ("choose an image (import one first: formation image import), or "
                           "give a Formfile path")
    name = values.name.strip()
    if name and not re.match(NAME, name):
        errors["name"] = ("expected lowercase letters, digits and -, starting with a letter "
                          "(at most 63)")
    vcpus = _whole(values.vcpus, VCPUS, "vCPUs", errors, "vcpus")
    memory = _whole(values.memory_mb, MEMORY_MB, "MiB", errors, "memory_mb")
    disk = _whole(values.disk_gb, DISK_GB, "GB", errors, "disk_gb")
    if errors:
        return errors
    assert values.image is not None
    return VmCreate(image=values.image, name=name or None, vcpus=vcpus, memory_mb=memory,
                    disk_gb=disk)


def field_of(name: str) -> str:
    """The form's field for a field name in a refusal ("body.memory_mb", "spec.vcpus")."""
    last = name.rsplit(".", 1)[-1]
    last = ALIASES.get(last, last)
    return last if last in FIELDS else GENERAL


def refusal_errors(exc: FormationError) -> dict[str, str]:
    """A refusal from the node as field -> its one line: the fields its body names, else the
    field its message starts with ("name: … is taken"), else the field its status means (404:
    the image, 409: the name), else the whole form."""
    body = getattr(exc, "body", None)
    if body is None:
        return {GENERAL: str(exc)}
    errors: dict[str, str] = {}
    for item in body.fields:
        errors.setdefault(field_of(item.field), item.message)
    message = ROUTE_SUFFIX.sub("", body.message)
    prefix, colon, rest = message.partition(": ")
    if not errors and colon and field_of(prefix) != GENERAL:  # "name: web-1 is taken"
        errors[field_of(prefix)] = rest
    if not errors:
        status = getattr(exc, "status", None)
        errors[BY_STATUS.get(status, GENERAL) if isinstance(status, int) else GENERAL] = \
            message
    return errors
