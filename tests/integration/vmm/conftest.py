"""Shared by every VM test: one guest kit (Debian cloud kernel + busybox initramfs + ext4 disk)
per session, built once per machine (bench/support/guest_kit.py caches it under a file lock)."""

from __future__ import annotations

import pytest
from guest_kit_skip import guest_kit_or_skip

from bench.support.guest_kit import GuestKit


@pytest.fixture(scope="session")
def guest_kit() -> GuestKit:
    return guest_kit_or_skip()
