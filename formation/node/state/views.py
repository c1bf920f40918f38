"""Views: folds over the accepted log, kept in SQLite next to it.

Each op becomes a list of *effects* on three commutative structures, so the result is the same
whatever order ops arrive in:
- last-writer-wins registers (collection, key, field), ordered by (HLC, op id); a few fields are
  first-writer-wins (an invite's consumer);
- observed-remove sets (images, DNS records): an element is its add op; a remove names the adds
  it observed, and a removed tag never comes back;
- tombstones: a deleted instance stays deleted (remove wins over concurrent updates);
- counters that only grow (an instance's `boot`): the highest value written wins;
- an instance's status history (instance_history).
Mesh addresses are computed from claims when read (see addresses())."""

from __future__ import annotations

import ipaddress
import sqlite3
from typing import Any

import cbor2

from formation.node.state import (
    ca_rules,
    capability_rules,
    cert_rules,
    cert_view,
    grant_view,
    route_view,
)
from formation.node.state.instance_view import observed_key
from formation.node.state.op import Op, encode

SCHEMA = """
CREATE TABLE IF NOT EXISTS lww (
  coll TEXT NOT NULL, key TEXT NOT NULL, field TEXT NOT NULL, value BLOB NOT NULL,
  hlc_ms INTEGER NOT NULL, hlc_c INTEGER NOT NULL, op BLOB NOT NULL,
  PRIMARY KEY (coll, key, field)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS orset (
  coll TEXT NOT NULL, key TEXT NOT NULL, tag BLOB NOT NULL, value BLOB NOT NULL,
  PRIMARY KEY (coll, key, tag)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS orset_removed (tag BLOB PRIMARY KEY) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS tombstones (
  coll TEXT NOT NULL, key TEXT NOT NULL, op BLOB NOT NULL, PRIMARY KEY (coll, key)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS counters (
  coll TEXT NOT NULL, key TEXT NOT NULL, field TEXT NOT NULL, value INTEGER NOT NULL,
  PRIMARY KEY (coll, key, field)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS history (
  coll TEXT NOT NULL, key TEXT NOT NULL, hlc_ms INTEGER NOT NULL, hlc_c INTEGER NOT NULL,
  op BLOB NOT NULL, author TEXT NOT NULL, value BLOB NOT NULL,
  PRIMARY KEY (coll, key, hlc_ms, hlc_c, op)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS claims (
  op BLOB PRIMARY KEY, ip TEXT NOT NULL, node TEXT NOT NULL,
  hlc_ms INTEGER NOT NULL, hlc_c INTEGER NOT NULL) WITHOUT ROWID;
"""
VIEW_TABLES = ("lww", "orset", "orset_removed", "tombstones", "counters", "history", "claims")
HISTORY_KEPT = 200  # status reports kept per instance (the newest by HLC)
# An effect is a tuple whose first item names its kind ("lww", "fww", "set", "add", "remove",
# "tomb", "claim", "roles", "history", "max"); what follows depends on the kind (see `effects`).
Effect = tuple[Any, ...]
Order = tuple[int, int, bytes]  # (HLC ms, HLC counter, op id): how concurrent writes are ordered
# Register writes merged in memory within a batch, one per field: (kind, collection, key, field)
# -> (the winning write's order, its value, its op).
Registers = dict[Effect, tuple[Order, Any, Op]]
COLLECTIONS = ("network", "nodes", "addresses", "instances", "images", "dns", "invites",
               "accounts", "routes", "grants", "ca")


