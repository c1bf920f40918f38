"""The create form: its own checks name the field and what was expected; a refusal from the
node lands on the field its body names (or, without one, the field its status means)."""

from __future__ import annotations

from formation.api.client import ApiError, NodeUnreachable
from formation.api.models import ErrorBody, FieldError
from formation.api.vm_models import VmCreate
from formation.tui.instance_form import GENERAL, FormValues, build_request, field_of, refusal_errors

DIGEST = "ab" * 32


def test_good_values_make_the_request() -> None:
    made = build_request(FormValues(DIGEST, " web-1 ", "2", "1024", "20"))
    assert made == VmCreate(image=DIGEST, name="web-1", vcpus=2, memory_mb=1024, disk_gb=20)
    assert isinstance(build_request(FormValues(DIGEST)), VmCreate)  # the defaults are valid
    default = build_request(FormValues(DIGEST))
    assert isinstance(default, VmCreate) and default.name is None


def test_each_bad_field_is_named_with_what_was_expected() -> None:
    errors = build_request(FormValues(None, "Web_1", "0", "", "70000"))
    assert isinstance(errors, dict)
    assert set(errors) == {"image", "name", "vcpus", "memory_mb", "disk_gb"}
    assert errors["vcpus"] == "expected a whole number of vCPUs from 1 to 128, got 0"
    assert errors["memory_mb"] == "expected a whole number of MiB from 512 to 262144"
    assert "from 5 to 65535, got 70000" in errors["disk_gb"]
    assert "import one first" in errors["image"]
    assert errors["name"].startswith("expected lowercase letters")


def test_refusal_fields_land_on_the_form_fields() -> None:
    assert field_of("body.memory_mb") == "memory_mb"
    assert field_of("spec.vcpus") == "vcpus"
    assert field_of("disk") == "disk_gb"
    assert field_of("confidential") == GENERAL
    body = ErrorBody(error="invalid_request", message="invalid body: vcpus: too many",
                     fields=[FieldError(field="vcpus", message="too many")])
    assert refusal_errors(ApiError(400, body)) == {"vcpus": "too many"}


def test_a_refusal_without_fields_goes_by_its_status() -> None:
    def refused(status: int, message: str) -> dict[str, str]:
        return refusal_errors(ApiError(status, ErrorBody(error="x", message=message)))

    assert refused(409, "name web-1 is taken") == {"name": "name web-1 is taken"}
    assert refused(404, "no such image: zz") == {"image": "no such image: zz"}
    assert refused(422, "no node can hold 64 vCPUs") == {GENERAL: "no node can hold 64 vCPUs"}
    assert refusal_errors(NodeUnreachable("gone")) == {GENERAL: "gone"}


def test_a_refusal_naming_its_field_first_lands_there() -> None:
    def refused(status: int, message: str) -> dict[str, str]:
        return refusal_errors(ApiError(status, ErrorBody(error="x", message=message)))

    assert refused(409, "name: web-1 is taken by another instance") == \
        {"name": "web-1 is taken by another instance"}
    assert refused(422, "memory_mb: no node offers 9000 MiB (the most: 4096)") == \
        {"memory_mb": "no node offers 9000 MiB (the most: 4096)"}
    assert refused(422, "size: no live node offers this much") == \
        {GENERAL: "size: no live node offers this much"}


def test_the_request_named_at_the_end_of_a_refusal_is_left_out() -> None:
    body = ErrorBody(error="unprocessable_entity",
                     message="memory_mb: no live node offers 9000 MiB (the most: 4096): "
                     "POST /v1/vms")
    assert refusal_errors(ApiError(422, body)) == \
        {"memory_mb": "no live node offers 9000 MiB (the most: 4096)"}
