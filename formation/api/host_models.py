"""Models of the host's own network as the node reports it: the interfaces an operator may pick
as the underlay (the enrollment screen's list)."""

from typing import Literal

from pydantic import Field

from formation.api.models import Model


class HostInterface(Model):
    name: str
    mac: str | None = Field(None, description="link-layer address; none for tun and loopback")
    up: bool = Field(description="administratively up (IFF_UP)")
    state: str = Field(description="operational state as the kernel reports it: up, down, "
                       "unknown, lowerlayerdown, ...")
    kind: str = Field(description="link kind (veth, bridge, wireguard, tun...); ether for a "
                      "plain network card")
    addresses: list[str] = Field(description="IPv4 addresses with prefix")
    role: Literal["candidate", "loopback", "formation"] = Field(
        description="candidate: may be the underlay; loopback; formation: the node's own mesh "
        "link, never the underlay")


class HostInterfaces(Model):
    interfaces: list[HostInterface] = Field(description="in the kernel's index order")
    networkd: bool = Field(description="systemd-networkd runs: an underlay change applies now "
                           "(otherwise at the next boot)")
