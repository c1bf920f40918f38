"""ca.set: the network CA's root and its key sealed to edges and admins. Only a network admin
writes it (a member node, an account's key, a removed admin: refused with one line, nothing
written); recipients must be members; sizes are bounded; the later write wins. Real replicas on
real SQLite, a real P-256 root, real sealed boxes."""

from __future__ import annotations

from pathlib import Path

import pytest
from statekit import all_raws, craft, found, replica, views, write

from formation.identity import NodeIdentity
from formation.identity.sealing import SealError, open_sealed
from formation.node.edge import fog_ca
from formation.node.state import ca_rules

ADMIN, EDGE, OTHER, ALICE = (NodeIdentity.from_seed(bytes([i]) * 32) for i in (1, 2, 3, 10))
ROOT, KEY = fog_ca.make_root("lab")


@pytest.fixture
def base(short_tmp: Path) -> Path:
    return short_tmp


def payload(to: list[NodeIdentity], root: str = ROOT, key: str = KEY) -> dict:
    return {"root_pem": root, "keys": fog_ca.seal_keys(key, [n.public_key_hex for n in to])}


def refused(r, who: NodeIdentity, body: dict) -> tuple[str, str]:
    before = views(r)
    verdict = r.ingest([craft(who, r, "ca.set", body)]).verdicts[0]
    assert verdict.status == "refused", verdict
    assert views(r) == before  # nothing written
    assert "\n" not in verdict.message
    return verdict.reason, verdict.message


def test_an_admin_sets_the_ca_and_each_recipient_opens_its_own_key(base) -> None:
    r = found(base, ADMIN, [EDGE, OTHER])
    assert r.view("ca") == []
    write(r, ADMIN, "ca.set", payload([ADMIN, EDGE]))
    ca = ca_rules.current(r.view("ca"))
    assert ca is not None and ca["root_pem"] == ROOT and ca["set_by"] == ADMIN.public_key_hex
    assert ca["fingerprint"] == ca_rules.fingerprint(ROOT) and len(ca["fingerprint"]) == 64
    assert open_sealed(EDGE, ca["keys"][EDGE.public_key_hex]).decode() == KEY
    assert fog_ca.key_matches(ROOT, open_sealed(ADMIN, ca["keys"][ADMIN.public_key_hex]).decode())
    with pytest.raises(SealError):  # a member that is not a recipient learns nothing
        open_sealed(OTHER, ca["keys"][EDGE.public_key_hex])


def test_the_later_ca_set_wins_on_every_replica_whatever_the_order(base) -> None:
    a = found(base, ADMIN, [EDGE])
    write(a, ADMIN, "ca.set", payload([ADMIN]))
    resealed = write(a, ADMIN, "ca.set", payload([ADMIN, EDGE]))
    b = replica(base, "b")
    for raw in reversed(all_raws(a)):  # newest first: held until their parents come
        b.ingest([raw])
    for r in (a, b):
        assert set(ca_rules.current(r.view("ca"))["keys"]) == {ADMIN.public_key_hex,
                                                               EDGE.public_key_hex}
    assert resealed.kind == "ca.set"


def test_a_member_node_may_not_set_the_ca(base) -> None:
    r = found(base, ADMIN, [EDGE])
    assert refused(r, EDGE, payload([EDGE])) == ("unauthorized",
                                                 "ca.set: only a network admin may do this")


def test_an_accounts_key_may_not_set_the_ca(base) -> None:
    r = found(base, ADMIN, [EDGE])
    write(r, ADMIN, "account.set", {"name": "alice", "keys": [ALICE.public_key_hex],
                                    "roles": ["admin"]})  # even an admin account: not a node
    reason, message = refused(r, ALICE, payload([EDGE]))
    assert reason == "unauthorized"
    assert "an account's key may sign only" in message


def test_a_removed_admin_may_not_set_the_ca(base) -> None:
    r = found(base, ADMIN, [EDGE])
    write(r, ADMIN, "node.roles", {"node": EDGE.public_key_hex, "roles": ["admin"]})
    write(r, ADMIN, "node.remove", {"node": EDGE.public_key_hex})
    assert refused(r, EDGE, payload([ADMIN]))[0] == "unauthorized"


def test_the_key_is_sealed_only_to_members(base) -> None:
    r = found(base, ADMIN, [EDGE])
    stranger = NodeIdentity.from_seed(b"\x09" * 32)
    reason, message = refused(r, ADMIN, payload([EDGE, stranger]))
    assert reason == "invalid"
    assert message.startswith(f"payload.keys: {stranger.public_key_hex[:16]} is not a member")