def effects(op: Op) -> list[Effect]:
    """What `op` changes. Pure: the same op gives the same effects on every replica.
    ("roles", node) asks the replica to set the node's roles from the fold of every accepted
    authority op (authority.fold_authority), which voids the later of two concurrent uses of
    one invite; the replica turns it into a ("set", ...) effect (Replica._effects). So does
    ("account_keys", name): an account's keys as the fold gives them (set, then redeems)."""
    p, author, oid = op.payload, op.author.hex(), op.id.hex()
    k = op.kind
    if k == "network.genesis":
        return [("lww", "network", "", "name", p["name"]),
                ("lww", "network", "", "cidr", p["cidr"]),
                ("lww", "network", "", "id", op.network.hex()),
                ("lww", "network", "", "genesis", oid), ("lww", "network", "", "founder", author),
                ("roles", author)]
    if k == "network.update":
        return [("lww", "network", "", "name", p["name"])]
    if k in ("node.admit", "node.roles"):
        return [("roles", p["node"])]
    if k == "node.remove":  # a node admitted again starts without its old capabilities
        return [("roles", p["node"]), ("release", p["node"]),
                *capability_rules.cleared(p["node"])]
    if k == "node.record":
        return [("lww", "nodes", author, f, p[f]) for f in sorted(p)]
    if k == "invite.create":
        return [("lww", "invites", oid, f, p[f]) for f in sorted(p)] + [
            ("lww", "invites", oid, "created_by", author)]
    if k == "invite.consume":
        return [("fww", "invites", p["invite"], "consumed_by", p["node"]), ("roles", p["node"])]
    if k == "address.claim":
        return [("claim", str(ipaddress.ip_address(p["ip"])), author)]
    if k == "instance.create":
        return [("lww", "instances", oid, "name", p["name"]),
                ("lww", "instances", oid, "owner", author),
                ("lww", "instances", oid, "spec", p["spec"]),
                ("lww", "instances", oid, "desired", p.get("desired", "running"))] + (
                    [("lww", "instances", oid, "account", p["account"])]
                    if "account" in p else [])
    if k == "instance.update":
        return [("lww", "instances", p["instance"], f, p[f])
                for f in ("spec", "desired", "force", "move") if f in p] + (
                    [("max", "instances", p["instance"], "boot", p["boot"])]
                    if "boot" in p else [])
    if k == "instance.place":  # the fields of one claim share one order: one write
        return [("lww", "instances", p["instance"], "placement", p["node"]),
                ("lww", "instances", p["instance"], "placement_op", oid),
                ("lww", "instances", p["instance"], "placed_hlc", list(op.hlc)),
                # a move's claim: the placement it supersedes and where the target listens
                # (None for a plain claim, so an earlier move's fields do not linger)
                ("lww", "instances", p["instance"], "placement_from", p.get("from")),
                ("lww", "instances", p["instance"], "incoming", p.get("incoming"))]
    if k == "instance.status":
        return [("lww", "instances", p["instance"], "observed", p["observed"]),
                ("lww", "instances", p["instance"], observed_key(p["placement"]), p["observed"]),
                ("lww", "instances", p["instance"], "observed_by", author),
                ("history", "instances", p["instance"], author, p["observed"])]
    if k == "instance.delete":
        return [("tomb", "instances", p["instance"])]
    if k == "image.add":
        owner = {"account": p["account"]} if "account" in p else {}  # an account's image
        return [("add", "images", p["digest"], op.id,
                 {"name": p["name"], "size": p["size"], "added_by": author, **owner})]
    if k == "dns.set":
        return [("add", "dns", p["name"], op.id, {"type": p["type"], "value": p["value"]})]
    if k == "route.set":  # an OR-set element per op; route_view.py folds them per hostname
        return [("add", "routes", p["host"], op.id,
                 {**p, "author": author, "hlc": list(op.hlc)})]
    if k == "route.remove":
        return [("remove", bytes.fromhex(p["route"]))]
    if k in ("image.remove", "dns.remove"):
        return [("remove", bytes.fromhex(p.get("image") or p["record"]))]
    if k == "account.set":  # keys: from the fold, which account.redeem adds to
        return [("account_keys", p["name"]),
                ("lww", "accounts", p["name"], "roles", p["roles"]),
                ("lww", "accounts", p["name"], "quotas", p.get("quotas", {})),
                ("lww", "accounts", p["name"], "removed", False)]
    if k == "account.remove":
        return [("lww", "accounts", p["name"], "removed", True)]
    if k == "account.redeem":
        return [("account_keys", p["account"])]
    if k == capability_rules.KIND:
        return capability_rules.effects(op)
    if k == ca_rules.KIND:
        return ca_rules.effects(op)
    if k == cert_rules.KIND:
        return cert_rules.effects(op)
    if k == "grant.set":
        return grant_view.set_effects(p, author, oid)
    if k == "grant.revoke":
        return grant_view.revoke_effects(p, author, oid)
    return []


