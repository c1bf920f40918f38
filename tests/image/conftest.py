"""The image tests share one build per cache (scripts/build-image.sh skips an up-to-date one).
Where the build tools cannot be had, every test here is skipped with the reason."""

from __future__ import annotations

import pytest

from bench.support.guest import BuiltImage, ImageUnavailable, build_image


@pytest.fixture(scope="session")
def built_image() -> BuiltImage:
    try:
        return build_image()
    except ImageUnavailable as exc:
        pytest.skip(f"appliance image cannot be built here: {exc}")

