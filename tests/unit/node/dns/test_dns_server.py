"""form-dns answers: the zone from the record source, others refused or forwarded. Real UDP and
TCP sockets on loopback, dnspython as the client."""

from __future__ import annotations

import asyncio
import random
import socket

import dns.asyncquery
import dns.flags
import dns.message
import dns.name
import dns.opcode
import dns.rcode
import pytest
from waiting import until

from formation.node.dns.records import StaticRecords
from formation.node.dns.server import DnsResolver, DnsServer


async def ask(server: DnsServer, name: str, rdtype: str = "A", tcp: bool = False):
    address, port = server.bound[0]
    query = dns.message.make_query(name, rdtype)
    if tcp:
        return await dns.asyncquery.tcp(query, address, port=port, timeout=3)
    return await dns.asyncquery.udp(query, address, port=port, timeout=3)


@pytest.fixture
async def server():
    async def from_store(name: str, network: str) -> list[str]:  # an async source works too
        return {("web", "net1"): ["10.88.1.10"], ("node1", "net1"): ["10.88.0.1"]}.get(
            (name, network), [])

    srv = DnsServer(DnsResolver(from_store, "fog", ttl_s=30))
    await srv.start(["127.0.0.1"], 0)
    yield srv
    await srv.stop()


async def test_answers_instances_and_nodes_over_udp_and_tcp(server: DnsServer) -> None:
    reply = await ask(server, "web.net1.fog")
    assert reply.rcode() == dns.rcode.NOERROR and reply.flags & dns.flags.AA
    assert [r.address for r in reply.answer[0]] == ["10.88.1.10"]
    assert reply.answer[0].ttl == 30
    reply = await ask(server, "NODE1.net1.fog", tcp=True)
    assert [r.address for r in reply.answer[0]] == ["10.88.0.1"]


async def test_unknown_names_and_other_types(server: DnsServer) -> None:
    assert (await ask(server, "nope.net1.fog")).rcode() == dns.rcode.NXDOMAIN
    assert (await ask(server, "a.b.net1.fog")).rcode() == dns.rcode.NXDOMAIN
    aaaa = await ask(server, "web.net1.fog", "AAAA")
    assert aaaa.rcode() == dns.rcode.NOERROR and not aaaa.answer
    assert (await ask(server, "example.com")).rcode() == dns.rcode.REFUSED


async def test_forwards_other_names_to_upstreams() -> None:
    upstream = DnsServer(DnsResolver(StaticRecords({("www", "corp"): ["192.0.2.7"]}), "example"))
    await upstream.start(["127.0.0.1"], 0)
    dead = "127.0.0.1:9"  # discard port: nothing answers DNS there
    forwarder = DnsServer(DnsResolver(StaticRecords(), "fog", upstreams=[
        dead, f"127.0.0.1:{upstream.bound[0][1]}"]))
    await forwarder.start(["127.0.0.1"], 0)
    try:
        reply = await ask(forwarder, "www.corp.example")
        assert [r.address for r in reply.answer[0]] == ["192.0.2.7"]
    finally:
        await forwarder.stop()
        await upstream.stop()
    only_dead = DnsResolver(StaticRecords(), "fog", upstreams=[dead])
    wire = await only_dead.answer(dns.message.make_query("x.example", "A").to_wire())
    assert wire is not None and dns.message.from_wire(wire).rcode() == dns.rcode.SERVFAIL


async def test_garbage_gets_formerr_or_nothing() -> None:
    resolver = DnsResolver(StaticRecords())
    assert await resolver.answer(b"\x01") is None
    wire = await resolver.answer(b"\x12\x34" + b"\x00" * 10 + b"\xff\xff")
    assert wire is not None and dns.message.from_wire(wire).rcode() == dns.rcode.FORMERR


async def test_a_failing_record_source_is_servfail() -> None:
    def broken(name: str, network: str) -> list[str]:
        raise RuntimeError("store unavailable")

    wire = await DnsResolver(broken).answer(dns.message.make_query("a.b.fog", "A").to_wire())
    assert wire is not None and dns.message.from_wire(wire).rcode() == dns.rcode.SERVFAIL


@pytest.fixture
async def ported():
    """An instance with ports (instance TTL) next to a node name (zone TTL)."""
    from formation.node.dns.records import Found

    def source(name: str, network: str) -> Found | list[str]:
        if (name, network) == ("web", "net1"):
            return Found(("10.88.1.10",), ((80, "tcp"), (53, "udp")), instance=True)
        return ["10.88.0.1"] if (name, network) == ("node1", "net1") else []

    srv = DnsServer(DnsResolver(source, "fog", ttl_s=30, instance_ttl_s=2))
    await srv.start(["127.0.0.1"], 0)
    yield srv
    await srv.stop()


async def test_instances_get_the_small_ttl_srv_and_txt(ported: DnsServer) -> None:
    reply = await ask(ported, "web.net1.fog")
    assert [r.address for r in reply.answer[0]] == ["10.88.1.10"] and reply.answer[0].ttl == 2
    assert (await ask(ported, "node1.net1.fog")).answer[0].ttl == 30
    srv = await ask(ported, "_80._tcp.web.net1.fog", "SRV")
    assert srv.flags & dns.flags.AA
    [record] = srv.answer[0]
    assert (record.port, record.target.to_text()) == (80, "web.net1.fog.")
    assert [r.address for r in srv.additional[0]] == ["10.88.1.10"]
    assert (await ask(ported, "_53._UDP.web.net1.fog", "SRV", tcp=True)).answer[0][0].port == 53
    for absent in ("_81._tcp.web.net1.fog", "_80._udp.web.net1.fog", "_80._tcp.node1.net1.fog",
                   "_x._tcp.web.net1.fog", "_99999999._tcp.web.net1.fog"):
        assert (await ask(ported, absent, "SRV")).rcode() == dns.rcode.NXDOMAIN, absent
    txt = await ask(ported, "web.net1.fog", "TXT")
    assert [s.decode() for s in txt.answer[0][0].strings] == ["80/tcp", "53/udp"]
    assert not (await ask(ported, "node1.net1.fog", "TXT")).answer


