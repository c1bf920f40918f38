"""Persistent maps and sets: an update returns a new version and leaves the old one intact.

Every authority context has its own fold (accounts by name and by key, the valid authority
ops), and consecutive contexts differ by one op. Copying whole dicts per context made writing N
accounts quadratic. Here a version is a stack of frozen dict levels, newest first; an update
pushes a small level and merges levels like a binary counter (a level is merged into the one
below it once it is as large), so an update costs O(log N) amortized, a lookup O(log N) dict
probes, and versions share all but their top levels."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Set
from typing import Generic, TypeVar, cast, overload

K = TypeVar("K")
V = TypeVar("V")
D = TypeVar("D")


class Gone:
    """A tombstone: the key was deleted in this level (levels below may still hold it)."""


GONE = Gone()


class Layered(Mapping[K, V], Generic[K, V]):
    """An immutable mapping; `updated` makes a new version."""

    __slots__ = ("_len", "_levels")

    def __init__(self, levels: tuple[dict[K, V | Gone], ...] = (), size: int = 0) -> None:
        self._levels = levels
        self._len = size

    @classmethod
    def of(cls, items: Mapping[K, V]) -> Layered[K, V]:
        return cls((dict(items),), len(items)) if items else cls()

    def _find(self, key: object) -> V | Gone:
        k = cast(K, key)  # a key of another type is in no level: dict lookups say so
        for level in self._levels:
            if k in level:
                return level[k]
        return GONE

    def __getitem__(self, key: K) -> V:
        found = self._find(key)
        if isinstance(found, Gone):
            raise KeyError(key)
        return found

    @overload
    def get(self, key: K, /) -> V | None: ...
    @overload
    def get(self, key: K, default: V | D, /) -> V | D: ...

    def get(self, key: K, default: object = None) -> object:
        found = self._find(key)
        return default if isinstance(found, Gone) else found

    def __contains__(self, key: object) -> bool:
        return not isinstance(self._find(key), Gone)

    def __len__(self) -> int:
        return self._len

    def __iter__(self) -> Iterator[K]:
        return iter(self._flat())

    def _flat(self) -> dict[K, V]:
        out: dict[K, V | Gone] = {}
        for level in reversed(self._levels):
            out.update(level)
        return {k: v for k, v in out.items() if not isinstance(v, Gone)}

    def updated(self, changes: Mapping[K, V | Gone]) -> Layered[K, V]:
        """A new version with `changes` applied (GONE deletes a key)."""
        if not changes:
            return self
        size = self._len
        for key, value in changes.items():
            size += (not isinstance(value, Gone)) - (key in self)
        levels = [dict(changes), *self._levels]
        while len(levels) > 1 and len(levels[0]) >= len(levels[1]):
            top, below = levels.pop(0), levels.pop(0)
            merged = {**below, **top}
            if not levels:  # the bottom level: nothing below for a tombstone to hide
                merged = {k: v for k, v in merged.items() if not isinstance(v, Gone)}
            levels.insert(0, merged)
        return Layered(tuple(levels), size)


class LayeredSet(Set[K], Generic[K]):
    """An immutable set over a Layered map; `plus` makes a new version."""

    __slots__ = ("_map",)

    def __init__(self, items: Layered[K, None] | None = None) -> None:
        self._map: Layered[K, None] = items if items is not None else Layered()

    @classmethod
    def of(cls, items: Iterable[K]) -> LayeredSet[K]:
        if isinstance(items, LayeredSet):
            return items
        return cls(Layered.of(dict.fromkeys(items)))

    def __contains__(self, item: object) -> bool:
        return item in self._map

    def __len__(self) -> int:
        return len(self._map)

    def __iter__(self) -> Iterator[K]:
        return iter(self._map)

    def plus(self, item: K) -> LayeredSet[K]:
        return LayeredSet(self._map.updated({item: None}))
