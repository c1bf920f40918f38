"""The acceptance rules: what each kind of op must contain and who may write it.

Every check here is a pure function of the op, the ops it references (which must be present, like
parents) and the authority of its causal past, so every correct replica gives the same verdict."""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable
from typing import Any, TypeGuard

from nacl.bindings import crypto_sign_open
from nacl.exceptions import BadSignatureError
from nacl.exceptions import ValueError as NaclValueError

from formation.node.state import (
    account_invites,
    accounts,
    capability_rules,
    cert_rules,
    grant_rules,
    route_rules,
    tenant_images,
    tenant_rules,
)
from formation.node.state.authority import ROLES, Authority
from formation.node.state.ca_rules import KIND as CA_KIND
from formation.node.state.ca_rules import problem as ca_problem
from formation.node.state.image_formfile import formfile_problem
from formation.node.state.image_manifest import MAX_CMDLINE as MAX_IMAGE_CMDLINE
from formation.node.state.image_manifest import image_digest, parts_problem
from formation.node.state.instance_spec import (
    CONFIDENTIAL,
    PCI_ADDRESS,
    observed_problem,
    spec_problem,
)
from formation.node.state.op import Op, encode

INVITE_PROOF_CONTEXT = b"formation-invite-proof-v1\x00"
_HEX64 = re.compile(r"^[0-9a-f]{64}$")
_HEX128 = re.compile(r"^[0-9a-f]{128}$")
_NAME = re.compile(r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$")
_DNS = re.compile(r"^([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)*[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$")
DNS_TYPES = frozenset({"A", "AAAA", "CNAME", "TXT"})
INSTANCE_STATES = frozenset({"running", "stopped", "deleted"})

GetOp = Callable[[bytes], Op]  # a present op by id (references are checked present first)
Rule = Callable[[Op, Authority, str, GetOp], None]  # raises Refused; author is op.author.hex()


class Refused(Exception):
    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


def _need(payload: dict[str, Any], name: str, check: Callable[[Any], bool], expected: str) -> Any:
    value = payload.get(name)
    if not check(value):
        raise Refused("invalid", f"payload.{name}: expected {expected}")
    return value


def _only(payload: dict[str, Any], allowed: set[str]) -> None:
    extra = set(payload) - allowed
    if extra:
        raise Refused("invalid", f"payload.{sorted(extra)[0]}: not a field of this kind")


def is_key(v: Any) -> TypeGuard[str]:
    return isinstance(v, str) and bool(_HEX64.match(v))


def is_name(v: Any) -> TypeGuard[str]:
    return isinstance(v, str) and bool(_NAME.match(v))


def _is_map(v: Any) -> bool:
    return isinstance(v, dict)


def _is_roles(v: Any) -> bool:
    return isinstance(v, list) and bool(v) and all(r in ROLES for r in v) and len(set(v)) == len(v)


def _is_text(v: Any) -> bool:
    return isinstance(v, str) and 0 < len(v) <= 255


def _is_uint(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool) and v >= 0


def _is_cidr(v: Any) -> bool:
    try:
        net = ipaddress.ip_network(v)
    except (ValueError, TypeError):
        return False
    return net.num_addresses >= 4


# Payload fields that name other ops (hex op ids); those ops must be present first.
REF_FIELDS = {
    "invite.consume": ("invite",),
    "instance.update": ("instance",), "instance.place": ("instance",),
    "instance.status": ("instance", "placement"), "instance.delete": ("instance",),
    "image.remove": ("image",), "dns.remove": ("record",),
    "route.set": (), "route.remove": ("route",),  # route.set: its `instances` (route_rules)
    cert_rules.KIND: cert_rules.REF_FIELDS,
    **grant_rules.REF_FIELDS,
}
# Optional payload fields that name other ops: present only when the field is.
OPTIONAL_REF_FIELDS = {"instance.place": ("from",), **grant_rules.OPTIONAL_REF_FIELDS}


def refs(op: Op) -> list[bytes]:
    out: list[bytes] = []
    for name in REF_FIELDS.get(op.kind, ()):
        value = op.payload.get(name)
        if not is_key(value):
            raise Refused("invalid", f"payload.{name}: expected an op id as 64 hex characters")
        out.append(bytes.fromhex(value))
    for name in OPTIONAL_REF_FIELDS.get(op.kind, ()):
        if name in op.payload:
            value = op.payload[name]
            if not is_key(value):
                raise Refused("invalid", f"payload.{name}: expected an op id as 64 hex "
                              "characters")
            out.append(bytes.fromhex(value))
    try:
        out.extend(route_rules.instance_refs(op))
    except route_rules.RouteRefused as exc:
        raise Refused(exc.reason, str(exc)) from None
    return out


def check(op: Op, auth: Authority, get_op: GetOp) -> None:
    """Raises Refused unless `op` may be applied. Structure, signature, network, sequence and
    causality were checked before; this is the kind-specific part."""
    rule = RULES.get(op.kind)
    if rule is None:
        raise Refused("invalid", f"kind: unknown kind {op.kind!r}")
    author = op.author.hex()
    if op.kind not in ("network.genesis", "invite.consume", account_invites.REDEEM,
                       *grant_rules.KINDS) \
            and not auth.is_member(author):
        if grant_rules.uses_grant(op):  # a grantee's op, judged as its granter's (delegation)
            get_op = grant_rules.cached(get_op)
            use = grant_rules.as_granter(op, auth, author, get_op)
            if isinstance(use, tuple):
                raise Refused(*use)
            op, author = use.op, use.key
        _raise(route_rules.author_problem(op, auth, author) if op.kind in route_rules.ROUTE_KINDS
               else tenant_rules.author_problem(op, auth, author))  # an account's key, or refused
    rule(op, auth, author, get_op)


def _raise(problem: tenant_rules.Problem) -> None:
    if problem is not None:
        raise Refused(*problem)


def _admin(auth: Authority, author: str, what: str) -> None:
    if not auth.is_admin(author):
        raise Refused("unauthorized", f"{what}: only a network admin may do this")


def _genesis(op: Op, auth: Authority, author: str, get_op: GetOp) -> None:
    p = op.payload
    _only(p, {"name", "cidr"})
    _need(p, "name", is_name, "a network name (lowercase letters, digits, '-')")
    _need(p, "cidr", _is_cidr, "an IP network such as 10.42.0.0/16")
    if op.parents or op.seq != 1:
        raise Refused("invalid", "network.genesis: must be its author's first op, without parents")


def _network_update(op: Op, auth: Authority, author: str, get_op: GetOp) -> None:
    _only(op.payload, {"name"})
    _need(op.payload, "name", is_name, "a network name")
    _admin(auth, author, "network.update")


def _admit(op: Op, auth: Authority, author: str, get_op: GetOp) -> None:
    _only(op.payload, {"node", "roles"})
    _need(op.payload, "node", is_key, "a node's Ed25519 key, 64 hex")
    _need(op.payload, "roles", _is_roles, "a list of roles from admin, member")
    _admin(auth, author, op.kind)


def _remove(op: Op, auth: Authority, author: str, get_op: GetOp) -> None:
    _only(op.payload, {"node"})
    _need(op.payload, "node", is_key, "a node's Ed25519 key, 64 hex")
    _admin(auth, author, op.kind)


def _record(op: Op, auth: Authority, author: str, get_op: GetOp) -> None:
    p = op.payload
    _only(p, {"name", "endpoints", "resources", "wireguard_key", "wg_endpoints"})
    _need(p, "name", is_name, "a node name")
    if "endpoints" in p:
        _need(p, "endpoints", lambda v: isinstance(v, list) and all(map(_is_text, v)),
              "a list of HOST:PORT")
    if "resources" in p:
        _resources(p["resources"])
    if "wireguard_key" in p:
        _need(p, "wireguard_key", _is_text, "a WireGuard public key")
    if "wg_endpoints" in p:
        _need(p, "wg_endpoints", lambda v: isinstance(v, list) and all(map(_is_text, v)),
              "a list of HOST:PORT (WireGuard underlay endpoints)")


_RESOURCE_FIGURES = ("cpus", "memory_mb", "disk_gb")
MAX_GPUS_OFFERED = 64


def _resources(res: Any) -> None:
    """A node's offer. Figures it leaves out offer nothing; other keys are kept (a newer node
    may publish more) but placement reads only these."""
    if not isinstance(res, dict):
        raise Refused("invalid", "payload.resources: expected a map")
    for name in _RESOURCE_FIGURES:
        if name in res and not _is_uint(res[name]):
            raise Refused("invalid", f"payload.resources.{name}: expected an integer >= 0")
    gpus = res.get("gpus", [])
    if not (isinstance(gpus, list) and len(gpus) <= MAX_GPUS_OFFERED
            and all(isinstance(g, str) and PCI_ADDRESS.match(g) for g in gpus)
            and len(set(gpus)) == len(gpus)):
        raise Refused("invalid", "payload.resources.gpus: expected a list of distinct PCI "
                      f"addresses such as 0000:01:00.0 (at most {MAX_GPUS_OFFERED})")
    confidential = res.get("confidential", [])
    if not (isinstance(confidential, list) and len(set(confidential)) == len(confidential)
            and all(c in CONFIDENTIAL[1:] for c in confidential)):
        raise Refused("invalid", "payload.resources.confidential: expected a list of sev-snp, "
                      "tdx")


def _invite_create(op: Op, auth: Authority, author: str, get_op: GetOp) -> None:
    p = op.payload
    _only(p, {"token_key", "expires_ms", "roles"})
    _need(p, "token_key", is_key, "the invite token's public key, 64 hex")
    _need(p, "expires_ms", _is_uint, "an expiry in Unix milliseconds")
    _need(p, "roles", _is_roles, "a list of roles")
    _admin(auth, author, "invite.create")


def invite_proof_message(network: bytes, invite_id: str, node_key: str) -> bytes:
    return INVITE_PROOF_CONTEXT + network + bytes.fromhex(invite_id) + bytes.fromhex(node_key)


def _invite_consume(op: Op, auth: Authority, author: str, get_op: GetOp) -> None:
    p = op.payload
    _only(p, {"invite", "node", "roles", "proof"})
    _need(p, "node", is_key, "the joining node's key")
    _need(p, "proof", lambda v: isinstance(v, str) and bool(_HEX128.match(v)),
          "the token's signature, 128 hex")
    invite = get_op(bytes.fromhex(p["invite"]))
    if invite.kind != "invite.create":
        raise Refused("invalid", "payload.invite: does not name an invite.create op")
    if p.get("roles") != invite.payload["roles"]:
        raise Refused("invalid", "payload.roles: must equal the invite's roles")
    if p["node"] != author:
        raise Refused("unauthorized", "invite.consume: must be signed by the joining node")
    if p["invite"] in auth.consumed_invites:
        raise Refused("unauthorized", "invite.consume: invite already used")
    if op.hlc[0] > invite.payload["expires_ms"]:
        raise Refused("unauthorized", "invite.consume: invite expired")
    message = invite_proof_message(op.network, p["invite"], p["node"])
    try:
        crypto_sign_open(bytes.fromhex(p["proof"]) + message,
                         bytes.fromhex(invite.payload["token_key"]))
    except (BadSignatureError, NaclValueError):
        raise Refused("unauthorized", "invite.consume: proof does not verify") from None


def _address_claim(op: Op, auth: Authority, author: str, get_op: GetOp) -> None:
    _only(op.payload, {"ip"})
    try:
        ip = ipaddress.ip_address(op.payload.get("ip", ""))
    except (ValueError, TypeError):
        raise Refused("invalid", "payload.ip: expected an IP address") from None
    net = auth.cidr
    if net is None or ip not in net or ip in (net.network_address, net.broadcast_address):
        raise Refused("invalid", f"payload.ip: {ip} is not a host address of {net}")


def _spec(spec: Any) -> None:
    problem = spec_problem(spec)
    if problem is not None:
        raise Refused("invalid", f"payload.{problem}")


def _instance_create(op: Op, auth: Authority, author: str, get_op: GetOp) -> None:
    p = op.payload
    _only(p, {"name", "spec", "desired", "account"})
    _need(p, "name", is_name, "an instance name")
    if "account" in p:
        _need(p, "account", is_name, "an account name")
        _raise(tenant_rules.create_problem(p, auth, author))
    _spec(p.get("spec"))
    if "desired" in p:
        _need(p, "desired", lambda v: v in INSTANCE_STATES, "running or stopped")


def _owner_or_admin(op: Op, auth: Authority, author: str, get_op: GetOp) -> Op:
    created = get_op(bytes.fromhex(op.payload["instance"]))
    if created.kind != "instance.create":
        raise Refused("invalid", "payload.instance: does not name an instance.create op")
    _raise(tenant_rules.control_problem(op, created, auth, author))
    return created


def _instance_update(op: Op, auth: Authority, author: str, get_op: GetOp) -> None:
    p = op.payload
    _only(p, {"instance", "spec", "desired", "boot", "force", "move"})
    if "move" in p:
        problem = move_problem(p["move"])
        if problem is not None:
            raise Refused("invalid", f"payload.move{problem}")
    if "spec" in p:
        _spec(p["spec"])
    if "desired" in p:
        _need(p, "desired", lambda v: v in INSTANCE_STATES, "running or stopped")
    if "boot" in p:
        _need(p, "boot", _is_uint, "a restart counter, an integer >= 0")
    if "force" in p:
        _need(p, "force", lambda v: isinstance(v, bool), "true or false (stop without the "
              "guest's grace period)")
    _owner_or_admin(op, auth, author, get_op)


def _instance_place(op: Op, auth: Authority, author: str, get_op: GetOp) -> None:
    """The chosen node claims the instance itself: nobody can put work (or a capacity claim)
    on another node. Whether the claim holds is the placement fold's business
    (node/vmm/placement.py), not acceptance: it depends on ops this one may not have seen."""
    p = op.payload
    _only(p, {"instance", "node", "from", "incoming"})
    _need(p, "node", is_key, "a node key")
    if "incoming" in p:
        if "from" not in p:
            raise Refused("invalid", "payload.incoming: only with payload.from (a migration)")
        _need(p, "incoming", is_incoming, "the migration listener as IPv4:PORT")
    if p["node"] != author:
        raise Refused("unauthorized", "instance.place: only the node itself may claim an "
                      "instance (payload.node must be the author)")
    if get_op(bytes.fromhex(p["instance"])).kind != "instance.create":
        raise Refused("invalid", "payload.instance: does not name an instance.create op")
    if "from" in p:  # a move: it supersedes a placement of this same instance on another node
        prior = get_op(bytes.fromhex(p["from"]))
        if prior.kind != "instance.place" or prior.payload.get("instance") != p["instance"]:
            raise Refused("invalid", "payload.from: not a placement of this instance")
        if prior.payload.get("node") == author:
            raise Refused("invalid", "payload.from: a placement on this same node (a move "
                          "goes to another node)")


MOVE_MODES = frozenset({"live", "restart"})
MAX_MOVE_N = 2**53


def move_problem(move: Any) -> str | None:
    """Why an instance.update's `move` is malformed (a suffix after "payload.move"), or None.
    {"to": node key, "mode": "live" | "restart", "n": the request's number, which grows so
    that moving to the same node again is a new request, "from": optional, the placement op it
    moves the instance from: once that placement is gone the request is spent}."""
    if not isinstance(move, dict):
        return ": expected {to, mode, n}"
    extra = set(move) - {"to", "mode", "n", "from"}
    if extra:
        return f".{sorted(extra)[0]}: not a field of a move"
    if not is_key(move.get("to")):
        return ".to: expected a node key"
    if "from" in move and not is_key(move["from"]):
        return ".from: expected the placement op it moves from (64 hex characters)"
    if move.get("mode") not in MOVE_MODES:
        return ".mode: expected live or restart"
    n: Any = move.get("n")
    if not (_is_uint(n) and n < MAX_MOVE_N):
        return ".n: expected a request number, an integer >= 0"
    return None


def is_incoming(v: Any) -> bool:
    """IPv4:PORT, a unicast address and a port a migration may listen on (1024-65535)."""
    if not isinstance(v, str) or len(v) > 21 or v.count(":") != 1:
        return False
    host, _, port = v.partition(":")
    try:
        ip = ipaddress.IPv4Address(host)
    except ValueError:
        return False
    if ip.is_multicast or ip.is_unspecified or ip.is_reserved or str(ip) == "255.255.255.255":
        return False
    return port.isdigit() and len(port) <= 5 and 1024 <= int(port) <= 65535


def _instance_status(op: Op, auth: Authority, author: str, get_op: GetOp) -> None:
    p = op.payload
    _only(p, {"instance", "placement", "observed"})
    problem = observed_problem(p.get("observed"), len(encode(p.get("observed"))))
    if problem is not None:
        raise Refused("invalid", f"payload.{problem}")
    placement = get_op(bytes.fromhex(p["placement"]))
    if placement.kind != "instance.place" or placement.payload["instance"] != p["instance"]:
        raise Refused("invalid", "payload.placement: not a placement of this instance")
    if placement.payload["node"] != author:
        raise Refused("unauthorized", "instance.status: only the node the work is assigned to")


def _instance_delete(op: Op, auth: Authority, author: str, get_op: GetOp) -> None:
    _only(op.payload, {"instance"})
    _owner_or_admin(op, auth, author, get_op)


def _image_add(op: Op, auth: Authority, author: str, get_op: GetOp) -> None:
    p = op.payload
    _only(p, {"digest", "name", "size", "parts", "cmdline", "formfile", "builder", "account"})
    if "account" in p:
        _need(p, "account", is_name, "an account name")
        _raise(tenant_images.add_problem(p, auth, author))
    _need(p, "digest", is_key, "the image's SHA-256, 64 hex")
    _need(p, "name", _is_text, "a name")
    _need(p, "size", _is_uint, "a size in bytes")
    problem = parts_problem(p.get("parts"))
    if problem is not None:
        part, _, what = problem.partition(": ")
        if what:
            raise Refused("invalid", f"payload.parts.{part}: expected {what}")
        raise Refused("invalid", f"payload.parts: {'expected ' * problem.startswith('a ')}"
                      f"{problem}")
    _need(p, "cmdline", lambda v: isinstance(v, str) and len(v) <= MAX_IMAGE_CMDLINE,
          f"a kernel command line up to {MAX_IMAGE_CMDLINE} characters")
    if p["size"] != sum(part["size"] for part in p["parts"].values()):
        raise Refused("invalid", "payload.size: expected the sum of the parts' sizes")
    if p["digest"] != image_digest(p["parts"], p["cmdline"]):
        raise Refused("invalid", "payload.digest: expected the SHA-256 of the manifest of "
                      "its parts and cmdline")
    _image_built(p, author)


def _image_built(p: dict[str, Any], author: str) -> None:
    """An image built from a Formfile names it (`formfile`) and the node that built it
    (`builder`): both or neither, and a node records only its own builds."""
    if ("formfile" in p) != ("builder" in p):
        missing, present = ("builder", "formfile") if "formfile" in p else ("formfile",
                                                                             "builder")
        raise Refused("invalid", f"payload.{missing}: expected beside payload.{present} (an "
                      f"image built from a Formfile records both)")
    if "builder" not in p:
        return
    _need(p, "builder", is_key, "the building node's key, 64 hex")
    if p["builder"] != author:
        raise Refused("unauthorized", "payload.builder: expected the op's author (a node "
                      "records only the images it built)")
    problem = formfile_problem(p["formfile"])
    if problem is not None:
        raise Refused("invalid", f"payload.formfile{problem}")


def _image_remove(op: Op, auth: Authority, author: str, get_op: GetOp) -> None:
    _only(op.payload, {"image"})
    added = get_op(bytes.fromhex(op.payload["image"]))
    if added.kind != "image.add":
        raise Refused("invalid", "payload.image: does not name an image.add op")
    _raise(tenant_images.remove_problem(added, auth, author))


def _dns_set(op: Op, auth: Authority, author: str, get_op: GetOp) -> None:
    p = op.payload
    _only(p, {"name", "type", "value"})
    _need(p, "name", lambda v: isinstance(v, str) and len(v) <= 253 and bool(_DNS.match(v)),
          "a DNS name")
    _need(p, "type", lambda v: v in DNS_TYPES, "one of A, AAAA, CNAME, TXT")
    _need(p, "value", _is_text, "text up to 255 characters")
    _admin(auth, author, "dns.set")


def _dns_remove(op: Op, auth: Authority, author: str, get_op: GetOp) -> None:
    _only(op.payload, {"record"})
    if get_op(bytes.fromhex(op.payload["record"])).kind != "dns.set":
        raise Refused("invalid", "payload.record: does not name a dns.set op")
    _admin(auth, author, "dns.remove")


def _account_set(op: Op, auth: Authority, author: str, get_op: GetOp) -> None:
    problem = accounts.payload_problem(op.payload)
    if problem is not None:
        raise Refused("invalid", problem)
    _admin(auth, author, "account.set")
    for key in op.payload["keys"]:
        holder = auth.accounts.by_key.get(key)
        if auth.is_member(key) or holder not in (None, op.payload["name"]):
            raise Refused("invalid", f"payload.keys: {key[:16]} is already "
                          + (f"a key of account {holder!r}" if holder else "a node's key"))


def _account_remove(op: Op, auth: Authority, author: str, get_op: GetOp) -> None:
    _only(op.payload, {"name"})
    _need(op.payload, "name", is_name, "an account name")
    _admin(auth, author, "account.remove")


def _ca(op: Op, auth: Authority, author: str, get_op: GetOp) -> None:
    _raise(ca_problem(op, auth, author))


def _account_invite(op: Op, auth: Authority, author: str, get_op: GetOp) -> None:
    p = op.payload
    _only(p, {"account", "invite_key", "until_ms"})
    _need(p, "account", is_name, "an account name")
    _need(p, "invite_key", is_key, "the invite's public key, 64 hex")
    _need(p, "until_ms", _is_uint, "an expiry in Unix milliseconds")
    _admin(auth, author, "account.invite")
    _raise(account_invites.invite_problem(op, auth))


def _account_uninvite(op: Op, auth: Authority, author: str, get_op: GetOp) -> None:
    _only(op.payload, {"invite_key"})
    _need(op.payload, "invite_key", is_key, "the invite's public key, 64 hex")
    _admin(auth, author, "account.uninvite")
    _raise(account_invites.uninvite_problem(op, auth))


def _account_redeem(op: Op, auth: Authority, author: str, get_op: GetOp) -> None:
    p = op.payload
    _only(p, {"account", "key", "invite_key", "proof"})
    _need(p, "account", is_name, "an account name")
    _need(p, "key", is_key, "the joining key, 64 hex")
    _need(p, "invite_key", is_key, "the invite's public key, 64 hex")
    _need(p, "proof", lambda v: isinstance(v, str) and bool(_HEX128.match(v)),
          "the invite key's signature, 128 hex")
    _raise(account_invites.redeem_problem(op, auth, author))


def _routes(check: Rule) -> Rule:
    def rule(op: Op, auth: Authority, author: str, get_op: GetOp) -> None:
        try:
            check(op, auth, author, get_op)
        except route_rules.RouteRefused as exc:
            raise Refused(exc.reason, str(exc)) from None
    return rule


def _capabilities(op: Op, auth: Authority, author: str, get_op: GetOp) -> None:
    _raise(capability_rules.problem(op, auth, author))


def _cert(op: Op, auth: Authority, author: str, get_op: GetOp) -> None:
    _raise(cert_rules.problem(op, auth, author, get_op))


def _grant(op: Op, auth: Authority, author: str, get_op: GetOp) -> None:
    _raise(grant_rules.problem(op, auth, author, get_op))


RULES: dict[str, Rule] = {
    "network.genesis": _genesis, "network.update": _network_update,
    "node.admit": _admit, "node.roles": _admit, "node.remove": _remove, "node.record": _record,
    "invite.create": _invite_create, "invite.consume": _invite_consume,
    "address.claim": _address_claim,
    "instance.create": _instance_create, "instance.update": _instance_update,
    "instance.place": _instance_place, "instance.status": _instance_status,
    "instance.delete": _instance_delete,
    "image.add": _image_add, "image.remove": _image_remove,
    "dns.set": _dns_set, "dns.remove": _dns_remove,
    "account.set": _account_set, "account.remove": _account_remove,
    CA_KIND: _ca,  # the network CA for .fog names (ca_rules.py)
    "account.invite": _account_invite, "account.uninvite": _account_uninvite,
    account_invites.REDEEM: _account_redeem,
    "route.set": _routes(route_rules.check_set), "route.remove": _routes(route_rules.check_remove),
    "grant.set": _grant, "grant.revoke": _grant,
    capability_rules.KIND: _capabilities,
    cert_rules.KIND: _cert,
}
KINDS = tuple(sorted(RULES))
