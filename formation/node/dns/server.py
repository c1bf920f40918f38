"""The DNS server: UDP and TCP on the configured addresses, dnspython for the wire format.

Names in the zone (`<name>.<network>.<zone>`) are answered authoritatively from the record
source: A records (and a TXT listing the exposed ports), `_<port>._<proto>.<name>.<network>` SRV
records for an instance's ports, NXDOMAIN for unknown names, an empty answer for other types of
known names. Anything else goes to the configured upstreams, or is REFUSED when there are none.
Every source address gets a bounded share of the server's buffers (in-flight queries, TCP
connections), and no query, however malformed, gets more than an error code back."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import struct

import dns.asyncquery
import dns.exception
import dns.flags
import dns.message
import dns.name
import dns.opcode
import dns.rcode
import dns.rdataclass
import dns.rdatatype
import dns.rrset

from formation.node.dns.records import NOTHING, RecordSource, lookup
from formation.node.net.host import LOCAL_HOST, NetHost

log = logging.getLogger(__name__)

IP_FREEBIND = getattr(socket, "IP_FREEBIND", 15)  # Linux; Python names it from 3.12 on

UPSTREAM_TIMEOUT_S = 2.0
MAX_UDP_ANSWER = 512
MAX_QUERY_BYTES = 4096
# Buffers a client can fill: queries being answered (a forwarded one waits up to the upstream
# timeout) and TCP connections. Per source address, so one VM or peer flooding the resolver
# cannot take the others' share; beyond them queries are dropped, as a busy resolver does.
MAX_INFLIGHT_PER_SOURCE = 16
MAX_INFLIGHT = 256
MAX_TCP_PER_SOURCE = 4
MAX_TCP = 64
TCP_IDLE_S = 10.0


class DnsResolver:
    """Turns one query into one answer; no sockets here, so it is testable on its own."""

    def __init__(self, source: RecordSource, zone: str = "fog", upstreams: list[str] | None = None,
                 ttl_s: int = 30, instance_ttl_s: int = 2) -> None:
        self.source = source
        self.zone = dns.name.from_text(zone)
        self.upstreams = list(upstreams or [])
        self.ttl_s = ttl_s  # nodes and static names
        self.instance_ttl_s = instance_ttl_s  # instances move: a client re-asks within seconds

    async def answer(self, wire: bytes) -> bytes | None:
        """None for datagrams that are not DNS queries at all (no answer is better there).
        Whatever the bytes, this returns: a hostile query gets FORMERR, NOTIMP or nothing."""
        if len(wire) > MAX_QUERY_BYTES:  # one question and an OPT record never get near it
            return None
        try:
            query = dns.message.from_wire(wire)
        except Exception:  # dnspython's FormError and friends, or anything else it trips on
            return self._formerr(wire)
        if query.flags & dns.flags.QR:  # a response: answering it could loop two servers
            return None
        if len(query.question) != 1:
            return self._error(query, dns.rcode.FORMERR)
        if query.opcode() != dns.opcode.QUERY:
            return self._error(query, dns.rcode.NOTIMP)
        question = query.question[0]
        try:
            if question.name.is_subdomain(self.zone):
                return (await self._authoritative(query)).to_wire()
            return await self._forward(query)
        except Exception as exc:  # a bug must cost one answer, never the server
            log.error("dns answer failed", exc_info=exc)
            return self._error(query, dns.rcode.SERVFAIL)

    @staticmethod
    def _error(query: dns.message.Message, rcode: dns.rcode.Rcode) -> bytes | None:
        try:
            reply = dns.message.make_response(query)
            reply.set_rcode(rcode)
            return reply.to_wire()
        except Exception:
            return None

    @staticmethod
    def _formerr(wire: bytes) -> bytes | None:
        if len(wire) < 12:
            return None
        (qid,) = struct.unpack("!H", wire[:2])
        reply = dns.message.Message(id=qid)
        reply.flags = dns.flags.QR
        reply.set_rcode(dns.rcode.FORMERR)
        return reply.to_wire()

    async def _authoritative(self, query: dns.message.Message) -> dns.message.Message:
        """`name.network` answers A (and TXT listing the ports), `_port._proto.name.network`
        answers SRV pointing at `name.network` for each port the spec exposes."""
        question = query.question[0]
        reply = dns.message.make_response(query)
        if question.rdclass not in (dns.rdataclass.IN, dns.rdataclass.ANY):
            reply.set_rcode(dns.rcode.REFUSED)  # CHAOS "version.bind" and the like: not ours
            return reply
        reply.flags |= dns.flags.AA
        labels = [label.decode(errors="replace").lower()
                  for label in question.name.relativize(self.zone).labels]
        service: tuple[int, str] | None = None
        if len(labels) == 4 and labels[0][:1] == labels[1][:1] == "_":
            number, proto = labels[0][1:], labels[1][1:]
            service = (int(number), proto) if number.isdigit() and len(number) <= 5 else (0, "")
            labels = labels[2:]
        found = NOTHING
        if len(labels) == 2:
            try:
                found = await lookup(self.source, labels[0], labels[1])
            except Exception as exc:
                log.error("dns record source failed", exc_info=exc)
                reply.set_rcode(dns.rcode.SERVFAIL)
                return reply
        if not found.addresses or (service is not None and service not in found.ports):
            reply.set_rcode(dns.rcode.NXDOMAIN)
            return reply
        ttl = self.instance_ttl_s if found.instance else self.ttl_s
        rdtype, name = question.rdtype, question.name
        if service is not None:
            if rdtype in (dns.rdatatype.SRV, dns.rdatatype.ANY):
                target = dns.name.Name(question.name.labels[2:])
                reply.answer.append(dns.rrset.from_text_list(
                    name, ttl, dns.rdataclass.IN, dns.rdatatype.SRV,
                    [f"0 0 {service[0]} {target.to_text()}"]))
                reply.additional.append(dns.rrset.from_text_list(
                    target, ttl, dns.rdataclass.IN, dns.rdatatype.A, list(found.addresses)))
            return reply
        if rdtype in (dns.rdatatype.A, dns.rdatatype.ANY):
            reply.answer.append(dns.rrset.from_text_list(
                name, ttl, dns.rdataclass.IN, dns.rdatatype.A, list(found.addresses)))
        if found.ports and rdtype in (dns.rdatatype.TXT, dns.rdatatype.ANY):
            words = " ".join(f'"{port}/{proto}"' for port, proto in found.ports)
            reply.answer.append(dns.rrset.from_text_list(
                name, ttl, dns.rdataclass.IN, dns.rdatatype.TXT, [words]))
        return reply

    async def _forward(self, query: dns.message.Message) -> bytes:
        for upstream in self.upstreams:
            host, _, port = upstream.rpartition(":")
            try:
                reply = await dns.asyncquery.udp(
                    query, host.strip("[]"), timeout=UPSTREAM_TIMEOUT_S, port=int(port))
            except (dns.exception.DNSException, OSError) as exc:
                log.warning("dns upstream failed", extra={"fields": {
                    "upstream": upstream, "error": str(exc) or type(exc).__name__}})
                continue
            return reply.to_wire()
        reply = dns.message.make_response(query)
        reply.set_rcode(dns.rcode.SERVFAIL if self.upstreams else dns.rcode.REFUSED)
        return reply.to_wire()


class _Limits:
    """In-flight work per source address and in all; `take` says whether one more fits."""

    def __init__(self, per_source: int, total: int) -> None:
        self.per_source, self.total = per_source, total
        self.by_source: dict[str, int] = {}
        self.count = 0
        self.dropped = 0

    def take(self, source: str) -> bool:
        if self.count >= self.total or self.by_source.get(source, 0) >= self.per_source:
            self.dropped += 1
            return False
        self.by_source[source] = self.by_source.get(source, 0) + 1
        self.count += 1
        return True

    def give(self, source: str) -> None:
        self.count -= 1
        left = self.by_source[source] - 1
        if left:
            self.by_source[source] = left
        else:
            del self.by_source[source]


class _Udp(asyncio.DatagramProtocol):
    def __init__(self, resolver: DnsResolver, tasks: set[asyncio.Task], limits: _Limits) -> None:
        self.resolver = resolver
        self.tasks = tasks
        self.limits = limits
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport) -> None:
        self.transport = transport

    def datagram_received(self, data: bytes, addr) -> None:
        source = str(addr[0])
        if not self.limits.take(source):
            return
        task = asyncio.get_running_loop().create_task(self._reply(data, addr))
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)
        task.add_done_callback(lambda _t: self.limits.give(source))

    def error_received(self, exc: Exception) -> None:
        pass  # an ICMP error for an earlier reply: nothing to do, keep serving

    async def _reply(self, data: bytes, addr) -> None:
        answer = await self.resolver.answer(data)
        if answer is None or self.transport is None:
            return
        if len(answer) > MAX_UDP_ANSWER:
            reply = dns.message.from_wire(answer)
            reply.flags |= dns.flags.TC
            reply.answer.clear()
            reply.additional.clear()
            answer = reply.to_wire()
        self.transport.sendto(answer, addr)


class DnsServer:
    """Serves a DnsResolver on UDP and TCP sockets made in the host's network namespace."""

    def __init__(self, resolver: DnsResolver, host: NetHost = LOCAL_HOST) -> None:
        self.resolver = resolver
        self.host = host
        self._transports: list[asyncio.BaseTransport] = []
        self._servers: list[asyncio.Server] = []
        self._tasks: set[asyncio.Task] = set()
        self.udp_limits = _Limits(MAX_INFLIGHT_PER_SOURCE, MAX_INFLIGHT)
        self.tcp_limits = _Limits(MAX_TCP_PER_SOURCE, MAX_TCP)
        self.bound: list[tuple[str, int]] = []

    async def start(self, addresses: list[str], port: int, freebind: bool = False) -> None:
        """`freebind`: bind even though the address is not on an interface yet (IP_FREEBIND);
        queries are answered from the moment it appears, with no retry loop to race it."""
        loop = asyncio.get_running_loop()
        try:
            for address in addresses:
                family = socket.AF_INET6 if ":" in address else socket.AF_INET
                udp = await self.host.socket(family, socket.SOCK_DGRAM)
                if freebind:
                    udp.setsockopt(socket.SOL_IP, IP_FREEBIND, 1)
                udp.bind((address, port))
                bound_port = udp.getsockname()[1]
                transport, _ = await loop.create_datagram_endpoint(
                    lambda: _Udp(self.resolver, self._tasks, self.udp_limits), sock=udp)
                self._transports.append(transport)
                tcp = await self.host.socket(family, socket.SOCK_STREAM)
                tcp.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                if freebind:
                    tcp.setsockopt(socket.SOL_IP, IP_FREEBIND, 1)
                tcp.bind((address, bound_port))
                tcp.listen(64)
                self._servers.append(await asyncio.start_server(self._tcp_client, sock=tcp))
                self.bound.append((address, bound_port))
        except OSError:
            await self.stop()
            raise

    async def _tcp_client(self, reader: asyncio.StreamReader,
                          writer: asyncio.StreamWriter) -> None:
        peer = writer.get_extra_info("peername")
        source = str(peer[0]) if peer else "?"
        if not self.tcp_limits.take(source):
            writer.close()
            return
        try:
            while True:
                async with asyncio.timeout(TCP_IDLE_S):
                    header = await reader.readexactly(2)
                    (length,) = struct.unpack("!H", header)
                    query = await reader.readexactly(length)
                answer = await self.resolver.answer(query)
                if answer is None:
                    break
                writer.write(struct.pack("!H", len(answer)) + answer)
                await writer.drain()
        except (asyncio.IncompleteReadError, TimeoutError, ConnectionError):
            pass
        finally:
            self.tcp_limits.give(source)
            writer.close()

    async def stop(self) -> None:
        for transport in self._transports:
            transport.close()
        for server in self._servers:
            server.close()
            with contextlib.suppress(Exception):
                await server.wait_closed()
        for task in list(self._tasks):
            task.cancel()
        self._transports.clear()
        self._servers.clear()
        self.bound.clear()
