"""The image tests share one build per cache (scripts/build-image.sh skips an up-to-date one).
Where the build tools cannot be had, every test here is skipped with the reason."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from guest import BuiltImage, ImageUnavailable, build_image


@pytest.fixture(scope="session")
def built_image() -> BuiltImage:
    try:
        return build_image()
    except ImageUnavailable as exc:
        pytest.skip(f"appliance image cannot be built here: {exc}")


@pytest.fixture
def guest_dir() -> Iterator[Path]:
    """Short path: QEMU's monitor is a unix socket (108-byte limit)."""
    path = Path(tempfile.mkdtemp(prefix="fm-guest-", dir="/tmp"))
    yield path
    shutil.rmtree(path, ignore_errors=True)
