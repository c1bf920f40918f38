"""One lab for a test: brought up, handed over, taken down, and the test fails if anything of it
(namespaces, links, processes, mounts) is left behind."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from formation.lab import Lab
from formation.lab.lab import leftovers


def assert_nothing_left(lab_id: str) -> None:
    left = leftovers(lab_id)
    assert left == {k: [] for k in left}, f"lab {lab_id} left behind: {left}"


@contextmanager
def running_lab(hosts: int, **options: Any) -> Iterator[Lab]:
    instance = Lab(hosts, **options)
    instance.up()
    try:
        yield instance
    finally:
        instance.down()
        assert_nothing_left(instance.lab_id)
