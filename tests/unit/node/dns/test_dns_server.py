"""form-dns answers: the zone from the record source, others refused or forwarded. Real UDP and
TCP sockets on loopback, dnspython as the client."""

from __future__ import annotations

import dns.asyncquery
import dns.flags
import dns.message
import dns.rcode
import pytest

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
