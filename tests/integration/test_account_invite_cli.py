"""Account invites end to end against a real `formation node` process on loopback TCP: the
admin invites a person into an account, the person runs `formation account join TOKEN` from
"their laptop" (a separate key directory and config home), which makes their key, joins it to
the account through the node's signed TCP API and saves a profile, after which `formation
tenant` commands work without flags. Hostile: a stranger's key without the token, a relay that
swaps its own key in, and a second use of the token are refused in one line, nothing written."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from nacl.signing import SigningKey
from statecluster import (
    NodeProc,
    call,
    one_node,  # noqa: F401  (the `node` fixture)
)

from formation.api import account_invite_models as im
from formation.api import account_invite_routes as air
from formation.api import state_models as sm
from formation.api import state_routes as sr
from formation.api.client import ApiError, NodeClient
from formation.discovery import account_token
from formation.discovery.account_token import proof_message
from formation.identity import NodeIdentity

IMAGE = "ab" * 32


def formation(*args: str, env: dict) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "formation", *args], capture_output=True,
                          text=True, timeout=60, env=env)


def one_line(result: subprocess.CompletedProcess) -> str:
    assert result.returncode == 1, (result.stdout, result.stderr)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    return lines[0]


async def log_count(node: NodeProc) -> int:
    return (await call(node, sr.state_status)).ops


async def test_a_person_joins_an_account_with_a_token_and_deploys(node, short_tmp) -> None:
    await call(node, sr.state_create_network, sm.CreateNetworkRequest(name="lab"))
    admin_key = NodeIdentity.generate()
    node.cli_json("account", "create", "alice", "--key", admin_key.public_key_hex,
                  "--instances", "2")
    made = node.cli_json("account", "invite", "alice", "--expires", "1h")
    token = made["token"]
    assert token.startswith("FMA1-") and made["endpoints"] == [f"127.0.0.1:{node.port}"]
    listed = node.cli_json("account", "invites", "alice")["items"]
    assert [i["invite_key"] for i in listed] == [made["invite_key"]]

    laptop = short_tmp / "laptop"
    env = {**os.environ, "XDG_CONFIG_HOME": str(laptop / "config")}
    key = laptop / "alice.key"
    joined = formation("account", "join", token.lower(), "--key", str(key), "--json", env=env)
    assert joined.returncode == 0, joined.stderr
    record = json.loads(joined.stdout)
    assert record["key_created"] is True and record["status"] == "accepted"
    assert record["profile"] == "alice" and record["default_profile"] is True
    shown = node.cli_json("account", "show", "alice")
    assert shown["keys"] == [admin_key.public_key_hex, record["key"]]
    assert node.cli_json("account", "invites", "alice")["items"] == []

    # the saved profile: tenant commands need no flags now
    whoami = formation("tenant", "whoami", "--json", env=env)
    assert whoami.returncode == 0, whoami.stderr
    assert json.loads(whoami.stdout)["name"] == "alice"
    deployed = formation("tenant", "create", "web", "--image", IMAGE, "--json", env=env)
    assert deployed.returncode == 0, deployed.stderr
    listed = formation("tenant", "ls", "--json", env=env)
    assert [i["name"] for i in json.loads(listed.stdout)["items"]] == ["web"]

    # the token is spent: another key cannot use it again
    before = await log_count(node)
    again = formation("account", "join", token, "--key", str(laptop / "other.key"), env=env)
    assert "no open invite" in one_line(again)
    assert await log_count(node) == before


async def test_hostile_redeems_are_refused_and_write_nothing(node, short_tmp) -> None:
    await call(node, sr.state_create_network, sm.CreateNetworkRequest(name="lab"))
    node.cli_json("account", "create", "alice", "--key", NodeIdentity.generate().public_key_hex)
    token = account_token.decode(node.cli_json("account", "invite", "alice")["token"])
    network = bytes.fromhex((await call(node, sr.state_status)).network)
    person, relay = NodeIdentity.generate(), NodeIdentity.generate()
    proof = token.invite_key.sign(proof_message(network, "alice", person.public_key_hex))
    before = await log_count(node)
    address = f"127.0.0.1:{node.port}"

    async def draft(who: NodeIdentity, request: im.RedeemRequest) -> ApiError:
        async with NodeClient.tcp(address, who) as client:
            with pytest.raises(ApiError) as caught:
                await client.call(air.account_redeem_draft, request)
        return caught.value

    # a stranger without the token: a proof by another key
    forged = SigningKey.generate().sign(proof_message(network, "alice", relay.public_key_hex))
    refused = await draft(relay, im.RedeemRequest(account="alice",
                                                  invite_key=token.invite_key_hex,
                                                  proof=forged.signature.hex()))
    assert refused.status == 403 and "payload.proof" in str(refused)
    # a relay that learned the person's proof and signs with its own key
    swapped = await draft(relay, im.RedeemRequest(account="alice",
                                                  invite_key=token.invite_key_hex,
                                                  proof=proof.signature.hex()))
    assert swapped.status == 403 and "payload.proof" in str(swapped)
    # another account than the invite's
    elsewhere = await draft(person, im.RedeemRequest(account="bob",
                                                     invite_key=token.invite_key_hex,
                                                     proof=proof.signature.hex()))
    assert elsewhere.status == 403 and "'alice'" in str(elsewhere)
    # the relay endpoint takes no op this node did not draft, nor another kind
    async with NodeClient.tcp(address, relay) as client:
        from formation.api import account_models as am

        with pytest.raises(ApiError) as caught:
            await client.call(air.account_redeem, am.SignedOp(op="AAAA"))
        assert caught.value.status == 400
    # and the admin-only routes refuse a stranger over TCP
    async with NodeClient.tcp(address, relay) as client:
        with pytest.raises(ApiError) as caught:
            await client.call(air.account_invite_create, im.AccountInviteRequest(), name="alice")
        assert caught.value.status in (401, 403)
    assert "\n" not in str(refused)
    assert await log_count(node) == before
    # the uninvite ends it: the person's own proof is refused afterwards
    node.cli_json("account", "uninvite", "alice", token.invite_key_hex)
    late = await draft(person, im.RedeemRequest(account="alice",
                                                invite_key=token.invite_key_hex,
                                                proof=proof.signature.hex()))
    assert late.status == 403 and "no open invite" in str(late)
    # a stranger guessing proofs meets the join door's throttle: 429 once its failures add up
    statuses = []
    for _ in range(12):
        guess = SigningKey.generate().sign(proof_message(network, "alice",
                                                         relay.public_key_hex))
        statuses.append((await draft(relay, im.RedeemRequest(
            account="alice", invite_key=token.invite_key_hex,
            proof=guess.signature.hex()))).status)
    assert set(statuses) <= {403, 429} and statuses[-1] == 429, statuses
    assert await log_count(node) == before + 1  # only the admin's uninvite was written
