"""The persistent maps and sets the authority folds share between contexts (layered.py): every
version keeps answering as the dict it was when made, whatever versions are made from it."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from formation.node.state.layered import GONE, Layered, LayeredSet

change = st.tuples(st.integers(0, 40), st.integers(0, 12), st.integers(-1, 5))


@given(st.lists(st.lists(change, max_size=6), max_size=60))
@settings(max_examples=60, deadline=None)
def test_every_version_reads_as_the_dict_it_was(batches) -> None:
    versions = [(Layered[int, int](), {})]
    for batch in batches:
        for base, key, value in batch:
            layered, plain = versions[base % len(versions)]  # branch from any version
            changes = {key: GONE if value < 0 else value}
            new_plain = {**plain, key: value}
            if value < 0:
                del new_plain[key]
            versions.append((layered.updated(changes), new_plain))
    for layered, plain in versions:
        assert dict(layered) == plain and len(layered) == len(plain)
        for key in range(14):
            assert (key in layered) == (key in plain)
            assert layered.get(key) == plain.get(key)
        assert len(layered._levels) <= 2 + len(versions).bit_length() * 2


def test_a_set_grows_in_logarithmic_levels_and_old_versions_stay() -> None:
    sets = [LayeredSet[int]()]
    for n in range(1000):
        sets.append(sets[-1].plus(n))
    assert len(sets[-1]) == 1000 and 999 in sets[-1] and 999 not in sets[999]
    assert set(sets[500]) == set(range(500)) and sets[500] == frozenset(range(500))
    assert len(sets[-1]._map._levels) <= 11
