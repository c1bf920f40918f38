"""Models of the route endpoints: public access to instances through the edge (issue 19). A
route is a `route.set` op in the store (docs/protocol.md "Routes"); the node resolves instance
names, refuses a hostname another account holds, and signs (or, for a tenant, drafts) the op."""

from typing import Literal

from pydantic import Field

from formation.api.models import Model

HOST = r"^(\*\.)?[a-z0-9][a-z0-9.-]{0,252}$"
RouteProtocol = Literal["http", "https", "tcp"]


class RouteSet(Model):
    host: str = Field(min_length=1, max_length=255,
                      description="a DNS name like www.example.com, or *.example.com")
    protocol: RouteProtocol = "http"
    port: int | None = Field(None, ge=1, le=65535,
                             description="the instances' port (one they EXPOSE); default: "
                             "their one exposed tcp port, else 80 for http/https")
    listen: int | None = Field(None, ge=1, le=65535,
                               description="tcp routes only: the edge's public port")
    to: list[str] = Field(default_factory=list, max_length=16,
                          description="instances by name, id or unique id prefix")
    prefix: str | None = Field(None, max_length=63,
                               description="instead of `to`: every instance whose name starts "
                               "with this (the account's own), as they come and go")
    account: str | None = Field(None, max_length=63,
                                description="the owning account (default: the instances' "
                                "account, if they share one)")


class RouteBackend(Model):
    instance: str = Field(description="the instance's id")
    name: str
    address: str | None = Field(description="its current address (None: not running)")
    healthy: bool | None = Field(None, description="as this node's edge last checked it "
                                 "(None: this node is no edge, or has not checked)")


class RouteInfo(Model):
    host: str
    protocol: RouteProtocol
    port: int
    listen: int | None = None
    instances: list[str] = Field(default_factory=list)
    prefix: str | None = None
    account: str | None = None
    author: str
    id: str = Field(description="the route.set op serving it")
    ops: list[str] = Field(description="every standing route.set op of this slot")
    shadowed: int = Field(0, description="routes of other accounts for this hostname, ignored")
    conflict: str | None = Field(None, description="why the edge leaves it out")
    backends: list[RouteBackend] = Field(default_factory=list)


class RouteList(Model):
    routes: list[RouteInfo]


class RouteRemoved(Model):
    host: str
    removed: list[str] = Field(description="the route.set ops removed")
