"""Images owned by accounts (issue 18 item 3): an account's key adds images in its own name and
removes only its own; a member node cannot write an image in a tenant's name; another account
cannot remove it. Each refusal is one line and writes nothing. Real replicas on real SQLite,
real Ed25519 keys; the boot and listing policy of the relaying node as pure functions."""

from __future__ import annotations

from pathlib import Path

import pytest
from statekit import craft, found, ids, image_payload, replica, sync, views, write

from formation.identity import NodeIdentity
from formation.node.state import tenant_images
from formation.node.state.accounts import Account
from formation.node.state.op import Op, decode
from formation.node.state.replica import Replica

ADMIN, NODE = (NodeIdentity.from_seed(bytes([i]) * 32) for i in (1, 2))
ALICE, ALICE2, BOB, BOSS = (NodeIdentity.from_seed(bytes([i]) * 32) for i in (10, 11, 12, 14))


@pytest.fixture
def r(short_tmp: Path) -> Replica:
    r = found(short_tmp, ADMIN, [NODE])
    for name, keys, roles in (("alice", [ALICE, ALICE2], ["user"]), ("bob", [BOB], ["user"]),
                              ("boss", [BOSS], ["admin"])):
        write(r, ADMIN, "account.set", {"name": name, "keys": [k.public_key_hex for k in keys],
                                        "roles": roles})
    return r


def accepted(r: Replica, who: NodeIdentity, kind: str, payload: dict) -> Op:
    raw = craft(who, r, kind, payload)
    verdict = r.ingest([raw]).verdicts[0]
    assert verdict.status == "accepted", verdict
    return decode(raw)


def refused(r: Replica, who: NodeIdentity, kind: str, payload: dict) -> tuple[str, str]:
    """The op is refused with one line, and nothing is written (log and images view alike)."""
    before, images = ids(r), views(r)["images"]
    verdict = r.ingest([craft(who, r, kind, payload)]).verdicts[0]
    assert verdict.status == "refused", verdict
    assert "\n" not in verdict.message and len(verdict.message) < 200
    assert ids(r) == before and views(r)["images"] == images
    return verdict.reason, verdict.message


def owned(name: str, account: str) -> dict:
    return {**image_payload(name), "account": account}


def test_an_account_key_adds_its_own_image_and_the_view_names_the_account(r) -> None:
    add = accepted(r, ALICE, "image.add", owned("web", "alice"))
    [element] = [i for i in views(r)["images"] if i["id"] == add.id.hex()]
    assert element["account"] == "alice" and element["added_by"] == ALICE.public_key_hex
    node = accepted(r, NODE, "image.add", image_payload("base"))  # a node's, as before
    [plain] = [i for i in views(r)["images"] if i["id"] == node.id.hex()]
    assert "account" not in plain


def test_a_tenant_signing_image_add_for_another_account_is_refused(r) -> None:
    reason, message = refused(r, ALICE, "image.add", owned("web", "bob"))
    assert reason == "unauthorized" and message.startswith("payload.account"), message
    reason, message = refused(r, ALICE, "image.add", image_payload("web"))  # no account
    assert reason == "unauthorized" and message.startswith("payload.account"), message


def test_a_member_node_pushing_image_add_with_a_tenants_account_is_refused(r) -> None:
    reason, message = refused(r, NODE, "image.add", owned("web", "alice"))
    assert reason == "unauthorized" and message.startswith("payload.account"), message
    # nor may a network admin write in a tenant's name: only the tenant's key signs for it
    assert refused(r, ADMIN, "image.add", owned("web", "alice"))[0] == "unauthorized"


def test_an_account_image_records_no_builder(r) -> None:
    payload = {**owned("web", "alice"), "builder": ALICE.public_key_hex,
               "formfile": {"text": "FROM x"}}
    reason, message = refused(r, ALICE, "image.add", payload)
    assert reason == "unauthorized" and message.startswith("payload.builder"), message


def test_a_malformed_account_is_refused(r) -> None:
    reason, message = refused(r, NODE, "image.add", owned("web", "Not A Name"))
    assert reason == "invalid" and message.startswith("payload.account"), message


