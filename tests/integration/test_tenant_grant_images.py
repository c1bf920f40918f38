"""Grants over images on a real `formation node` process, through its signed TCP API and the
CLI: alice lets a CI key deploy images under prefix ci- (`formation grant --allow image.add
--prefix ci-`); the CI key adds `ci-web` for alice with `formation tenant image-add --as alice`,
and the image is alice's. Outside the prefix it is refused with one line (by the CLI, and by
the rules when relayed by hand: 403), nothing written; after `formation revoke` the key is
refused at once."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from statecluster import (
    NodeProc,
    call,
    one_node,  # noqa: F401  (the `node` fixture)
)

from formation.api import state_models as sm
from formation.api import state_routes as sr
from formation.api.client import ApiError, NodeClient
from formation.client_profile import load_key
from formation.commands.tenant_images import manifest
from formation.tenant_client import relay


def formation(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "formation", *args], capture_output=True,
                          text=True, timeout=60)


def one_line_failure(*args: str) -> str:
    done = formation(*args)
    assert done.returncode == 1, (done.stdout, done.stderr)
    assert len(done.stderr.strip().splitlines()) == 1, done.stderr
    return done.stderr


async def _images(node: NodeProc) -> list[dict]:
    return (await call(node, sr.state_view, collection="images")).items


async def test_a_ci_key_deploys_images_under_its_prefix_for_the_account(node, short_tmp) -> None:
    await call(node, sr.state_create_network, sm.CreateNetworkRequest(name="lab"))
    alice, ci = short_tmp / "alice.key", short_tmp / "ci.key"
    for key in (alice, ci):
        assert formation("key", "create", str(key)).returncode == 0
    node.cli_json("account", "create", "alice", "--key", f"{alice}.pub")
    where = ["--node", f"127.0.0.1:{node.port}"]
    granted = formation("grant", f"{ci}.pub", "--allow", "image.add,image.remove,create",
                        "--prefix", "ci-", "--until", "2h", *where, "--key", str(alice),
                        "--json")
    assert granted.returncode == 0, granted.stderr
    grant_id = json.loads(granted.stdout)["id"]
    kernel = short_tmp / "vmlinux"
    kernel.write_bytes(b"a kernel")

    added = formation("tenant", "image-add", "ci-web", "--kernel", str(kernel), "--as",
                      "alice", *where, "--key", str(ci), "--json")
    assert added.returncode == 0, added.stderr
    [image] = await _images(node)
    assert (image["name"], image["account"]) == ("ci-web", "alice")
    listed = formation("tenant", "images", *where, "--key", str(alice), "--json")
    assert [i["name"] for i in json.loads(listed.stdout)["items"]] == ["ci-web"]

    # outside the prefix: the CLI finds no grant; relayed by hand, the rules refuse it
    assert "no live grant" in one_line_failure("tenant", "image-add", "web", "--kernel",
                                               str(kernel), "--as", "alice", *where,
                                               "--key", str(ci))
    ci_id = load_key(ci)
    async with NodeClient.tcp(f"127.0.0.1:{node.port}", ci_id, timeout_s=20) as client:
        with pytest.raises(ApiError) as caught:
            await relay(client, ci_id, "image.add", {
                **manifest("web", {"kernel": str(kernel)}, ""), "grant": grant_id,
                "account": "alice"})
    assert caught.value.status == 403 and "does not allow image.add" in \
        caught.value.body.message and "\n" not in caught.value.body.message
    assert len(await _images(node)) == 1  # nothing written

    assert formation("revoke", grant_id[:12], *where, "--key", str(alice)).returncode == 0
    assert "unknown key" in one_line_failure("tenant", "image-add", "ci-db", "--kernel",
                                             str(kernel), "--as", "alice", *where,
                                             "--key", str(ci))
    assert len(await _images(node)) == 1
