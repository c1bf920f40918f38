"""Cloud Hypervisor's error answers, as the v53.0 binary writes them, become one line naming
the endpoint, the status, the binary's reason and what to do about it."""

from __future__ import annotations

from formation.node.vmm.ch_errors import describe, error_chain


def test_error_chain_shapes() -> None:
    assert error_chain(b'["Error from API", "The VM could not boot", "VM config is missing"]'
                       ) == ["The VM could not boot", "VM config is missing"]
    # micro_http's own refusal: a raw newline inside the string (not valid JSON)
    raw = (b'{ "error": "Request payload with size 51201 is larger than the limit of 51200 '
           b'allowed by server.\nAll previous unanswered requests will be dropped." }')
    assert error_chain(raw) == ["Request payload with size 51201 is larger than the limit "
                                "of 51200 allowed by server."]
    assert error_chain(b"") is None and error_chain(b"<html>") is None
    assert error_chain(b"[1, 2]") is None and error_chain(b'["Error from API"]') is None


def test_messages_say_what_to_do() -> None:
    assert describe("vm.boot", 404, b'["Error from API", "The VM could not boot", '
                                    b'"VM config is missing"]') == (
        "cloud-hypervisor vm.boot failed (HTTP 404): The VM could not boot: VM config is "
        "missing (the VM was not created in this VMM (create it first))")
    message = describe("vm.resize", 500, b'["Error from API", "The VM could not be resized", '
                                         b'"Error from CPU manager", '
                                         b'"Requested vCPUs exceed maximum"]')
    assert message.endswith("(more vCPUs than the VM's max_vcpus: restart it with a higher "
                            "ceiling)")
    assert "try again" in describe("vm.resize", 429, b'["Too Many Requests"]')
    assert describe("vm.pause", 400, b"") == (
        "cloud-hypervisor vm.pause failed (HTTP 400): the request was malformed (a wrong "
        "method, or a body this endpoint does not take)")


def test_hostile_error_text_is_one_bounded_line() -> None:
    raw = b'["' + b"\\u001b[2J\\n" * 5000 + b'"]'
    message = describe("vm.info", 500, raw)
    assert "\n" not in message and "\x1b" not in message and len(message) < 400
    assert "larger than" in describe("vm.info", 500, b"x" * 10, truncated=True)
    assert describe("vm.info", 502, b"\x00\xff" * 1000).isprintable()
