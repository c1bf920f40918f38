"""The acceptance rules of `route.set` / `route.remove`: public access to instances (issue 19).

A route maps a hostname (or `*.domain`) and a protocol (http, https, tcp) to the instances that
serve it: named by their `instance.create` op ids (`instances`, which the op references, so the
rules can judge them) or by a name prefix (`prefix`, resolved by the routes view over the
account's instances as they come and go). `port` is the instances' port, one of their spec's
`ports` (EXPOSE) when the spec lists any; a spec without `ports` (an instance made from an image
alone) says nothing about its ports, so any port is accepted and the edge's health checks tell.
`listen` is the edge's public port of a tcp route (http and https use the edge's own ports).

Who may write (judged from the op's causal past, like every rule, so all replicas agree):
- a network admin node: any route, for any account or for none (the network's own);
- an account key: routes of its own account (payload.account must name it) to its own
  instances; an admin account's key: any account's, any instance;
- a member node that is not an admin: nothing (nodes write observed status only).
A hostname belongs to the account of its earliest standing route: that is the routes view's
business (route_view.py), since a rule cannot see ops outside the op's causal past; the API
refuses a taken hostname before anything is signed.
Each problem is one line, "payload.field: expected ...", raised as rules.Refused."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from formation.node.edge.routes import PROTOCOLS, hostname_problem
from formation.node.state import tenant_rules
from formation.node.state.authority import Authority
from formation.node.state.op import Op

ROUTE_KINDS = frozenset({"route.set", "route.remove"})
MAX_INSTANCES = 16
SET_FIELDS = frozenset({"host", "protocol", "port", "listen", "instances", "prefix", "account"})
_HEX64 = re.compile(r"^[0-9a-f]{64}$")
_NAME = re.compile(r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$")
_PREFIX = re.compile(r"^[a-z0-9][a-z0-9-]{0,62}$")
Problem = tuple[str, str] | None
GetOp = Callable[[bytes], Op]


class RouteRefused(Exception):
    """rules.py turns it into its Refused (this module cannot import rules: rules imports it)."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


def _fail(message: str, reason: str = "invalid") -> RouteRefused:
    return RouteRefused(reason, message)


def is_port(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool) and 1 <= v <= 65535


def instance_refs(op: Op) -> list[bytes]:
    """The instance.create ops a route.set names (they must be present, like parents)."""
    if op.kind != "route.set" or "instances" not in op.payload:
        return []
    ids = op.payload["instances"]
    if not (isinstance(ids, list) and 0 < len(ids) <= MAX_INSTANCES
            and all(isinstance(i, str) and _HEX64.match(i) for i in ids)
            and len(set(ids)) == len(ids)):
        raise _fail(f"payload.instances: expected 1 to {MAX_INSTANCES} distinct instance ids "
                    "(instance.create op ids, 64 hex)")
    return [bytes.fromhex(i) for i in ids]


def author_problem(op: Op, auth: Authority, author: str) -> Problem:
    """For an author that is not a member: an account key may write its own account's routes
    (an admin account's key: any account's)."""
    mine = auth.accounts.of_key(author)
    if mine is None:
        return ("unauthorized", f"{op.kind}: author {author[:16]} is neither a member nor a key "
                "of an account")
    if op.kind == "route.set" and not mine.admin and op.payload.get("account") != mine.name:
        return ("unauthorized", f"payload.account: expected {mine.name!r}, the account of the "
                "key that signs")
    return None


def _writer(op: Op, auth: Authority, author: str) -> None:
    if auth.is_member(author) and not auth.is_admin(author):
        raise _fail(f"{op.kind}: a member node may not write routes (a network admin or the "
                    "owning account's key does)", "unauthorized")


def check_set(op: Op, auth: Authority, author: str, get_op: GetOp) -> None:
    p = op.payload
    extra = set(p) - SET_FIELDS
    if extra:
        raise _fail(f"payload.{sorted(extra)[0]}: not a field of route.set")
    problem = hostname_problem(p.get("host"))
    if problem is not None:
        raise _fail(f"payload.{problem}")
    protocol = p.get("protocol")
    if protocol not in PROTOCOLS:
        raise _fail("payload.protocol: expected one of http, https, tcp")
    if not is_port(p.get("port")):
        raise _fail("payload.port: expected the instances' port, 1 to 65535")
    if protocol == "tcp" and not is_port(p.get("listen")):
        raise _fail("payload.listen: expected the edge's public TCP port (1 to 65535) of a tcp "
                    "route")
    if protocol != "tcp" and "listen" in p:
        raise _fail("payload.listen: only for tcp routes (http and https use the edge's ports)")
    if ("instances" in p) == ("prefix" in p):
        raise _fail("payload.instances: expected either instances (ids) or prefix (a name "
                    "prefix), one of the two")
    if "prefix" in p and not (isinstance(p["prefix"], str) and _PREFIX.match(p["prefix"])):
        raise _fail("payload.prefix: expected an instance name prefix (lowercase letters, "
                    "digits, '-', up to 63)")
    if "account" in p and not (isinstance(p["account"], str) and _NAME.match(p["account"])):
        raise _fail("payload.account: expected an account name")
    _writer(op, auth, author)
    for index, ref in enumerate(instance_refs(op)):
        _check_instance(op, index, get_op(ref), auth, author)


def _check_instance(op: Op, index: int, created: Op, auth: Authority, author: str) -> None:
    field = f"payload.instances[{index}]"
    if created.kind != "instance.create":
        raise _fail(f"{field}: does not name an instance.create op")
    name = str(created.payload.get("name"))[:64]
    mine = auth.accounts.of_key(author)
    if not auth.is_admin(author) and not (mine is not None and mine.admin):
        owner = tenant_rules.owner_of(created)
        if owner != op.payload.get("account"):
            whose = f"account {owner!r}" if owner else "a node"
            raise _fail(f"{field}: instance {name!r} belongs to {whose}, not to account "
                        f"{op.payload.get('account')!r}", "unauthorized")
    spec = created.payload.get("spec")
    ports = spec.get("ports") if isinstance(spec, dict) else None
    want = f"{op.payload['port']}/tcp"
    if isinstance(ports, list) and want not in ports:
        exposed = ", ".join(str(x) for x in ports) or "nothing"
        raise _fail(f"payload.port: instance {name!r} does not expose {want} (it exposes "
                    f"{exposed})")


def check_remove(op: Op, auth: Authority, author: str, get_op: GetOp) -> None:
    p = op.payload
    extra = set(p) - {"route"}
    if extra:
        raise _fail(f"payload.{sorted(extra)[0]}: not a field of route.remove")
    route = get_op(bytes.fromhex(p["route"]))
    if route.kind != "route.set":
        raise _fail("payload.route: does not name a route.set op")
    _writer(op, auth, author)
    if auth.is_admin(author):
        return
    mine = auth.accounts.of_key(author)
    owner = route.payload.get("account")
    if mine is None or not (mine.admin or (owner is not None and mine.name == owner)):
        whose = f"account {owner!r}" if owner else "the network"
        raise _fail(f"route.remove: the route for {route.payload.get('host')} belongs to "
                    f"{whose}; only its account or an admin removes it", "unauthorized")
