"""Accounts for the console's tests, written through a real node's API as an admin and a
tenant would: the network founded, `account.set` ops appended by the node (its admin), and an
instance created by an account's own key (drafted by the node, signed here, relayed). The
instances name an image that no node has: they stay pending, which is all the console needs
to show (no guest boots)."""

from __future__ import annotations

from formation.api import account_models as am
from formation.api import account_routes as ar
from formation.api import state_models as sm
from formation.api import state_routes as sr
from formation.api.client import NodeClient
from formation.identity import NodeIdentity
from formation.tenant_client import sign_draft

ALICE, BOB = (NodeIdentity.from_seed(bytes([i]) * 32) for i in (80, 81))
SPEC = {"image": "ab" * 32, "vcpus": 2, "memory_mb": 1024, "disk_gb": 5}
TIMEOUT_S = 9.5


async def found(client: NodeClient) -> None:
    await client.call(sr.state_create_network,
                      sm.CreateNetworkRequest(name="lab", cidr="10.42.0.0/16"))


async def append(client: NodeClient, kind: str, payload: dict) -> sm.StateOp:
    return await client.call(sr.state_append, sm.AppendRequest(kind=kind, payload=payload))


async def seed_accounts(client: NodeClient) -> None:
    """alice (user, quotas: 4 vCPUs, 2 instances) and bob (admin, no quotas)."""
    await append(client, "account.set", {"name": "alice", "keys": [ALICE.public_key_hex],
                                         "roles": ["user"],
                                         "quotas": {"vcpus": 4, "instances": 2}})
    await append(client, "account.set", {"name": "bob", "keys": [BOB.public_key_hex],
                                         "roles": ["admin"]})


async def tenant_create(client: NodeClient, who: NodeIdentity, account: str,
                        name: str) -> am.Relayed:
    """An instance.create signed by the account's key, relayed by the node (local socket)."""
    payload = {"name": name, "spec": SPEC, "account": account}
    draft = await client.call(ar.tenant_draft, am.DraftRequest(
        kind="instance.create", payload=payload, author=who.public_key_hex))
    signed = sign_draft(draft, who, "instance.create", payload)
    return await client.call(ar.tenant_submit, am.SignedOp(op=signed))


async def node_create(client: NodeClient, name: str) -> sm.StateOp:
    """Node-owned work: an instance.create the node writes for the network itself."""
    return await append(client, "instance.create", {"name": name, "spec": SPEC})


async def view(client: NodeClient, collection: str) -> list[dict]:
    return (await client.call(sr.state_view, collection=collection)).items
