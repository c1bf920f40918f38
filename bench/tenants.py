"""Tenant authorization benchmark (issue 18). Prints one JSON object.

- accounts: account.set ops written into one replica (real SQLite, not fsynced) by the admin,
  one op and transaction each (10,000 with or without --quick); accounts_write_s: how long
  that took; accounts_curve: time, ms per account and file size at each doubling (accounts
  are authority ops, each with a context of its own, stored by its frontier: both should grow
  linearly, ms per account flat); db_mb: the file's size after;
- authz_checks_per_s: the rule checks of tenant ops (`instance.create` signed by account keys,
  judged by rules.check against the authority of every account, plus the quota walk), against
  raw_verify_per_s: bare PyNaCl Ed25519 verifications of the same ops in the same run;
  authz_ratio = authz / verify (target >= 1.0: authorization costs less than the signature).
- instances: live instances of the accounts in the log before the checks (the quota check
  reads the account's instance ops through the tenant_ops index, and walks only for ops of
  its other keys or of admins);
- grants, grants_write_s, grant_use_checks_per_s, grant_use_ratio: bench/support/tenant_grants.py
  (authz_checks_per_s is measured with the grants in the store);
- voiding: {revoke_void_ms, revoke_plain_ms, ops_in_log}: applying a revocation that did not see
  an applied use of its grant (the use is void, its effects taken out of the views), against one
  that saw everything (tenant_grants.void_round; after the checks).

    python bench/tenants.py [--quick] [--accounts N] [--instances N] [--grants N]
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

from nacl.signing import VerifyKey
from support import tenant_grants

from formation.identity import NodeIdentity
from formation.node.state import rules, tenant_usage
from formation.node.state.op import SIGNING_CONTEXT, build_body, decode, sign_body
from formation.node.state.replica import Replica

NETWORK = bytes(range(16))
ADMIN = NodeIdentity.from_seed(b"\x01" * 32)
SPEC = {"image": "ab" * 32, "vcpus": 1, "memory_mb": 512, "disk_gb": 5}


def write_accounts(r: Replica, keys: list[NodeIdentity],
                   path: Path) -> tuple[float, list[dict[str, float]]]:
    """The admin writes one account.set per key, each its own op and transaction, as `formation
    account create` does. Returns the total time and the growth curve: at each doubling (and
    at the end), accounts so far, seconds so far, the last chunk's ms per account and the
    file's MB. Linear growth: ms per account stays flat as the count doubles."""
    curve: list[dict[str, float]] = []
    start = chunk_start = time.perf_counter()
    mark, chunk_from = 1000, 0
    for i, key in enumerate(keys):
        r.append(ADMIN.sign, ADMIN.public_key, "account.set", {
            "name": f"a{i}", "keys": [key.public_key_hex], "roles": ["user"],
            "quotas": {"instances": 4}})
        done = i + 1
        if done == mark or done == len(keys):
            now = time.perf_counter()
            curve.append({"accounts": done, "s": round(now - start, 2),
                          "ms_per_account": round((now - chunk_start) * 1000
                                                  / (done - chunk_from), 2),
                          "db_mb": round(path.stat().st_size / 2**20, 1)})
            chunk_start, chunk_from, mark = now, done, mark * 2
    return time.perf_counter() - start, curve


