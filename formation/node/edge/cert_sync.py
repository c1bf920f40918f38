"""The edge's side of shared certificates, driven by the replicated state: decides which https
hosts this edge issues (cert_share.issuer_of over the live edges), gives the engine its part
(TlsShare: issue, forward the challenges, load what the issuers published), and, as an issuer,
publishes what its Caddy obtained or renewed (`cert.set`, state/cert_rules.py) with the key
sealed to every edge.

Only nodes with the `edge` capability take part (the store must know who is an edge, and only
an admin makes one, so a member cannot make itself the issuer of someone's host); a node that
runs the edge by its own `edge.enabled` setting alone asks the CA for every host, as before.
Wakes when an op that can change the answer is applied, and every `poll_s` to look for a new
or renewed certificate in Caddy's storage (certmagic renews in the background, with no
event the node sees)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization

from formation.identity.keys import NodeIdentity
from formation.identity.sealing import SealError, open_sealed, seal_to
from formation.node.edge.caddy_config import LETS_ENCRYPT
from formation.node.edge.cert_share import LoadedCert, TlsShare, issuer_of, mesh_dial
from formation.node.edge.cert_storage import Issued, issued, seed
from formation.node.edge.fog_ca_caddy import is_fog
from formation.node.state import capability_rules
from formation.node.state.cert_rules import KIND, MAX_EDGES, chain_der, chain_pem
from formation.node.state.op import Op

if TYPE_CHECKING:
    from formation.node.state.store import StateStore

log = logging.getLogger(__name__)

POLL_S = 10.0
WATCHED = (KIND, "node.", "route.", "invite.consume", "network.genesis")


@dataclass(frozen=True)
class Plan:
    """This edge's part (without the loaded certificates) and what publishing needs."""

    share: TlsShare
    edges: tuple[str, ...]  # every edge's key: who the keys are sealed to
    grant: str  # the node.capabilities op that made this node an edge
    routes: dict[str, str]  # https host -> its route.set op id