def test_another_account_cannot_remove_an_accounts_image(r) -> None:
    add = accepted(r, ALICE, "image.add", owned("web", "alice"))
    reason, message = refused(r, BOB, "image.remove", {"image": add.id.hex()})
    assert reason == "unauthorized" and "account 'alice'" in message, message
    # a member node (not an admin) cannot remove it either
    assert refused(r, NODE, "image.remove", {"image": add.id.hex()})[0] == "unauthorized"
    accepted(r, ALICE2, "image.remove", {"image": add.id.hex()})  # any key of the account
    assert views(r)["images"] == []


def test_an_account_cannot_remove_a_nodes_image_but_admins_remove_any(r) -> None:
    node = accepted(r, NODE, "image.add", image_payload("base"))
    reason, message = refused(r, ALICE, "image.remove", {"image": node.id.hex()})
    assert reason == "unauthorized" and message.startswith("image.remove"), message
    mine = accepted(r, ALICE, "image.add", owned("web", "alice"))
    accepted(r, BOSS, "image.remove", {"image": mine.id.hex()})  # an admin account's key
    accepted(r, ADMIN, "image.remove", {"image": node.id.hex()})  # a network admin
    assert views(r)["images"] == []


def test_a_removed_accounts_key_can_no_longer_add_or_remove(r) -> None:
    add = accepted(r, BOB, "image.add", owned("old", "bob"))
    write(r, ADMIN, "account.remove", {"name": "bob"})
    assert refused(r, BOB, "image.add", owned("web", "bob"))[0] == "unauthorized"
    assert refused(r, BOB, "image.remove", {"image": add.id.hex()})[0] == "unauthorized"


def test_every_replica_gives_the_same_verdicts(r, short_tmp: Path) -> None:
    other = replica(short_tmp, "b")
    sync(other, r)
    hostile = craft(NODE, r, "image.add", owned("evil", "alice"))
    honest = craft(ALICE, r, "image.add", owned("web", "alice"))
    for each in (r, other):
        verdicts = each.ingest([hostile, honest]).verdicts
        assert [v.status for v in verdicts] == ["refused", "accepted"], verdicts
    assert views(r)["images"] == views(other)["images"]


ALICE_ACCOUNT = Account(name="alice", keys=(ALICE.public_key_hex,), roles=frozenset({"user"}))
BOSS_ACCOUNT = Account(name="boss", keys=(BOSS.public_key_hex,), roles=frozenset({"admin"}))
VIEW = [{"key": "aa" * 32, "id": "1", "account": "alice"},
        {"key": "bb" * 32, "id": "2", "account": "bob"},
        {"key": "cc" * 32, "id": "3"},
        {"key": "dd" * 32, "id": "4", "account": "bob"}, {"key": "dd" * 32, "id": "5"}]


def test_an_account_lists_its_own_images_and_an_admin_all() -> None:
    assert [i["id"] for i in tenant_images.visible(VIEW, ALICE_ACCOUNT)] == ["1"]
    assert tenant_images.visible(VIEW, BOSS_ACCOUNT) == VIEW


def test_an_account_boots_its_own_and_node_images_not_another_accounts() -> None:
    def boots(digest: str) -> bool:
        return tenant_images.bootable(VIEW, ALICE_ACCOUNT, digest)
    assert boots("aa" * 32) and boots("cc" * 32)
    assert not boots("bb" * 32)
    assert boots("dd" * 32)  # bob's digest that a node also added: a node's image too
    assert boots("ee" * 32)  # unknown here: the placing node reports it missing
    assert tenant_images.bootable(VIEW, BOSS_ACCOUNT, "bb" * 32)


def test_a_tenant_image_may_not_take_a_name_another_digest_holds() -> None:
    view = [{"key": "aa" * 32, "name": "alpine"}]
    assert tenant_images.name_taken(view, {"name": "alpine", "digest": "bb" * 32}) == "alpine"
    assert tenant_images.name_taken(view, {"name": "alpine", "digest": "aa" * 32}) is None
    assert tenant_images.name_taken(view, {"name": "web", "digest": "bb" * 32}) is None
