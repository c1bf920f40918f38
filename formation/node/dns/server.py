"""The DNS server: UDP and TCP on the configured addresses, dnspython for the wire format.

Names in the zone (`<name>.<network>.<zone>`) are answered authoritatively from the record
source: A records, NXDOMAIN for unknown names, an empty answer for other types of known names.
Anything else goes to the configured upstreams, or is REFUSED when there are none."""

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
import dns.rcode
import dns.rdataclass
import dns.rdatatype
import dns.rrset

from formation.node.dns.records import RecordSource, lookup
from formation.node.net.host import LOCAL_HOST, NetHost

log = logging.getLogger(__name__)

UPSTREAM_TIMEOUT_S = 2.0
MAX_UDP_ANSWER = 512


class DnsResolver:
    """Turns one query into one answer; no sockets here, so it is testable on its own."""

    def __init__(self, source: RecordSource, zone: str = "fog", upstreams: list[str] | None = None,
                 ttl_s: int = 30) -> None:
        self.source = source
        self.zone = dns.name.from_text(zone)
        self.upstreams = list(upstreams or [])
        self.ttl_s = ttl_s

    async def answer(self, wire: bytes) -> bytes | None:
        """None for datagrams that are not DNS queries at all (no answer is better there)."""
        try:
            query = dns.message.from_wire(wire)
        except dns.exception.DNSException:
            return self._formerr(wire)
        if query.flags & dns.flags.QR or len(query.question) != 1:
            reply = dns.message.make_response(query)
            reply.set_rcode(dns.rcode.FORMERR)
            return reply.to_wire()
        question = query.question[0]
        if question.name.is_subdomain(self.zone):
            return (await self._authoritative(query)).to_wire()
        return await self._forward(query)

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
        question = query.question[0]
        reply = dns.message.make_response(query)
        reply.flags |= dns.flags.AA
        labels = question.name.relativize(self.zone).labels
        addresses: list[str] = []
        if len(labels) == 2:
            name, network = (label.decode(errors="replace").lower() for label in labels)
            try:
                addresses = await lookup(self.source, name, network)
            except Exception as exc:
                log.error("dns record source failed", exc_info=exc)
                reply.set_rcode(dns.rcode.SERVFAIL)
                return reply
        if not addresses:
            reply.set_rcode(dns.rcode.NXDOMAIN)
            return reply
        if question.rdtype in (dns.rdatatype.A, dns.rdatatype.ANY):
            reply.answer.append(dns.rrset.from_text_list(
                question.name, self.ttl_s, dns.rdataclass.IN, dns.rdatatype.A, addresses))
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


class _Udp(asyncio.DatagramProtocol):
    def __init__(self, resolver: DnsResolver, tasks: set[asyncio.Task]) -> None:
        self.resolver = resolver
        self.tasks = tasks
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport) -> None:
        self.transport = transport

    def datagram_received(self, data: bytes, addr) -> None:
        task = asyncio.get_running_loop().create_task(self._reply(data, addr))
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    async def _reply(self, data: bytes, addr) -> None:
        answer = await self.resolver.answer(data)
        if answer is None or self.transport is None:
            return
        if len(answer) > MAX_UDP_ANSWER:
            reply = dns.message.from_wire(answer)
            reply.flags |= dns.flags.TC
            reply.answer.clear()
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
        self.bound: list[tuple[str, int]] = []

    async def start(self, addresses: list[str], port: int) -> None:
        loop = asyncio.get_running_loop()
        try:
            for address in addresses:
                family = socket.AF_INET6 if ":" in address else socket.AF_INET
                udp = await self.host.socket(family, socket.SOCK_DGRAM)
                udp.bind((address, port))
                bound_port = udp.getsockname()[1]
                transport, _ = await loop.create_datagram_endpoint(
                    lambda: _Udp(self.resolver, self._tasks), sock=udp)
                self._transports.append(transport)
                tcp = await self.host.socket(family, socket.SOCK_STREAM)
                tcp.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                tcp.bind((address, bound_port))
                tcp.listen(64)
                self._servers.append(await asyncio.start_server(self._tcp_client, sock=tcp))
                self.bound.append((address, bound_port))
        except OSError:
            await self.stop()
            raise

    async def _tcp_client(self, reader: asyncio.StreamReader,
                          writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                async with asyncio.timeout(30):
                    header = await reader.readexactly(2)
                (length,) = struct.unpack("!H", header)
                answer = await self.resolver.answer(await reader.readexactly(length))
                if answer is None:
                    break
                writer.write(struct.pack("!H", len(answer)) + answer)
                await writer.drain()
        except (asyncio.IncompleteReadError, TimeoutError, ConnectionError):
            pass
        finally:
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
