"""One lab for a test: brought up, handed over, taken down, and the test fails if anything of it
(namespaces, links, processes, mounts) is left behind. Also what the lab tests do on it as a
person would: the `formation` CLI inside a host, founding a network on h1 and joining others
to it with invites (the `network` fixture in tests/conftest.py)."""

from __future__ import annotations

import asyncio
import json
import subprocess
from collections.abc import AsyncIterator, Iterable, Iterator
from contextlib import asynccontextmanager, contextmanager
from typing import Any

from waiting import until

from formation.api import state_routes
from formation.lab import Lab
from formation.lab.lab import leftovers


def assert_nothing_left(lab_id: str) -> None:
    left = leftovers(lab_id)
    assert left == {k: [] for k in left}, f"lab {lab_id} left behind: {left}"


@contextmanager
def running_lab(hosts: int, **options: Any) -> Iterator[Lab]:
    instance = Lab(hosts, **options)
    instance.up()
    try:
        yield instance
    finally:
        instance.down()
        assert_nothing_left(instance.lab_id)


async def cli(lab: Lab, host: str, *args: str,
              timeout_s: float = 60) -> subprocess.CompletedProcess:
    """`formation ARGS` inside the host, as a person would type it."""
    return await asyncio.to_thread(lab.exec, host, ["formation", *args], capture_output=True,
                                   text=True, timeout=timeout_s)


async def invite(lab: Lab, expires: str = "10m") -> str:
    out = await cli(lab, "h1", "invite", "create", "--expires", expires, "--json")
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)["token"]


async def found(lab: Lab) -> None:
    out = await cli(lab, "h1", "network", "create", "lab", "--cidr", "10.42.0.0/16", "--json")
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["name"] == "lab"


@asynccontextmanager
async def asking_to_join(lab: Lab, host: str, *options: str,
                         wait_s: int = 60) -> AsyncIterator[asyncio.subprocess.Process]:
    """`formation join --request` on `host`: it asks h1 without a token and waits up to
    `wait_s` for an admin's decision; killed on the way out if it still waits."""
    argv = ["formation", "join", "--request", f"{lab.host('h1').address}:7170",
            "--wait", str(wait_s), *options]
    full, env = lab.exec_argv(host, argv)
    asker = await asyncio.create_subprocess_exec(*full, env=env, stdout=subprocess.PIPE,
                                                 stderr=subprocess.PIPE)
    try:
        yield asker
    finally:
        if asker.returncode is None:
            asker.kill()
            await asker.wait()


async def first_pending(lab: Lab) -> str | None:
    """The id of the first join request waiting on h1, if any."""
    out = await cli(lab, "h1", "join", "pending", "--json")
    pending = json.loads(out.stdout)["pending"]
    return pending[0]["id"] if pending else None


async def nodes_view(lab: Lab, host: str) -> dict[str, dict]:
    """The replicated nodes collection as `host` has it, by node name."""
    async with lab.client(host) as client:
        view = await client.call(state_routes.state_view, collection="nodes")
    return {str(n.get("name")): n for n in view.items}


async def found_and_join(lab: Lab, joiners: Iterable[str] = ("h2", "h3"),
                         fields: Iterable[str] = (), timeout_s: float = 60) -> dict[str, dict]:
    """h1 founds network 'lab', each joiner joins with a fresh invite; returns h1's nodes view
    once it holds h1 and every joiner, each with every one of `fields` set."""
    joiners, fields = list(joiners), list(fields)
    await found(lab)
    for host in joiners:
        out = await cli(lab, host, "join", await invite(lab))
        assert out.returncode == 0, out.stderr
    hosts = ["h1", *joiners]

    async def ready() -> dict[str, dict] | None:
        nodes = await nodes_view(lab, "h1")
        complete = all(h in nodes and all(nodes[h].get(f) for f in fields) for h in hosts)
        return nodes if complete else None

    return await until(ready, timeout_s, what=f"{hosts} in h1's nodes view with {fields}")