_LWW = """INSERT INTO lww VALUES (?,?,?,?,?,?,?) ON CONFLICT (coll, key, field) DO UPDATE SET
  value=excluded.value, hlc_ms=excluded.hlc_ms, hlc_c=excluded.hlc_c, op=excluded.op
  WHERE (excluded.hlc_ms, excluded.hlc_c, excluded.op) {cmp} (lww.hlc_ms, lww.hlc_c, lww.op)"""
LWW_SQL = _LWW.format(cmp=">")
FWW_SQL = _LWW.format(cmp="<")


def apply_effects(db: sqlite3.Connection, op: Op, changes: list[Effect]) -> None:
    ms, c, oid = op.hlc[0], op.hlc[1], op.id
    for effect in changes:
        tag = effect[0]
        if tag in ("lww", "fww"):
            _, coll, key, field, value = effect
            db.execute(LWW_SQL if tag == "lww" else FWW_SQL,
                       (coll, key, field, encode(value), ms, c, oid))
        elif tag == "set":  # decided by the replica from all it holds (see effects)
            _, coll, key, field, value = effect
            db.execute("INSERT OR REPLACE INTO lww VALUES (?,?,?,?,?,?,?)",
                       (coll, key, field, encode(value), ms, c, oid))
        elif tag == "add":
            _, coll, key, element, value = effect
            if db.execute("SELECT 1 FROM orset_removed WHERE tag=?", (element,)).fetchone():
                continue
            db.execute("INSERT OR IGNORE INTO orset VALUES (?,?,?,?)",
                       (coll, key, element, encode(value)))
        elif tag == "remove":
            db.execute("INSERT OR IGNORE INTO orset_removed VALUES (?)", (effect[1],))
            db.execute("DELETE FROM orset WHERE tag=?", (effect[1],))
        elif tag == "tomb":
            db.execute("INSERT OR IGNORE INTO tombstones VALUES (?,?,?)",
                       (effect[1], effect[2], oid))
        elif tag == "max":
            _, coll, key, field, value = effect
            db.execute("INSERT INTO counters VALUES (?,?,?,?) ON CONFLICT (coll, key, field) "
                       "DO UPDATE SET value=max(value, excluded.value)", (coll, key, field, value))
        elif tag == "history":  # keeps the newest HISTORY_KEPT, whatever the arrival order
            _, coll, key, author, value = effect
            db.execute("INSERT OR IGNORE INTO history VALUES (?,?,?,?,?,?,?)",
                       (coll, key, ms, c, oid, author, encode(value)))
            db.execute("""DELETE FROM history WHERE coll=? AND key=? AND (hlc_ms, hlc_c, op) <
                (SELECT hlc_ms, hlc_c, op FROM history WHERE coll=? AND key=?
                 ORDER BY hlc_ms DESC, hlc_c DESC, op DESC LIMIT 1 OFFSET ?)""",
                       (coll, key, coll, key, HISTORY_KEPT - 1))
        elif tag == "claim":
            db.execute("INSERT OR IGNORE INTO claims VALUES (?,?,?,?,?)",
                       (oid, effect[1], effect[2], ms, c))
        elif tag == "release":  # a claim of no address: see _live_claims
            db.execute("INSERT OR IGNORE INTO claims VALUES (?,?,?,?,?)",
                       (oid, _RELEASED, effect[1], ms, c))


def clear(db: sqlite3.Connection) -> None:
    for table in VIEW_TABLES:
        db.execute(f"DELETE FROM {table}")


# reading ------------------------------------------------------------------------------------

