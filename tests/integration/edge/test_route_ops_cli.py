"""`formation route` end to end against a real `formation node` process: a tenant adds, lists and
removes a route with --node/--key (ops signed by the account key, relayed by the node); another
tenant's route for that hostname, or to that tenant's instance, a tcp route on a public port
another account's route holds, and the operator's malformed hostname are refused with one line
and exit 1, nothing written."""

from __future__ import annotations

import json
import subprocess
import sys

from statecluster import (
    NodeProc,
    call,
    one_node,  # noqa: F401  (the `node` fixture)
)

from formation.api import state_models as sm
from formation.api import state_routes as sr

IMAGE = "ab" * 32


def formation(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "formation", *args], capture_output=True,
                          text=True, timeout=60)


def one_line_failure(done: subprocess.CompletedProcess, words: str) -> None:
    assert done.returncode == 1, (done.stdout, done.stderr)
    assert words in done.stderr and len(done.stderr.strip().splitlines()) == 1, done.stderr


async def ops(node: NodeProc) -> int:
    return (await call(node, sr.state_heads)).ops


async def test_tenants_add_list_and_remove_routes_from_the_cli(node, short_tmp) -> None:
    await call(node, sr.state_create_network, sm.CreateNetworkRequest(name="lab"))
    where: dict[str, list[str]] = {}
    for name in ("alice", "bob"):
        key = short_tmp / "laptop" / f"{name}.key"
        assert formation("key", "create", str(key)).returncode == 0
        node.cli_json("account", "create", name, "--key", f"{key}.pub")
        where[name] = ["--node", f"127.0.0.1:{node.port}", "--key", str(key)]
        made = formation("tenant", "create", f"{name}-web", "--image", IMAGE, *where[name])
        assert made.returncode == 0, made.stderr

    added = formation("route", "add", "www.example.com", "--to", "alice-web", *where["alice"])
    assert added.returncode == 0, added.stderr
    assert added.stdout.startswith("routed www.example.com (http) for account alice")
    [mine] = json.loads(formation("route", "ls", "--json", *where["alice"]).stdout)["routes"]
    assert (mine["host"], mine["port"], mine["account"]) == ("www.example.com", 80, "alice")
    assert [b["name"] for b in mine["backends"]] == ["alice-web"]

    before = await ops(node)
    one_line_failure(formation("route", "add", "www.example.com", "--to", "bob-web:8080",
                               *where["bob"]),
                     "host: www.example.com is served for account 'alice'")
    one_line_failure(formation("route", "add", "bob.example.com", "--to", "alice-web",
                               *where["bob"]), "no such instance of your account")
    one_line_failure(node.cli("route", "add", "bad_host.example.com", "--to", "alice-web"),
                     "payload.host: expected a DNS name")
    assert await ops(node) == before
    assert json.loads(formation("route", "ls", "--json", *where["bob"]).stdout)["routes"] == []

    # tcp: bob's route takes a public port; alice asking for the same one is refused
    tcp = formation("route", "add", "db.example.com", "--to", "bob-web:5432", "--tcp", "6432",
                    *where["bob"])
    assert tcp.returncode == 0 and "(tcp" in tcp.stdout, (tcp.stdout, tcp.stderr)
    before = await ops(node)
    one_line_failure(formation("route", "add", "db.alice.example.com", "--to",
                               "alice-web:5432", "--tcp", "6432", *where["alice"]),
                     "listen: port 6432 is taken by the route for db.example.com")
    assert await ops(node) == before
    [bobs] = json.loads(formation("route", "ls", "--json", *where["bob"]).stdout)["routes"]
    assert (bobs["protocol"], bobs["listen"], bobs["port"]) == ("tcp", 6432, 5432)
    assert formation("route", "rm", "db.example.com", *where["bob"]).returncode == 0

    table = node.cli("route", "ls")
    assert table.returncode == 0 and "www.example.com" in table.stdout, table.stderr
    removed = formation("route", "rm", "www.example.com", *where["alice"])
    assert removed.returncode == 0 and removed.stdout.startswith("removed www.example.com")
    assert node.cli_json("route", "ls")["routes"] == []
