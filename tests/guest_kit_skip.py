"""The test guest (bench/support/guest_kit.py) or a skip that says why it cannot be had here."""

from __future__ import annotations

import shutil

import pytest

from bench.support.guest_kit import GuestKit, Unavailable, build_guest_kit


def guest_kit_or_skip() -> GuestKit:
    if shutil.which("qemu-system-x86_64") is None:
        pytest.skip("qemu-system-x86_64 is not installed (scripts/system-packages.sh)")
    try:
        return build_guest_kit()
    except Unavailable as exc:
        pytest.skip(f"no test guest: {exc}")