def edges_of(nodes: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """The nodes view's edges (members holding the edge capability), by key."""
    return {str(n["key"]): n for n in nodes
            if capability_rules.EDGE in capability_rules.of(n)}


def plan(me: str, nodes: list[dict[str, Any]], routes: list[dict[str, Any]],
         dead: set[str], http_port: int) -> Plan | None:
    """Pure: None when this node is not a capability edge (it then asks the CA itself)."""
    edges = edges_of(nodes)
    if me not in edges:
        return None
    live = [k for k in edges if k not in dead or k == me]
    https = {str(r["key"]): str(r["id"]) for r in routes
             if r.get("protocol") == "https" and not str(r.get("key")).startswith("*.")
             and not is_fog(str(r.get("key"))) and not r.get("conflict")}  # .fog: network CA
    issue, forward = set(), []
    for host in sorted(https):
        issuer = issuer_of(host, live)
        if issuer == me:
            issue.add(host)
        elif issuer is not None and edges[issuer].get("address"):
            forward.append((host, mesh_dial(str(edges[issuer]["address"]), http_port)))
    return Plan(TlsShare(frozenset(issue), tuple(forward)), tuple(sorted(edges)),
                str(edges[me].get("capabilities_op", "")), https)


def key_matches(cert_pem: str, key_pem: str) -> None:
    """ValueError unless `key_pem` is the private key of the chain's leaf."""
    leaf = x509.load_pem_x509_certificates(cert_pem.encode())[0]
    key = serialization.load_pem_private_key(key_pem.encode(), password=None)
    spki = (serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    if key.public_key().public_bytes(*spki) != leaf.public_key().public_bytes(*spki):
        raise ValueError("the key is not the certificate's")


def recipients(me: str, edges: tuple[str, ...]) -> list[str]:
    """Who a published key is sealed to: every edge, this one first, at most MAX_EDGES (an
    op's size bound; docs/operations.md)."""
    return [me, *[e for e in edges if e != me]][:MAX_EDGES]


def needs_publishing(found: Issued, published: dict[str, Any] | None, me: str,
                     to: list[str]) -> bool:
    """Publish a newer certificate, or this edge's own again when the edges changed."""
    if published is None or found.not_after > int(published.get("not_after", 0)):
        return True
    return (found.not_after == published.get("not_after") and published.get("author") == me
            and sorted(published.get("keys") or {}) != sorted(to))


class CertSync:
    def __init__(self, store: StateStore, identity: NodeIdentity, storage: Path,
                 http_port: int, apply: Callable[[TlsShare | None], Awaitable[object]],
                 dead: Callable[[], set[str]] | None = None, poll_s: float = POLL_S,
                 acme_directory: str = LETS_ENCRYPT) -> None:
        """`acme_directory`: the CA's directory URL, which names Caddy's storage directory."""
        self.store, self.identity, self.storage = store, identity, storage
        self.acme_directory = acme_directory
        self.http_port, self.apply, self.dead, self.poll_s = http_port, apply, dead, poll_s
        self.me = identity.public_key_hex
        self.applied: TlsShare | None = None
        self.published: set[tuple[str, int]] = set()  # (host, not_after) this edge wrote
        self._opened: dict[str, LoadedCert] = {}  # cert.set id -> its opened certificate
        self._wake = asyncio.Event()
        self._told_no_grant = False

    def _on_ops(self, ops: list[Op], origin: str | None) -> None:
        if any(op.kind.startswith(WATCHED) for op in ops):
            self._wake.set()

    async def current(self) -> tuple[TlsShare | None, Plan | None]:
        """This edge's part now, with the certificates it can open."""
        found = plan(self.me, await self.store.view("nodes"), await self.store.view("routes"),
                     self.dead() if self.dead is not None else set(), self.http_port)
        if found is None:
            return None, None
        mine = found.share.issue
        load = []
        certs = await self.store.view("certs")
        self._opened = {k: v for k, v in self._opened.items()
                        if k in {c["id"] for c in certs}}  # superseded ones go
        for cert in certs:
            if cert["key"] in mine or self.me not in (cert.get("keys") or {}):
                continue
            opened = self._open(cert)
            if opened is not None:
                load.append(opened)
        share = TlsShare(found.share.issue, found.share.forward, tuple(load))
        return share, found

    def _open(self, cert: dict[str, Any]) -> LoadedCert | None:
        """The certificate with its key opened and checked to be the certificate's: Caddy
        refuses a whole config whose load_pem has a wrong key, so one bad publication (a
        damaged or hostile edge's) must not stop this edge from taking route changes."""
        if cert["id"] in self._opened:
            return self._opened[cert["id"]]
        try:
            key = open_sealed(self.identity, cert["keys"][self.me]).decode()
            opened = LoadedCert(cert["key"], chain_pem(cert["chain"]), key,
                                int(cert["not_after"]))
            key_matches(opened.cert_pem, key)
        except (SealError, ValueError, TypeError, UnsupportedAlgorithm) as exc:
            log.warning("edge: a published certificate cannot be opened; not served",
                        extra={"fields": {"host": cert["key"], "author": cert.get("author"),
                                          "error": str(exc)}})
            opened = None
        if opened is not None:
            self._opened[cert["id"]] = opened
        return opened

    async def step(self) -> None:
        share, found = await self.current()
        if share != self.applied:
            before = self.applied.issue if self.applied is not None else frozenset()
            if share is not None and share.issue - before:
                await self.seed(share.issue - before)
            await self.apply(share)
            self.applied = share
        if found is not None:
            await self.publish(found)

    async def seed(self, hosts: frozenset[str]) -> None:
        """Hosts this edge now issues (their issuer died or left): it starts from the
        certificate already published, put in its Caddy storage before Caddy manages the host,
        so the CA is asked only when the certificate is due for renewal."""
        for cert in await self.store.view("certs"):
            if cert["key"] not in hosts or self.me not in (cert.get("keys") or {}):
                continue
            if await asyncio.to_thread(issued, self.storage, cert["key"]) is not None:
                continue  # Caddy has one already (this edge issued the host before)
            opened = self._open(cert)
            if opened is not None:
                await asyncio.to_thread(seed, self.storage, self.acme_directory, opened.host,
                                        opened.cert_pem, opened.key_pem)
                log.info("edge: now issuing a host; starting from its published certificate",
                         extra={"fields": {"host": opened.host,
                                           "not_after_ms": opened.not_after}})

    async def publish(self, found: Plan) -> None:
        if not found.grant:  # a capability given before the views recorded its op
            if not self._told_no_grant:
                self._told_no_grant = True
                log.warning("edge: cannot publish certificates: the nodes view does not name "
                            "the op that made this node an edge; an admin gives the edge "
                            "capability again (formation node capabilities NODE --set edge)")
            return
        certs = {c["key"]: c for c in await self.store.view("certs")}
        to = recipients(self.me, found.edges)
        for host in sorted(found.share.issue):
            got = await asyncio.to_thread(issued, self.storage, host)
            if got is None or not needs_publishing(got, certs.get(host), self.me, to):
                continue
            payload = {"host": host, "route": found.routes[host], "edge": found.grant,
                       "chain": chain_der(got.cert_pem), "not_after": got.not_after,
                       "keys": {k: seal_to(k, got.key_pem.encode()) for k in to}}
            await self.store.append(KIND, payload)
            self.published.add((host, got.not_after))
            log.info("edge: published the certificate of a host this edge issues",
                     extra={"fields": {"host": host, "not_after_ms": got.not_after,
                                       "edges": len(to)}})

    async def run(self) -> None:
        unsubscribe = self.store.subscribe(self._on_ops)
        self._wake.set()
        try:
            while True:
                try:
                    async with asyncio.timeout(self.poll_s):
                        await self._wake.wait()
                except TimeoutError:
                    pass
                self._wake.clear()
                try:
                    await self.step()
                except Exception as exc:  # the next wake-up tries again; the edge serves on
                    log.warning("edge: shared certificates not updated",
                                extra={"fields": {"error": str(exc)}})
        finally:
            unsubscribe()
