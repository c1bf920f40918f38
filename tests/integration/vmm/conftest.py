"""Shared by every VM test: one guest kit (Debian cloud kernel + busybox initramfs + ext4 disk)
per session, built once per machine (bench/support/guest_kit.py caches it under a file lock)."""

from __future__ import annotations

import shutil

import pytest

from bench.support.guest_kit import GuestKit, Unavailable, build_guest_kit


@pytest.fixture(scope="session")
def guest_kit() -> GuestKit:
    if shutil.which("qemu-system-x86_64") is None:
        pytest.skip("qemu-system-x86_64 is not installed (scripts/system-packages.sh)")
    try:
        return build_guest_kit()
    except Unavailable as exc:
        pytest.skip(f"no test guest: {exc}")