def _registers(db: sqlite3.Connection, coll: str) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    rows = db.execute("SELECT key, field, value FROM lww WHERE coll=? ORDER BY key, field", (coll,))
    for key, field, value in rows:
        out.setdefault(key, {})[field] = cbor2.loads(value)
    for key, field, number in db.execute(
            "SELECT key, field, value FROM counters WHERE coll=? ORDER BY key, field", (coll,)):
        if key in out:
            out[key][field] = number
    dead = {k for (k,) in db.execute("SELECT key FROM tombstones WHERE coll=?", (coll,))}
    return {k: v for k, v in out.items() if k not in dead}


def _elements(db: sqlite3.Connection, coll: str) -> list[dict[str, Any]]:
    rows = db.execute("SELECT key, tag, value FROM orset WHERE coll=? ORDER BY key, tag", (coll,))
    return [{"key": key, "id": tag.hex(), **cbor2.loads(value)} for key, tag, value in rows]


def members(db: sqlite3.Connection) -> set[str]:
    """Keys of the nodes that hold roles now (admitted and not removed)."""
    rows = db.execute("SELECT key, value FROM lww WHERE coll='nodes' AND field='roles'")
    return {key for key, value in rows if cbor2.loads(value)}


_RELEASED = ""  # the `ip` of a node.remove's row in claims: every earlier claim is void


def _live_claims(db: sqlite3.Connection) -> list[tuple[Order, str, str]]:
    """((HLC, id), ip, node) of each claim that still counts: made by a node that holds roles
    now, and later by (HLC, id) than that node's last removal. A removal releases the node's
    addresses for good, so a node admitted again claims anew instead of reviving an old claim
    and taking the address back from whoever was given it meanwhile. Every replica holding the
    same ops reaches the same answer, whatever order they came in."""
    current = members(db)
    rows = [((ms, c, oid), ip, node) for ms, c, oid, ip, node in
            db.execute("SELECT hlc_ms, hlc_c, op, ip, node FROM claims") if node in current]
    released: dict[str, Order] = {}
    for key, ip, node in rows:
        if ip == _RELEASED and (node not in released or key > released[node]):
            released[node] = key
    return [(key, ip, node) for key, ip, node in rows
            if ip != _RELEASED and (node not in released or key > released[node])]


def claimed_ips(db: sqlite3.Connection) -> set[str]:
    """Every address a current member has claimed since it was last removed (held, lost or
    superseded): not free."""
    return {ip for _key, ip, _node in _live_claims(db)}


def address_table(db: sqlite3.Connection) -> tuple[dict[str, str], dict[str, list[str]]]:
    """(ip -> holding node, node -> ips it claimed and lost). A node's active claim is its latest
    by (HLC, id); among active claims of one ip the earliest by (HLC, id) holds it. The losers
    see that and claim another address. Claims of nodes that no longer hold roles (removed, or
    admitted by a void invite use), and claims made before a node's removal, count for nothing:
    their addresses are free again."""
    active: dict[str, tuple[Order, str]] = {}  # node -> (its latest claim, that ip)
    for key, ip, node in _live_claims(db):
        if node not in active or key > active[node][0]:
            active[node] = (key, ip)
    holders: dict[str, tuple[Order, str]] = {}  # ip -> (the earliest claim, its node)
    for node, (key, ip) in active.items():
        if ip not in holders or key < holders[ip][0]:
            holders[ip] = (key, node)
    lost: dict[str, list[str]] = {}
    for node, (_key, ip) in active.items():
        if holders[ip][1] != node:
            lost.setdefault(node, []).append(ip)
    return {ip: node for ip, (_k, node) in sorted(holders.items())}, lost


