"""The grants part of bench/tenants.py: delegation grants written into the replica, and the
rule checks of ops signed by grantee keys (judged as their granting account's: the grant, its
expiry at the op's time, its revocations in the op's causal past, the account's ownership).

- grants: grant.set ops in the log, signed by the accounts' keys, a grantee key each, spread
  evenly over the accounts; grants_write_s: how long writing them took (batched ingest);
- grant_use_checks_per_s: rules.check plus the log checks (tenant_usage.check: revocations,
  quotas) of `instance.update` uses (stop a live instance) by grantee keys;
  grant_use_ratio = that / raw_verify_per_s (the signature check of the same ops)."""

from __future__ import annotations

import time
from collections.abc import Callable

from formation.identity import NodeIdentity
from formation.node.state import rules, tenant_usage
from formation.node.state.op import Op, build_body, decode, sign_body
from formation.node.state.replica import Replica

GRANTEE_SEED = b"\x7e"
BATCH = 2000


def grantee(n: int) -> NodeIdentity:
    return NodeIdentity.from_seed(GRANTEE_SEED + n.to_bytes(4, "big") * 7 + b"\x00" * 3)


def write_grants(r: Replica, network: bytes, keys: list[NodeIdentity],
                 grants: int) -> tuple[list[Op], float]:
    """`grants` grant.set ops (grant j: account j % len(keys), grantee grantee(j), start and
    stop on the account's instances named live*), each on the one before, ingested in
    batches."""
    start = time.perf_counter()
    last: dict[bytes, tuple[int, bytes]] = {}
    made: list[Op] = []
    for first in range(0, grants, BATCH):
        heads = sorted(r.heads)
        raws = []
        for j in range(first, min(grants, first + BATCH)):
            key = keys[j % len(keys)]
            seq, prev = last.get(key.public_key) or _tip(r, key.public_key)
            payload = {"account": f"a{j % len(keys)}", "grantee": grantee(j).public_key_hex,
                       "actions": ["instance.start", "instance.stop"], "prefix": "live",
                       "until_ms": 2**52}
            raw = sign_body(build_body(network, key.public_key, seq + 1, prev, heads,
                                       r.clock.tick(), "grant.set", payload), key.sign)
            op = decode(raw)
            heads = [op.id]  # a chain: the log keeps one head, as a busy network's does
            last[key.public_key] = (seq + 1, op.id)
            raws.append(raw)
            made.append(op)
        verdicts = r.ingest(raws).verdicts
        assert all(v.status == "accepted" for v in verdicts), verdicts[:1]
    return made, time.perf_counter() - start


def _tip(r: Replica, author: bytes) -> tuple[int, bytes | None]:
    seq = r.vv.get(author, 0)
    if seq == 0:
        return 0, None
    row = r.db.execute("SELECT id FROM ops WHERE author=? AND seq=?", (author, seq)).fetchone()
    return seq, row[0]


def uses(r: Replica, network: bytes, grants: list[Op], accounts: int, instances: int,
         checks: int) -> list[Op]:
    """Uses of the first grant of each account, on that account's live instances."""
    by_name = {decode(raw).payload["name"]: op_id for op_id, raw in r.db.execute(
        "SELECT id, raw FROM ops WHERE kind='instance.create'")}
    heads = sorted(r.heads)
    top = r.clock.last
    out = []
    for n in range(checks):
        i = n % instances
        g = grants[i % accounts]
        who = grantee(i % accounts)
        payload = {"grant": g.id.hex(), "account": f"a{i % accounts}",
                   "instance": by_name[f"live{i}"].hex(), "desired": "stopped"}
        out.append(decode(sign_body(build_body(network, who.public_key, 1, None, heads,
                                               (top[0] + 1, 0), "instance.update", payload),
                                    who.sign)))
    return out


def checker(r: Replica) -> Callable[[list[Op]], float]:
    """Checks per second of `ops` by the rules and the log checks, as the replica runs them."""
    auth = r.current_authority()
    log = tenant_usage.LogAccess(
        lambda account: tenant_usage.stored_instance_ops(r.db, {}, account), r.hlc_of,
        r.deps_of, r._ops_at)

    def run(ops: list[Op]) -> float:
        t = time.perf_counter()
        for op in ops:
            rules.check(op, auth, r._stored_op)
            tenant_usage.check(op, auth, log)
        return len(ops) / (time.perf_counter() - t)

    return run


def void_round(r: Replica, network: bytes, keys: list[NodeIdentity], grant_uses: list[Op],
               grants: list[Op]) -> dict[str, float]:
    """What voiding costs (grant_void.py), once: a grantee's use is applied, then its grant's
    revocation written on the heads from before it (it did not see the use: the use is void
    and its effects are taken out of the views, grant_unapply.py); and, for comparison, a
    revocation that saw everything (another account's grant: no use of it).
    revoke_void_ms: applying the first; revoke_plain_ms: the second; ops_in_log: the log's
    size (a full rebuild of the views would replay all of it: 11 s for 50,000 ops, measured
    before grant_unapply.py)."""
    use = grant_uses[0]
    assert r.ingest([use.raw]).verdicts[0].status == "accepted"
    granter = keys[0]
    seq, prev = _tip(r, granter.public_key)
    hlc = r.clock.tick()
    rev = sign_body(build_body(network, granter.public_key, seq + 1, prev, list(use.parents),
                               hlc, "grant.revoke", {"grant": grants[0].id.hex()}),
                    granter.sign)
    t = time.perf_counter()
    assert r.ingest([rev]).verdicts[0].status == "accepted"
    void_s = time.perf_counter() - t
    assert use.id in r.revocation.grants.concurrent_with(decode(rev))
    [target] = [i for i in r.view("instances") if i["key"] == use.payload["instance"]]
    assert target["desired"] == "running", target  # the use's stop is void
    other = keys[1]
    seq, prev = _tip(r, other.public_key)
    plain = sign_body(build_body(network, other.public_key, seq + 1, prev, sorted(r.heads),
                                 r.clock.tick(), "grant.revoke", {"grant": grants[1].id.hex()}),
                      other.sign)
    t = time.perf_counter()
    assert r.ingest([plain]).verdicts[0].status == "accepted"
    return {"revoke_void_ms": round(void_s * 1000, 1),
            "revoke_plain_ms": round((time.perf_counter() - t) * 1000, 1),
            "ops_in_log": r.count}