def run(accounts: int, checks: int, instances: int, grants: int = 0) -> dict[str, object]:
    base = Path(tempfile.mkdtemp(prefix="fm-bench-tenants-"))
    r = Replica(base / "state.db", durable=False)
    r.create_network(ADMIN.sign, ADMIN.public_key, NETWORK, "bench", "10.0.0.0/16")
    keys = [NodeIdentity.from_seed(i.to_bytes(4, "big") * 8) for i in range(accounts)]
    write_s, curve = write_accounts(r, keys, base / "state.db")
    start = time.perf_counter()
    for n in range(instances):  # live instances in the log: what the quota walk reads
        key = keys[n % accounts]
        seq = r.vv.get(key.public_key, 0) + 1
        prev = None if seq == 1 else r.db.execute(
            "SELECT id FROM ops WHERE author=? AND seq=?", (key.public_key, seq - 1)).fetchone()[0]
        payload = {"name": f"live{n}", "spec": SPEC, "account": f"a{n % accounts}"}
        raw = sign_body(build_body(NETWORK, key.public_key, seq, prev, sorted(r.heads),
                                   r.clock.tick(), "instance.create", payload), key.sign)
        assert r.ingest([raw]).verdicts[0].status == "accepted"
    instances_s = time.perf_counter() - start
    granted, grants_s = tenant_grants.write_grants(r, NETWORK, keys, grants)
    heads = sorted(r.heads)
    top = r.clock.last
    ops = []
    for n in range(checks):
        key = keys[n % accounts]
        seq = r.vv.get(key.public_key, 0) + 1
        prev = None if seq == 1 else r.db.execute(
            "SELECT id FROM ops WHERE author=? AND seq=?", (key.public_key, seq - 1)).fetchone()[0]
        ops.append(decode(sign_body(build_body(
            NETWORK, key.public_key, seq, prev, heads, (top[0] + 1, 0), "instance.create",
            {"name": f"i{n}", "spec": SPEC, "account": f"a{n % accounts}"}), key.sign)))
    auth = r.current_authority()
    log = tenant_usage.LogAccess(
        lambda account: tenant_usage.stored_instance_ops(r.db, {}, account), r.hlc_of,
        r.deps_of, r._ops_at)

    def authz() -> float:
        t = time.perf_counter()
        for op in ops:
            rules.check(op, auth, lambda _i, op=op: op)
            tenant_usage.check(op, auth, log)
        return len(ops) / (time.perf_counter() - t)

    def verify() -> float:
        t = time.perf_counter()
        for op in ops:
            VerifyKey(op.author).verify(SIGNING_CONTEXT + op.body, op.signature)
        return len(ops) / (time.perf_counter() - t)

    best_authz = max(authz() for _ in range(3))
    best_verify = max(verify() for _ in range(3))
    grant_uses = tenant_grants.uses(r, NETWORK, granted, accounts, instances, checks) \
        if granted and instances else []
    check_uses = tenant_grants.checker(r)
    best_uses = max(check_uses(grant_uses) for _ in range(3)) if grant_uses else 0.0
    voiding = tenant_grants.void_round(r, NETWORK, keys, grant_uses, granted) \
        if len(granted) > 1 and grant_uses else {}
    db_mb = (base / "state.db").stat().st_size / 2**20
    r.close()
    for f in base.iterdir():
        f.unlink()
    base.rmdir()
    return {"accounts": accounts, "grants": grants, "grants_write_s": round(grants_s, 2),
            "grant_use_checks_per_s": round(best_uses),
            "grant_use_ratio": round(best_uses / best_verify, 2),
            "accounts_write_s": round(write_s, 2), "accounts_curve": curve,
            "instances": instances, "instances_write_s": round(instances_s, 2),
            "db_mb": round(db_mb, 1), "authz_checks_per_s": round(best_authz),
            "raw_verify_per_s": round(best_verify),
            "authz_ratio": round(best_authz / best_verify, 2),
            "voiding": voiding,
            "load_avg_1m_at_start": os.getloadavg()[0]}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--accounts", type=int)
    parser.add_argument("--instances", type=int)
    parser.add_argument("--grants", type=int)
    args = parser.parse_args()
    accounts = args.accounts or 10_000
    instances = args.instances if args.instances is not None else (500 if args.quick else 5000)
    grants = args.grants if args.grants is not None else (accounts * 4 if args.quick
                                                          else 10 * accounts)
    print(json.dumps(run(accounts, 2000 if args.quick else 10_000, instances, grants)))


if __name__ == "__main__":
    main()
