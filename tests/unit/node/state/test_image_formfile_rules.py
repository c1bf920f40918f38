"""image.add's optional `formfile` and `builder` (issue 17): an image built from a Formfile
records both; every replica refuses a member that claims another node built its image, a
malformed or oversized Formfile record, or one of the two without the other. Old image.add ops
without them stay valid."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from statekit import craft, found, image_payload, replica, sync, views, write

from formation.identity import NodeIdentity
from formation.node.state.image_formfile import (
    CHUNK_BYTES,
    MAX_SOURCE_BYTES,
    formfile_problem,
    record,
    source_chunks,
    source_text,
)

ADMIN, B, C = (NodeIdentity.from_seed(bytes([i]) * 32) for i in (1, 2, 3))
FORMFILE = "NAME web\nINSTALL curl\nENTRYPOINT [\"/bin/echo\", \"hi\"]\n"
DIGEST = "cd" * 32


def built(name: str, builder: NodeIdentity, formfile: dict | None = None) -> dict:
    return {**image_payload(name, size=3), "builder": builder.public_key_hex,
            "formfile": {**record("web", DIGEST, FORMFILE), **(formfile or {})}}


@pytest.fixture
def replicas(short_tmp: Path):
    """Two replicas of one network (ADMIN founded it, B and C members), in sync."""
    a = found(short_tmp, ADMIN, [B, C])
    b = replica(short_tmp, "b")
    sync(b, a)
    return a, b


def refused_everywhere(rs, raw: bytes) -> str:
    reasons = set()
    for r in rs:
        before = views(r)
        verdict = r.ingest([raw]).verdicts[0]
        assert verdict.status == "refused", verdict
        assert views(r) == before
        reasons.add(verdict.reason)
    assert len(reasons) == 1, reasons  # the same verdict on every replica
    return reasons.pop()


def test_a_build_record_is_accepted_and_old_ops_stay_valid(replicas) -> None:
    a, b = replicas
    old = write(a, C, "image.add", image_payload("plain"))
    new = write(a, B, "image.add", built("web", B))
    sync(b, a)
    assert {e["name"] for e in b.view("images")} == {"plain", "web"}
    assert new.payload["builder"] == B.public_key_hex
    assert source_text(new.payload["formfile"]) == FORMFILE
    assert "formfile" not in old.payload


def test_a_member_forging_the_builder_is_refused_by_every_replica(replicas) -> None:
    a, b = replicas
    forged = craft(C, a, "image.add", built("web", B))  # C claims B built it
    assert refused_everywhere((a, b), forged) == "unauthorized"


@pytest.mark.parametrize(("formfile", "detail"), [
    ({"source": ["x" * CHUNK_BYTES] * 4 + ["y"]}, "at most 8192 bytes"),
    ({"digest": "CD" * 32}, "digest"),
    ({"digest": "cd" * 31}, "digest"),
    ({"name": ""}, "name"),
    ({"name": 7}, "name"),
    ({"source": "NAME web"}, "source"),  # a string, not the list of chunks
    ({"source": []}, "source"),
    ({"source": ["NAME web", 3]}, "source"),
    ({"extra": 1}, "exactly name, digest and source"),
])
def test_a_malformed_or_oversized_formfile_is_refused(replicas, formfile, detail) -> None:
    a, b = replicas
    raw = craft(B, a, "image.add", built("web", B, formfile))
    assert refused_everywhere((a, b), raw) == "invalid"
    assert detail in (formfile_problem({**record("web", DIGEST, FORMFILE), **formfile}) or "")


def test_a_formfile_without_builder_and_the_reverse_are_refused(replicas) -> None:
    a, b = replicas
    payload = built("web", B)
    no_builder = {k: v for k, v in payload.items() if k != "builder"}
    no_formfile = {k: v for k, v in payload.items() if k != "formfile"}
    assert refused_everywhere((a, b), craft(B, a, "image.add", no_builder)) == "invalid"
    assert refused_everywhere((a, b), craft(B, a, "image.add", no_formfile)) == "invalid"
    bad_key = {**payload, "builder": "not a key"}
    assert refused_everywhere((a, b), craft(B, a, "image.add", bad_key)) == "invalid"


def test_source_chunks_round_trip_and_respect_the_op_string_limit() -> None:
    text = "NAME é\n" + "RUN echo ü€😀\n" * 600
    chunks = source_chunks(text)
    assert "".join(chunks) == text
    assert all(len(c.encode()) <= CHUNK_BYTES for c in chunks)
    assert source_chunks("") == [""]
    with pytest.raises(ValueError, match=f"at most {MAX_SOURCE_BYTES}"):
        record("big", DIGEST, "x" * (MAX_SOURCE_BYTES + 1))


_leaf = st.one_of(st.none(), st.booleans(), st.integers(-5, 2**40), st.text(max_size=30),
                  st.binary(max_size=10), st.sampled_from(["cd" * 32, "web", ""]))
_value = st.recursive(_leaf, lambda kids: st.one_of(
    st.lists(kids, max_size=5), st.dictionaries(st.sampled_from(
        ["name", "digest", "source", "x"]), kids, max_size=4)), max_leaves=10)


@settings(max_examples=200, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(formfile=_value, builder=st.one_of(_value, st.just(B.public_key_hex)),
       keep=st.sampled_from(["both", "formfile", "builder"]))
def test_any_formfile_or_builder_value_gets_a_verdict(short_tmp: Path, formfile, builder,
                                                      keep) -> None:
    """A valid image.add with any value in the new fields: a verdict, never an exception, and
    only a well-formed record by its own builder is accepted."""
    r = found(short_tmp, ADMIN, [B], os.urandom(6).hex())
    try:
        payload = image_payload("web")
        if keep != "builder":
            payload["formfile"] = formfile
        if keep != "formfile":
            payload["builder"] = builder
        [verdict] = r.ingest([craft(B, r, "image.add", payload)]).verdicts
        good = (keep == "both" and builder == B.public_key_hex
                and formfile_problem(formfile) is None)
        assert verdict.status == ("accepted" if good else "refused"), verdict
    finally:
        r.close()
