"""An account key held by a real OpenSSH ssh-agent, end to end against a real `formation node`
process on loopback TCP: the person prints the agent key's public part, the admin makes the
account with it, and `--key agent:` (or a profile naming the key by comment) deploys and lists
through the signed TCP API; the op on the node is authored by the agent's key. Another agent
key, not in the account, is refused in one line with nothing written, until alice grants it
(`grant agent:mallory@laptop`, signed in the agent) and it stops her instance with `--as`; a
shell with no agent is refused in one line."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from ssh_agents import start_agent
from statecluster import (
    NodeProc,
    call,
    one_node,  # noqa: F401  (the `node` fixture)
)

from formation.api import account_routes as ar
from formation.api import state_models as sm
from formation.api import state_routes as sr
from formation.api.client import NodeClient
from formation.client_profile import load_signer_async
from formation.tenant_client import relay

IMAGE = "ab" * 32
SPEC = {"image": IMAGE, "vcpus": 1, "memory_mb": 512, "disk_gb": 5}


@pytest.fixture
def agent(short_tmp):
    made = start_agent(short_tmp / "agent")
    yield made
    made.stop()


def formation(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "formation", *args], capture_output=True,
                          text=True, timeout=60, env=env)


async def _instances(node: NodeProc) -> list[dict]:
    return (await call(node, sr.state_view, collection="instances")).items


async def test_an_ssh_agent_key_deploys_through_the_signed_tcp_api(node, agent, short_tmp,
                                                                     monkeypatch) -> None:
    await call(node, sr.state_create_network, sm.CreateNetworkRequest(name="lab"))
    public = agent.add("alice", comment="alice@laptop")
    shown = formation("key", "create", "--ssh-agent", "--json", env=agent.env)
    assert shown.returncode == 0, shown.stderr
    assert json.loads(shown.stdout)["public_key"] == public
    created = node.cli_json("account", "create", "alice", "--key", public, "--instances", "2")
    assert created["keys"] == [public]

    where = ["--node", f"127.0.0.1:{node.port}", "--key", "agent:"]
    deployed = formation("tenant", "create", "web", "--image", IMAGE, *where, "--json",
                         env=agent.env)
    assert deployed.returncode == 0, deployed.stderr
    assert json.loads(deployed.stdout)["status"] == "accepted"
    [web] = await _instances(node)
    assert web["owner"] == public and web["account"] == "alice"

    # a second agent key, in no account: named explicitly, it is refused; nothing written
    agent.add("mallory", comment="mallory@laptop")
    taken = formation("tenant", "create", "evil", "--image", IMAGE, "--node",
                      f"127.0.0.1:{node.port}", "--key", "agent:mallory@laptop", env=agent.env)
    assert taken.returncode == 1 and len(taken.stderr.strip().splitlines()) == 1
    assert "unknown key" in taken.stderr
    # alice (agent key) grants mallory's agent key to stop web; mallory then acts for alice
    node_at = ["--node", f"127.0.0.1:{node.port}"]
    granted = formation("grant", "agent:mallory@laptop", "--allow", "stop", "--on", "web",
                        "--until", "1h", *node_at, "--key", "agent:alice@laptop", "--json",
                        env=agent.env)
    assert granted.returncode == 0, granted.stderr
    stopped = formation("tenant", "stop", "web", "--as", "alice", *node_at, "--key",
                        "agent:mallory@laptop", env=agent.env)
    assert stopped.returncode == 0, stopped.stderr
    [web] = await _instances(node)
    assert web["desired"] == "stopped"
    # two keys now: `agent:` alone must be told which
    several = formation("tenant", "ls", *where, env=agent.env)
    assert several.returncode == 1 and "name one" in several.stderr
    assert len(several.stderr.strip().splitlines()) == 1
    assert [i["name"] for i in await _instances(node)] == ["web"]

    # a profile naming the agent key by its comment
    config = short_tmp / "xdg"
    (config / "formation").mkdir(parents=True)
    (config / "formation" / "client.yaml").write_text(
        f"default: lab\nprofiles:\n  lab: {{node: '127.0.0.1:{node.port}', "
        "key: 'agent:alice@laptop'}\n")
    env = {**agent.env, "XDG_CONFIG_HOME": str(config)}
    listed = formation("tenant", "ls", "--json", env=env)
    assert listed.returncode == 0, listed.stderr
    assert [i["name"] for i in json.loads(listed.stdout)["items"]] == ["web"]

    # no agent in this shell: one line, nothing asked of the node
    bare = {k: v for k, v in env.items() if k != "SSH_AUTH_SOCK"}
    none = formation("tenant", "create", "web3", "--image", IMAGE, env=bare)
    assert none.returncode == 1 and "SSH_AUTH_SOCK is not set" in none.stderr
    assert len(none.stderr.strip().splitlines()) == 1

    # the library path: an op relayed by the node, signed in the agent, inside one event loop
    monkeypatch.setenv("SSH_AUTH_SOCK", str(agent.socket))
    signer = await load_signer_async("agent:alice@laptop")
    async with NodeClient.tcp(f"127.0.0.1:{node.port}", signer, timeout_s=20) as client:
        done = await relay(client, signer, "instance.create",
                           {"name": "db", "spec": SPEC, "account": "alice"})
        assert done.status == "accepted"
        me = await client.call(ar.tenant_account)
        assert me.name == "alice" and me.usage["instances"] == 2
    owners = {i["name"]: i["owner"] for i in await _instances(node)}
    assert owners == {"web": public, "db": public}
    assert os.environ["SSH_AUTH_SOCK"] == str(agent.socket)