def read(db: sqlite3.Connection, collection: str) -> list[dict[str, Any]]:
    """One collection as a list of JSON-friendly records, sorted by key."""
    if collection == "network":
        reg = _registers(db, "network").get("", {})
        if not reg:
            return []
        nodes = _registers(db, "nodes")
        reg["admins"] = sorted(k for k, v in nodes.items() if "admin" in v.get("roles", []))
        return [reg]
    if collection == "nodes":
        addresses, _ = address_table(db)
        by_node = {node: ip for ip, node in addresses.items()}
        nodes = _registers(db, "nodes")
        return [{"key": k, **v, "address": by_node.get(k)} for k, v in nodes.items()
                if v.get("roles")]
    if collection == "addresses":
        holders, lost = address_table(db)
        return ([{"ip": ip, "node": node} for ip, node in holders.items()]
                + [{"ip": ip, "node": node, "lost": True}
                   for node, ips in sorted(lost.items()) for ip in ips])
    if collection in ("images", "dns"):
        return _elements(db, collection)
    if collection == "routes":
        live = {k for k, v in _registers(db, "accounts").items() if not v.get("removed")}
        return route_view.fold(_elements(db, collection), live)
    if collection == "certs":  # not in COLLECTIONS: for the edges, not served by the API
        return certs(db)
    if collection == "instances":
        return over_quota(db, [{"key": k, **v} for k, v in _registers(db, collection).items()
                               if not v.get("removed")])
    if collection in ("grants", ca_rules.COLLECTION):
        return [{"key": k, **v} for k, v in _registers(db, collection).items()]
    if collection in ("invites", "accounts"):
        return [{"key": k, **v} for k, v in _registers(db, collection).items()
                if not v.get("removed")]
    raise KeyError(collection)


def certs(db: sqlite3.Connection) -> list[dict[str, Any]]:
    """The certificate each https host's edges serve (cert_view.py)."""
    edges = {k for k, v in _registers(db, "nodes").items()
             if v.get("roles") and capability_rules.EDGE in capability_rules.of(v)}
    https = {r["key"] for r in read(db, "routes") if r.get("protocol") == "https"}
    return cert_view.fold(_elements(db, "certs"), edges, https)


def over_quota(db: sqlite3.Connection, instances: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Marks `over_quota: true` on an account's instances beyond its quotas, counted over the
    whole view in creation order (HLC, id): concurrent creates that each passed the rules in
    their own causal past can together exceed a quota, and this is the same answer on every
    replica holding the same ops (placement leaves such instances unplaced)."""
    owned = [i for i in instances if "account" in i]
    if not owned:
        return instances
    quotas = {k: v.get("quotas") or {} for k, v in _registers(db, "accounts").items()
              if not v.get("removed")}
    created = {key: (ms, c, bytes.fromhex(key)) for key, ms, c in db.execute(
        "SELECT key, hlc_ms, hlc_c FROM lww WHERE coll='instances' AND field='account'")}
    used: dict[str, dict[str, int]] = {}
    for inst in sorted(owned, key=lambda i: created.get(i["key"], (0, 0, b""))):
        limits = quotas.get(inst["account"], {})
        if not limits:
            continue
        spec = inst.get("spec") or {}
        mine = used.setdefault(inst["account"], {})
        will = {f: mine.get(f, 0) + (1 if f == "instances" else int(spec.get(f, 0)))
                for f in ("instances", "vcpus", "memory_mb", "disk_gb")}
        if any(will[f] > limit for f, limit in limits.items() if f in will):
            inst["over_quota"] = True
        else:
            mine.update(will)
    return instances


def instance_history(db: sqlite3.Connection, instance: str) -> list[dict[str, Any]]:
    """The instance's status reports, oldest first: {"time_ms" (the report's HLC time),
    "node" (who reported), "observed"}; the newest HISTORY_KEPT of them."""
    rows = db.execute("SELECT hlc_ms, author, value FROM history WHERE coll='instances' AND "
                      "key=? ORDER BY hlc_ms, hlc_c, op", (instance,))
    return [{"time_ms": ms, "node": author, "observed": cbor2.loads(value)}
            for ms, author, value in rows]


def snapshot(db: sqlite3.Connection) -> dict[str, list[dict[str, Any]]]:
    return {name: read(db, name) for name in COLLECTIONS}