def _mutations(rng: random.Random) -> list[bytes]:
    good = [dns.message.make_query(n, t).to_wire() for n, t in (
        ("web.net1.fog", "A"), ("_80._tcp.web.net1.fog", "SRV"), ("x.example", "TXT"))]
    out = []
    for _ in range(1500):
        wire = bytearray(rng.choice(good))
        for _ in range(rng.randint(1, 6)):
            wire[rng.randrange(len(wire))] = rng.randrange(256)
        if rng.random() < 0.3:
            wire = wire[:rng.randrange(len(wire))]
        if rng.random() < 0.2:
            wire += rng.randbytes(rng.randrange(300))
        out.append(bytes(wire))
    return out + [rng.randbytes(rng.randrange(1, 600)) for _ in range(500)]


async def test_hostile_queries_get_an_error_code_or_nothing(ported: DnsServer) -> None:
    resolver = ported.resolver
    assert await resolver.answer(b"\x00" * 5000) is None  # oversized
    reply = dns.message.make_query("web.net1.fog", "A")
    reply.flags |= dns.flags.QR
    assert await resolver.answer(reply.to_wire()) is None  # a response: never answered
    two = dns.message.make_query("web.net1.fog", "A")
    two.question.append(two.question[0])
    assert dns.message.from_wire(await resolver.answer(two.to_wire())).rcode() == \
        dns.rcode.FORMERR
    notify = dns.message.make_query("web.net1.fog", "SOA")
    notify.set_opcode(dns.opcode.UPDATE)
    assert dns.message.from_wire(await resolver.answer(notify.to_wire())).rcode() == \
        dns.rcode.NOTIMP
    chaos = dns.message.make_query("web.net1.fog", "TXT", "CH")
    assert dns.message.from_wire(await resolver.answer(chaos.to_wire())).rcode() == \
        dns.rcode.REFUSED
    deep = dns.name.Name([b"a"] * 120 + [b"fog", b""])  # 120 labels, 241 bytes: legal, silly
    assert (await ask(ported, deep.to_text())).rcode() == dns.rcode.NXDOMAIN
    odd = dns.name.Name([b"w\x00\xffb", b"net1", b"fog", b""])
    assert (await ask(ported, odd.to_text())).rcode() == dns.rcode.NXDOMAIN
    for wire in _mutations(random.Random(16)):
        answer = await resolver.answer(wire)
        assert answer is None or dns.message.from_wire(answer).flags & dns.flags.QR
    address, port = ported.bound[0]
    for junk in (b"\x00\x00", b"\x00\x05hello"):  # not even a header: closed, no answer
        reader, writer = await asyncio.open_connection(address, port)
        writer.write(junk)
        assert await asyncio.wait_for(reader.read(), 5) == b"", junk
        writer.close()
    reader, writer = await asyncio.open_connection(address, port)
    writer.write(b"\x00\x0c" + b"\x12\x34" + b"\x01\x00" + b"\xff" * 8)  # 65535 questions
    reply = await asyncio.wait_for(reader.readexactly(2 + 12), 5)
    assert dns.message.from_wire(reply[2:]).rcode() == dns.rcode.FORMERR
    writer.close()
    assert (await ask(ported, "web.net1.fog")).answer  # still serving
    assert (await ask(ported, "web.net1.fog", tcp=True)).answer


async def test_one_source_cannot_take_every_buffer() -> None:
    """A client that floods with queries the server must wait on (a slow record source here;
    slow upstreams in life) gets MAX_INFLIGHT_PER_SOURCE of them in flight and no more; another
    source is still answered. Same for TCP connections held open."""
    from formation.node.dns import server as srv_mod

    release = asyncio.Event()

    async def source(name: str, network: str) -> list[str]:
        if name == "slow":
            await release.wait()
        return ["10.88.1.10"]

    server = DnsServer(DnsResolver(source))
    await server.start(["127.0.0.1"], 0)
    address, port = server.bound[0]
    flood = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    flood.bind(("127.0.0.1", 0))
    held: list[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = []
    try:
        for _ in range(srv_mod.MAX_INFLIGHT_PER_SOURCE * 3):
            flood.sendto(dns.message.make_query("slow.net1.fog", "A").to_wire(), (address, port))
        await until(lambda: server.udp_limits.dropped >= srv_mod.MAX_INFLIGHT_PER_SOURCE * 2)
        assert server.udp_limits.by_source == {"127.0.0.1": srv_mod.MAX_INFLIGHT_PER_SOURCE}
        other = dns.message.make_query("web.net1.fog", "A")
        reply = await dns.asyncquery.udp(other, address, port=port, timeout=3,
                                         source="127.0.0.2")
        assert [r.address for r in reply.answer[0]] == ["10.88.1.10"]

        for _ in range(srv_mod.MAX_TCP_PER_SOURCE + 1):
            held.append(await asyncio.open_connection(address, port))
        await until(lambda: server.tcp_limits.by_source.get("127.0.0.1") ==
                       srv_mod.MAX_TCP_PER_SOURCE)
        assert await asyncio.wait_for(held[-1][0].read(), 3) == b""  # the one over: closed
        reply = await dns.asyncquery.tcp(other, address, port=port, timeout=3,
                                         source="127.0.0.2")
        assert reply.answer
    finally:
        release.set()
        for _reader, writer in held:
            writer.close()
        flood.close()
        await server.stop()
