"""Models of the tenant endpoints: an account's key drafts an op, signs it, and the node relays
it (docs/protocol.md, "Tenants"). The node never holds the tenant's secret."""

from typing import Any

from pydantic import Field

from formation.api.models import Model

TENANT_KINDS = ("instance.create", "instance.update", "instance.delete", "route.set",
                "route.remove", "image.add", "image.remove")


class DraftRequest(Model):
    kind: str = Field(description="one of " + ", ".join(TENANT_KINDS))
    payload: dict[str, Any]
    author: str | None = Field(None, pattern=r"^[0-9a-f]{64}$",
                               description="local callers only: the account key to draft for "
                               "(over TCP it is the key that signs the request)")


class Draft(Model):
    body: str = Field(description="the op body to sign, base64 (canonical CBOR): sign "
                      "'formation-state-op-v1' 0x00 || body with the account key")
    network: str
    author: str
    seq: int
    parents: list[str]
    hlc: list[int]
    kind: str
    payload: dict[str, Any]


class SignedOp(Model):
    op: str = Field(description="the signed envelope, base64: CBOR [body, signature]",
                    max_length=32 * 1024)


class Relayed(Model):
    id: str
    kind: str
    status: str = Field(description="accepted, or duplicate (this very op was written before)")


class TenantAccount(Model):
    name: str
    roles: list[str]
    quotas: dict[str, int]
    usage: dict[str, int] = Field(description="vcpus, memory_mb, disk_gb, instances of its "
                                  "live instances in this replica")


class TenantInstances(Model):
    account: str
    items: list[dict[str, Any]] = Field(description="the instances view, only the account's "
                                        "own (an admin account's: all)")


class TenantImages(Model):
    account: str
    items: list[dict[str, Any]] = Field(description="the images view (one element per "
                                        "image.add: key = digest, id = the add op, name, size, "
                                        "added_by, account), only the account's own (an admin "
                                        "account's: all)")
