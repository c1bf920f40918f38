"""Grants cover an account's images: "deploy images under prefix ci-" is a grant of image.add,
image.remove (and instance.create) with prefix ci-. A use is judged as the granting account's
own image op (tenant_images.py): the image is the account's, a node's image cannot be removed
through it, and a revocation voids the uses it did not see. Real replicas, real keys."""

from __future__ import annotations

from pathlib import Path

import pytest
from statekit import craft, found, ids, image_payload, replica, sync, views, write

from formation.identity import NodeIdentity
from formation.node.state.op import Op, decode

ADMIN, NODE = (NodeIdentity.from_seed(bytes([i]) * 32) for i in (1, 2))
ALICE, BOB, CI = (NodeIdentity.from_seed(bytes([i]) * 32) for i in (10, 12, 31))
HOUR = 3_600_000


@pytest.fixture
def r(short_tmp: Path):
    r = found(short_tmp, ADMIN, [NODE], "a")
    for name, key in (("alice", ALICE), ("bob", BOB)):
        write(r, ADMIN, "account.set", {"name": name, "keys": [key.public_key_hex],
                                        "roles": ["user"]})
    return r


def accepted(r, who: NodeIdentity, kind: str, payload: dict, **kw) -> Op:
    raw = craft(who, r, kind, payload, **kw)
    v = r.ingest([raw]).verdicts[0]
    assert v.status == "accepted", v
    return decode(raw)


def refused(r, who: NodeIdentity, kind: str, payload: dict) -> tuple[str, str]:
    """Refused with one line, and nothing written (log and images view alike)."""
    before, images = ids(r), views(r)["images"]
    v = r.ingest([craft(who, r, kind, payload)]).verdicts[0]
    assert v.status == "refused" and "\n" not in v.message, v
    assert ids(r) == before and views(r)["images"] == images
    return v.reason, v.message


def ci_grant(r, account: str = "alice", by: NodeIdentity = ALICE) -> Op:
    return accepted(r, by, "grant.set", {
        "account": account, "grantee": CI.public_key_hex, "prefix": "ci-",
        "actions": ["image.add", "image.remove", "instance.create"],
        "until_ms": r.clock.last[0] + HOUR})


def use(g: Op, account: str = "alice", **payload) -> dict:
    return {"grant": g.id.hex(), "account": account, **payload}


def test_a_grantee_adds_and_removes_the_account_s_images_under_its_prefix(r) -> None:
    g = ci_grant(r)
    add = accepted(r, CI, "image.add", use(g, **image_payload("ci-web")))
    [element] = [i for i in views(r)["images"] if i["id"] == add.id.hex()]
    assert element["account"] == "alice" and element["name"] == "ci-web"
    reason, message = refused(r, CI, "image.add", use(g, **image_payload("web")))
    assert reason == "unauthorized" and "does not allow image.add on 'web'" in message
    accepted(r, CI, "image.remove", use(g, image=add.id.hex()))
    assert views(r)["images"] == []


def test_an_image_grant_never_exceeds_its_granter(r) -> None:
    g = ci_grant(r)
    nodes = accepted(r, NODE, "image.add", image_payload("ci-base"))  # a node's image
    reason, message = refused(r, CI, "image.remove", use(g, image=nodes.id.hex()))
    assert reason == "unauthorized" and message.startswith("image.remove: only the node")
    bobs = accepted(r, BOB, "image.add", {**image_payload("ci-b"), "account": "bob"})
    assert refused(r, CI, "image.remove", use(g, image=bobs.id.hex()))[0] == "unauthorized"
    # the use names the granting account; another account's name is refused
    assert refused(r, CI, "image.add", use(g, "bob", **image_payload("ci-x")))[0] == "invalid"
    # bob's grant to the same key gives nothing over alice's images
    by_bob = ci_grant(r, "bob", BOB)
    alices = accepted(r, CI, "image.add", use(g, **image_payload("ci-a")))
    assert refused(r, CI, "image.remove", use(by_bob, "bob", image=alices.id.hex()))[0] \
        == "unauthorized"


def test_a_member_node_cannot_use_a_grant_for_an_image(r) -> None:
    g = ci_grant(r)
    reason, message = refused(r, NODE, "image.add", use(g, **image_payload("ci-web")))
    assert reason == "invalid" and message.endswith("not a field of this kind"), message
    # nor sign a use in the grantee's place: the grant names CI, not the node
    assert refused(r, BOB, "image.add", use(g, **image_payload("ci-web")))[0] == "unauthorized"


def test_an_image_add_the_revocation_did_not_see_is_void(r, short_tmp: Path) -> None:
    g = ci_grant(r)
    other = replica(short_tmp, "b")
    sync(other, r)
    late = accepted(other, CI, "image.add", use(g, **image_payload("ci-late")))
    assert [i["name"] for i in views(other)["images"]] == ["ci-late"]
    accepted(r, ALICE, "grant.revoke", {"grant": g.id.hex()})
    sync(other, r)
    sync(r, other)
    assert late.id in ids(r)
    for rep in (r, other):
        assert views(rep)["images"] == []
        assert rep.rebuild()["equal"] is True


def test_an_image_remove_the_revocation_did_not_see_is_undone(r, short_tmp: Path) -> None:
    """Undoing a removal takes the full rebuild (grant_unapply.py): the image is back."""
    g = ci_grant(r)
    add = accepted(r, ALICE, "image.add", {**image_payload("ci-keep"), "account": "alice"})
    other = replica(short_tmp, "b")
    sync(other, r)
    accepted(other, CI, "image.remove", use(g, image=add.id.hex()))
    assert views(other)["images"] == []
    accepted(r, ALICE, "grant.revoke", {"grant": g.id.hex()})
    sync(other, r)
    sync(r, other)
    for rep in (r, other):
        assert [i["name"] for i in views(rep)["images"]] == ["ci-keep"]
        assert rep.rebuild()["equal"] is True
