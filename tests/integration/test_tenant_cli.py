"""The tenant commands end to end against a real `formation node` process: a person makes a key
(0600, never overwritten), the node's admin creates the account with its public part and a
quota, and the person deploys, lists and deletes through the node's signed TCP API with
`--node`/`--key` or a profile; past the quota and after `account rm`, one line and exit 1."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys

from statecluster import (
    call,
    one_node,  # noqa: F401  (the `node` fixture)
)

from formation.api import state_models as sm
from formation.api import state_routes as sr

IMAGE = "ab" * 32


def formation(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "formation", *args], capture_output=True,
                          text=True, timeout=60, env=env)


async def test_a_person_deploys_with_a_key_an_admin_gave_an_account(node, short_tmp) -> None:
    await call(node, sr.state_create_network, sm.CreateNetworkRequest(name="lab"))
    key = short_tmp / "laptop" / "alice.key"
    made = formation("key", "create", str(key), "--json")
    assert made.returncode == 0, made.stderr
    public = json.loads(made.stdout)["public_key"]
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    assert (short_tmp / "laptop" / "alice.key.pub").read_text().strip() == public
    again = formation("key", "create", str(key))
    assert again.returncode != 0 and "refusing to overwrite" in again.stderr
    assert len(again.stderr.strip().splitlines()) == 1
    # the secret key file is never accepted where a public key goes
    secret = node.cli("account", "create", "alice", "--key", str(key))
    assert secret.returncode != 0 and "never the secret key file" in secret.stderr

    created = node.cli_json("account", "create", "alice", "--key", f"{key}.pub",
                            "--instances", "1")
    assert created["keys"] == [public] and created["quotas"] == {"instances": 1}
    assert [a["name"] for a in node.cli_json("account", "ls")["accounts"]] == ["alice"]

    where = ["--node", f"127.0.0.1:{node.port}", "--key", str(key)]
    deployed = formation("tenant", "create", "web", "--image", IMAGE, *where, "--json")
    assert deployed.returncode == 0, deployed.stderr
    assert json.loads(deployed.stdout)["status"] == "accepted"
    # a profile instead of flags
    config = short_tmp / "xdg"
    (config / "formation").mkdir(parents=True)
    (config / "formation" / "client.yaml").write_text(
        f"default: lab\nprofiles:\n  lab: {{node: '127.0.0.1:{node.port}', key: '{key}'}}\n")
    env = {**os.environ, "XDG_CONFIG_HOME": str(config)}
    listed = formation("tenant", "ls", "--json", env=env)
    assert listed.returncode == 0, listed.stderr
    assert [i["name"] for i in json.loads(listed.stdout)["items"]] == ["web"]
    over = formation("tenant", "create", "web2", "--image", IMAGE, env=env)
    assert over.returncode == 1 and "quota" in over.stderr
    assert len(over.stderr.strip().splitlines()) == 1
    shown = node.cli_json("account", "show", "alice")
    assert shown["usage"]["instances"] == 1
    raised = node.cli_json("account", "quota", "alice", "--instances", "2")
    assert raised["quotas"] == {"instances": 2}
    assert formation("tenant", "create", "web2", "--image", IMAGE, env=env).returncode == 0
    gone = formation("tenant", "rm", "web2", env=env)
    assert gone.returncode == 0, gone.stderr

    assert node.cli_json("account", "rm", "alice")["removed"] == "alice"
    refused = formation("tenant", "ls", env=env)
    assert refused.returncode == 1 and "unknown key" in refused.stderr
    names = [i["name"] for i in (await call(node, sr.state_view,
                                            collection="instances")).items]
    assert names == ["web"]
