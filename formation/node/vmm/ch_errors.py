"""Cloud Hypervisor's error answers turned into one line a user can act on.

The binary answers an API error with a JSON array of strings, its error chain
(`["Error from API", "The VM could not boot", "VM config is missing"]`); its HTTP layer
refuses some requests before the API sees them with `{"error": "..."}` (whose string may hold
a raw newline, which is not valid JSON); a wrong method may get an empty 400. Whatever came
from the socket, the message is one printable line of bounded length: a hostile or broken VMM
must not be able to put a screenful (or a terminal escape) in front of the user."""

from __future__ import annotations

import json

MAX_MESSAGE = 300  # characters of the VMM's own words kept in a message

# The innermost cause -> what the user can do about it.
HINTS = {
    "VM config is missing": "the VM was not created in this VMM (create it first)",
    "VM is not created": "the VM was not created in this VMM (create it first)",
    "VM is not running": "the VM is not running (boot it first)",
    "VM is already created": "the VM exists already (delete it first)",
    "Requested vCPUs exceed maximum": "more vCPUs than the VM's max_vcpus: restart it with "
                                      "a higher ceiling",
    "The requested hotplug memory addition is not a valid size": "memory can only be added "
                                                                 "in steps of 128 MiB",
}

STATUS_HINTS = {
    400: "the request was malformed",
    404: "the VM does not exist in this VMM",
    429: "a vCPU removal is still pending; try again shortly",
    500: "the VMM could not do it in the VM's current state",
}


def one_line(text: str, limit: int = MAX_MESSAGE) -> str:
    """Printable characters only, whitespace runs collapsed, at most `limit` characters."""
    cleaned = "".join(ch if ch.isprintable() else " " for ch in text)
    cleaned = " ".join(cleaned.split())
    return cleaned if len(cleaned) <= limit else cleaned[:limit - 1] + "…"


def error_chain(raw: bytes) -> list[str] | None:
    """The causes the body names, outermost first; None when it is no shape CH uses."""
    try:
        value = json.loads(raw.decode("utf-8", "replace"), strict=False)
    except ValueError:
        return None
    if isinstance(value, list) and all(isinstance(item, str) for item in value):
        chain = [item for item in value if item and item != "Error from API"]
        return chain or None
    if isinstance(value, dict) and isinstance(value.get("error"), str):
        # micro_http appends this to every refusal; it says nothing to a user.
        text = value["error"].split("All previous unanswered requests")[0].strip()
        return [text]
    return None


def describe(endpoint: str, status: int, raw: bytes, truncated: bool = False) -> str:
    """The one-line message for an error answer of `endpoint` (vm.boot, ...)."""
    head = f"cloud-hypervisor {endpoint} failed (HTTP {status})"
    if truncated:
        return f"{head}: its answer was larger than {len(raw)} bytes (the rest was left unread)"
    chain = error_chain(raw) if raw.strip() else None
    if chain is None:
        if not raw.strip():
            reason = STATUS_HINTS.get(status, "no reason given")
            if status == 400:
                reason += " (a wrong method, or a body this endpoint does not take)"
            return f"{head}: {reason}"
        return f"{head}: {one_line(raw.decode('utf-8', 'replace'), 120)}"
    words = one_line(": ".join(one_line(item, 160) for item in chain))
    hint = HINTS.get(chain[-1].strip())
    if hint is None and chain[-1].startswith("Invalid transition"):
        hint = "the VM is not in a state that allows this"
    if hint is None and status == 429:
        hint = STATUS_HINTS[429]
    return f"{head}: {words}" + (f" ({hint})" if hint else "")
