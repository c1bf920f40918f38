"""mDNS (python-zeroconf, IPv4 only): advertise `_formation._udp.local.` with this node's public
facts in TXT, browse for the others and feed what is found into the peer table.

mDNS is discovery, not liveness: zeroconf keeps a killed host's records for minutes, so a
goodbye only drops the `mdns` source, and membership decides who is alive."""

from __future__ import annotations

import asyncio
import logging
import socket
from collections.abc import Callable

from zeroconf import IPVersion, ServiceStateChange, Zeroconf
from zeroconf.asyncio import AsyncServiceBrowser, AsyncServiceInfo, AsyncZeroconf

from formation.api.discovery_models import Hello
from formation.discovery.peers import PeerTable
from formation.identity import node_id_for

log = logging.getLogger(__name__)

SERVICE_TYPE = "_formation._udp.local."
RESOLVE_TIMEOUT_MS = 3000


def txt_record(hello: Hello) -> dict[str, str]:
    """TXT keys are short: a record must fit one packet. See docs/protocol.md."""
    return {"id": hello.node_id, "net": hello.network, "pk": hello.public_key,
            "port": str(hello.api_port), "ver": hello.version, "name": hello.name}


def parse_txt(props: dict[str, str | None]) -> Hello | None:
    """A record whose id does not match its key, or that misses a field, is ignored."""
    try:
        hello = Hello(node_id=props["id"] or "", name=props.get("name") or "",
                      public_key=props["pk"] or "", network=props["net"] or "",
                      api_port=int(props["port"] or ""), version=props.get("ver") or "")
        key_matches = node_id_for(bytes.fromhex(hello.public_key)) == hello.node_id
    except (KeyError, ValueError, TypeError):
        return None
    return hello if key_matches and len(hello.public_key) == 64 else None


class MdnsDiscovery:
    def __init__(self, addresses: list[str], hello: Callable[[], Hello], peers: PeerTable) -> None:
        self.addresses = addresses
        self._hello = hello
        self.peers = peers
        self._zc: AsyncZeroconf | None = None
        self._browser: AsyncServiceBrowser | None = None
        self._info: AsyncServiceInfo | None = None
        self.advertised_network = ""
        self._resolving: set[asyncio.Task] = set()

    def _service_info(self) -> AsyncServiceInfo:
        hello = self._hello()
        self.advertised_network = hello.network
        return AsyncServiceInfo(
            SERVICE_TYPE, f"{hello.node_id}.{SERVICE_TYPE}",
            addresses=[_packed(a) for a in self.addresses], port=hello.api_port,
            properties=txt_record(hello), server=f"{hello.node_id}.local.",
        )

    async def readvertise_if_changed(self) -> bool:
        """Announces the TXT record again once this node founded or joined a network, so hosts
        browsing stop listing it as unenrolled."""
        if self._zc is None or self._hello().network == self.advertised_network:
            return False
        self._info = self._service_info()
        await (await self._zc.async_update_service(self._info))
        return True

    async def start(self) -> None:
        self._zc = AsyncZeroconf(interfaces=self.addresses, ip_version=IPVersion.V4Only)
        self._info = self._service_info()
        self._browser = AsyncServiceBrowser(self._zc.zeroconf, SERVICE_TYPE,
                                            handlers=[self._on_change])
        await (await self._zc.async_register_service(self._info))

    async def stop(self) -> None:
        for task in list(self._resolving):
            task.cancel()
        await asyncio.gather(*self._resolving, return_exceptions=True)
        if self._browser is not None:
            await self._browser.async_cancel()
        if self._zc is not None:
            if self._info is not None:
                await self._zc.async_unregister_service(self._info)
            await self._zc.async_close()

    def _on_change(self, zeroconf: Zeroconf, service_type: str, name: str,
                   state_change: ServiceStateChange) -> None:
        node_id = name.removesuffix("." + service_type)
        if state_change is ServiceStateChange.Removed:
            self.peers.forget_source(node_id, "mdns")
            return
        task = asyncio.get_running_loop().create_task(self._resolve(service_type, name))
        self._resolving.add(task)
        task.add_done_callback(self._resolving.discard)

    async def _resolve(self, service_type: str, name: str) -> None:
        info = AsyncServiceInfo(service_type, name)
        assert self._zc is not None  # browsing (the only caller) starts after it is made
        if not await info.async_request(self._zc.zeroconf, RESOLVE_TIMEOUT_MS):
            return
        hello = parse_txt(info.decoded_properties)
        addresses = info.parsed_addresses(IPVersion.V4Only)
        if hello is None or not addresses:
            log.warning("ignored a malformed mDNS record", extra={"fields": {"name": name}})
            return
        self.peers.observe("mdns", hello.node_id, hello.public_key,
                           f"{addresses[0]}:{info.port}", network=hello.network,
                           name=hello.name, version=hello.version)


def _packed(address: str) -> bytes:
    return socket.inet_aton(address)