@pytest.mark.parametrize("body, field", [
    ({"root_pem": "x" * ca_rules.MAX_ROOT_PEM}, "payload.root_pem"),
    ({"root_pem": ROOT + ROOT}, "payload.root_pem"),  # two certificates
    ({"root_pem": "-----BEGIN CERTIFICATE-----\n!!!!\n-----END CERTIFICATE-----\n"},
     "payload.root_pem"),
    ({"keys": {}}, "payload.keys"),
    ({"keys": {"ab": "x"}}, "payload.keys"),
    ({"keys": {EDGE.public_key_hex: "x" * (ca_rules.MAX_SEALED + 1)}}, "payload.keys"),
    ({"keys": {f"{i:064x}": "x" for i in range(ca_rules.MAX_RECIPIENTS + 1)}}, "payload.keys"),
    ({"private_key": KEY}, "payload.private_key"),  # the key in clear: not a field
])
def test_malformed_or_oversized_payloads_are_refused(base, body: dict, field: str) -> None:
    r = found(base, ADMIN, [EDGE])
    reason, message = refused(r, ADMIN, {**payload([EDGE]), **body})
    assert reason == "invalid"
    assert message.startswith(f"{field}: ")


def test_an_oversized_ca_set_is_refused_before_its_rule(base) -> None:
    r = found(base, ADMIN, [EDGE])
    many = {f"{i:064x}": "x" * ca_rules.MAX_SEALED for i in range(40)}
    for body in ({"root_pem": "x" * (ca_rules.MAX_ROOT_PEM + 1)}, {"keys": many}):
        assert refused(r, ADMIN, {**payload([EDGE]), **body})[0] == "oversized"


def test_recipients_are_the_edges_and_the_admins() -> None:
    nodes = [{"key": "a" * 64, "roles": ["admin"]},
             {"key": "b" * 64, "roles": ["member"], "capabilities": ["edge"]},
             {"key": "c" * 64, "roles": ["member"], "capabilities": ["builder"]},
             {"key": "d" * 64, "roles": [], "capabilities": ["edge"]}]  # removed
    assert fog_ca.recipients(nodes) == ["a" * 64, "b" * 64]
    assert fog_ca.missing({"keys": {"a" * 64: "s"}}, nodes) == ["b" * 64]
    assert fog_ca.missing(None, nodes) == []


def test_the_root_is_a_ca_limited_to_fog_names() -> None:
    from cryptography import x509

    cert = x509.load_pem_x509_certificate(ROOT.encode())
    assert cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    permitted = cert.extensions.get_extension_for_class(x509.NameConstraints).value
    assert permitted.permitted_subtrees == [x509.DNSName("fog")]
    assert not fog_ca.key_matches(ROOT, fog_ca.make_root("other")[1])


def test_the_most_recipients_the_rule_allows_fit_in_one_op(base) -> None:
    nodes = [NodeIdentity.from_seed(bytes([40 + i]) * 32)
             for i in range(ca_rules.MAX_RECIPIENTS - 1)]
    r = found(base, ADMIN, nodes)
    write(r, ADMIN, "ca.set", payload([ADMIN, *nodes]))
    assert len(ca_rules.current(r.view("ca"))["keys"]) == ca_rules.MAX_RECIPIENTS


def test_two_admins_concurrent_ca_sets_converge_on_one_whole_record(base) -> None:
    a = found(base, ADMIN, [EDGE])
    write(a, ADMIN, "node.roles", {"node": EDGE.public_key_hex, "roles": ["admin"]})
    b = replica(base, "b")
    b.ingest(all_raws(a))
    other_root, other_key = fog_ca.make_root("lab")
    write(a, ADMIN, "ca.set", payload([ADMIN]))  # neither knows the other's
    write(b, EDGE, "ca.set", payload([EDGE], other_root, other_key))
    a.ingest(all_raws(b))
    b.ingest(all_raws(a))
    ca_a, ca_b = ca_rules.current(a.view("ca")), ca_rules.current(b.view("ca"))
    assert ca_a == ca_b
    holder = ADMIN if ca_a["set_by"] == ADMIN.public_key_hex else EDGE
    assert list(ca_a["keys"]) == [holder.public_key_hex]  # root and keys from the same op
    assert fog_ca.key_matches(ca_a["root_pem"], open_sealed(holder, ca_a["keys"][
        holder.public_key_hex]).decode())
