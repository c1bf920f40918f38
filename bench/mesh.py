"""Mesh benchmark: throughput through wireguard-go configured by the node's backend versus
configured only with `wg`, the underlay, and how fast a peer set turns into handshakes and a
removal disappears from every config. Prints one JSON object.

    sudo .venv/bin/python bench/mesh.py [--quick]

Real wireguard-go in network namespaces (bench/testbed.py); needs root."""

from __future__ import annotations

import argparse
import asyncio
import json
import socket
import tempfile
import threading
import time
from pathlib import Path

from support.testbed import (  # bench/support/testbed.py (bench/ is on sys.path when run)
    SimHost,
    Testbed,
)

from formation.api import join_routes, mesh_routes, state_routes
from formation.api.join_models import JoinTokenRequest
from formation.api.state_models import AppendRequest
from formation.identity import NodeIdentity
from formation.lab import Lab
from formation.node.net.host import NetHost, call_in_netns
from formation.node.net.reconcile import DesiredPeer, MeshReconciler
from formation.node.net.wggo import WireGuardGoBackend

PORT = 51820
TCP_PORT = 5201
CHUNK = 256 * 1024


def _receiver(sock: socket.socket, counter: list[int], stop: threading.Event) -> None:
    conn, _ = sock.accept()
    conn.settimeout(1.0)
    with conn:
        while not stop.is_set():
            try:
                data = conn.recv(CHUNK)
            except TimeoutError:
                continue
            if not data:
                return
            counter[0] += len(data)


def _sender(sock: socket.socket, stop: threading.Event) -> None:
    payload = b"\0" * CHUNK
    with sock:
        while not stop.is_set():
            try:
                sock.sendall(payload)
            except OSError:
                return


async def tcp_mbps(src: NetHost, dst: NetHost, dst_ip: str, seconds: float) -> float:
    """A single TCP stream from src to dst for `seconds`, in threads (the GIL is released in
    send/recv). Counts bytes received in the timed window after a short warm-up."""
    listener = await asyncio.to_thread(call_in_netns, dst.netns, lambda: socket.socket())
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind((dst_ip, TCP_PORT))
    listener.listen(1)
    client = await asyncio.to_thread(call_in_netns, src.netns, lambda: socket.socket())
    counter, stop = [0], threading.Event()
    recv = threading.Thread(target=_receiver, args=(listener, counter, stop))
    recv.start()
    await asyncio.to_thread(client.connect, (dst_ip, TCP_PORT))
    send = threading.Thread(target=_sender, args=(client, stop))
    send.start()
    await asyncio.sleep(0.3)
    start_bytes, start = counter[0], time.monotonic()
    await asyncio.sleep(seconds)
    got, elapsed = counter[0] - start_bytes, time.monotonic() - start
    stop.set()
    await asyncio.to_thread(send.join)
    await asyncio.to_thread(recv.join)
    listener.close()
    return round(got * 8 / elapsed / 1e6, 1)


def mesh_ip(index: int) -> str:
    return f"10.88.0.{index + 1}"


async def bare_wg_pair(bed: Testbed, ids: list[NodeIdentity], tmp: Path) -> list:
    """wireguard-go configured only with `wg` and `ip`, as an operator would by hand."""
    procs = []
    hosts = list(bed.hosts.values())
    for i, host in enumerate(hosts):
        procs.append(await asyncio.create_subprocess_exec(
            *host.net.command(["wireguard-go", "-f", "wgbare0"]),
            stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL))
        sock = host.net.path("/run/wireguard/wgbare0.sock")
        for _ in range(250):
            if sock.exists():
                break
            await asyncio.sleep(0.02)
        keyfile = tmp / f"key{i}"
        keyfile.write_text(ids[i].wireguard_private_key + "\n")
        other = 1 - i
        await host.run("wg", "set", "wgbare0", "private-key", str(keyfile), "listen-port",
                       str(PORT + 1), "peer", ids[other].wireguard_public_key, "endpoint",
                       f"{hosts[other].underlay_ip}:{PORT + 1}", "allowed-ips",
                       f"10.89.0.{other + 1}/32")
        await host.run("ip", "addr", "add", f"10.89.0.{i + 1}/24", "dev", "wgbare0")
        await host.run("ip", "link", "set", "wgbare0", "up")
    return procs


async def backend_mesh(hosts: list[SimHost], ids: list[NodeIdentity],
                       keepalive: int = 0) -> tuple[list[WireGuardGoBackend], list]:
    backends = []
    for i, host in enumerate(hosts):
        backend = WireGuardGoBackend("formnet0", host.net)
        await backend.create(ids[i].wireguard_private_key, PORT)
        await backend.add_address(f"{mesh_ip(i)}/24")
        backends.append(backend)
    desired = [DesiredPeer(f"n{i}", ids[i].wireguard_public_key,
                           (f"{host.underlay_ip}:{PORT}",), (f"{mesh_ip(i)}/32",))
               for i, host in enumerate(hosts)]
    return backends, desired


async def all_handshaken(backends: list[WireGuardGoBackend], n: int) -> bool:
    for backend in backends:
        status = await backend.status()
        if sum(1 for p in status.peers if p.latest_handshake > 0) < n - 1:
            return False
    return True


async def poll(check, timeout_s: float, every_s: float = 0.01) -> float:
    start = time.monotonic()
    while not await check():
        if time.monotonic() - start > timeout_s:
            raise TimeoutError("benchmark condition not reached")
        await asyncio.sleep(every_s)
    return round(time.monotonic() - start, 3)


async def membership(n: int) -> tuple[float, float]:
    """(join_to_handshakes_s, membership_change_s) for n simulated hosts."""
    names = [f"h{i}" for i in range(n)]
    ids = [NodeIdentity.generate() for _ in names]
    async with Testbed(names) as bed:
        hosts = list(bed.hosts.values())
        backends, desired = await backend_mesh(hosts, ids)
        try:
            recs = [MeshReconciler(b, persistent_keepalive=25) for b in backends]
            start = time.monotonic()
            await asyncio.gather(*(r.reconcile(desired) for r in recs))
            await poll(lambda: all_handshaken(backends, n), 60)
            join = round(time.monotonic() - start, 3)
            leaving = ids[-1].wireguard_public_key

            async def gone() -> bool:
                for b in backends[:-1]:
                    if (await b.status()).peer(leaving) is not None:
                        return False
                return True

            start = time.monotonic()
            await asyncio.gather(*(r.reconcile(desired[:-1]) for r in recs[:-1]))
            await poll(gone, 30)
            change = round(time.monotonic() - start, 3)
            for r in recs:
                r.close()
        finally:
            for b in backends:
                await b.delete()
    return join, change


LAB_OVERRIDES = {"mesh": {"enabled": True, "backend": "wireguard-go", "status_interval_s": 1.0}}


async def lab_cli(lab: Lab, host: str, *args: str) -> str:
    out = await asyncio.to_thread(lab.exec, host, ["formation", *args], capture_output=True,
                                  text=True, timeout=120)
    if out.returncode != 0:
        raise RuntimeError(f"{host}: formation {' '.join(args)}: {out.stderr.strip()}")
    return out.stdout


async def lab_peers(lab: Lab, host: str) -> dict[str, float]:
    """WireGuard key -> latest handshake (Unix time; 0: never) of every peer of `host`."""
    async with lab.client(host) as client:
        status = await client.call(mesh_routes.mesh_status)
    return {p.public_key: p.latest_handshake.timestamp() if p.latest_handshake else 0.0
            for p in status.peers}


async def through_state(n: int) -> tuple[float, float]:
    """(join_to_handshakes_s, membership_change_s) through the state store, on a lab of real
    node processes: h1 founds, the others join with tokens; the last join is timed from its
    join request (what `formation join` sends) to every node having a handshake with every
    other, the newcomer's newer than that request. Then h1 removes the last node: the time
    until no other node has its peer."""
    lab = Lab(n, pretrust=False, node_overrides=LAB_OVERRIDES)
    await asyncio.to_thread(lab.up)
    try:
        names = [h.name for h in lab.hosts]
        await lab_cli(lab, names[0], "network", "create", "bench", "--cidr", "10.42.0.0/16")
        for name in names[1:-1]:
            await lab_cli(lab, name, "join", json.loads(await lab_cli(
                lab, names[0], "invite", "create", "--json"))["token"])
        leaving = json.loads(await lab_cli(lab, names[-1], "identity", "show", "--json"))
        wg_key = leaving["wireguard_public_key"]
        token = json.loads(await lab_cli(lab, names[0], "invite", "create", "--json"))["token"]
        started, wall = time.monotonic(), time.time()
        async with lab.client(names[-1], timeout_s=60) as client:  # the API `formation join` uses
            await client.call(join_routes.join_token, JoinTokenRequest(token=token))

        async def handshaken() -> bool:
            """Every node has a handshake with every other; with the newcomer, a new one
            (wireguard-go reports whole seconds, hence the second of slack). All nodes are
            asked at once: one after the other, a round of 10 took most of a second on a
            loaded machine, which the figure would include."""
            views = await asyncio.gather(*(lab_peers(lab, name) for name in names))
            for name, peers in zip(names, views, strict=True):
                if len(peers) < n - 1 or not all(peers.values()):
                    return False
                if name != names[-1] and peers.get(wg_key, 0.0) < wall - 1:
                    return False
            return True

        await poll(handshaken, 120, 0.1)
        join = round(time.monotonic() - started, 3)
        started = time.monotonic()
        async with lab.client(names[0]) as client:
            await client.call(state_routes.state_append, AppendRequest(
                kind="node.remove", payload={"node": leaving["public_key"]}))

        async def gone() -> bool:
            views = await asyncio.gather(*(lab_peers(lab, name) for name in names[:-1]))
            return all(wg_key not in peers for peers in views)

        await poll(gone, 60, 0.1)
        return join, round(time.monotonic() - started, 3)
    finally:
        await asyncio.to_thread(lab.down)


async def throughput(seconds: float, rounds: int) -> dict:
    ids = [NodeIdentity.generate() for _ in range(2)]
    async with Testbed(["x", "y"]) as bed:
        x, y = bed.hosts["x"], bed.hosts["y"]
        with tempfile.TemporaryDirectory(prefix="fm-bench-") as tmp:
            procs = await bare_wg_pair(bed, ids, Path(tmp))
            backends, desired = await backend_mesh([x, y], ids)
            recs: list[MeshReconciler] = []
            try:
                recs = [MeshReconciler(b) for b in backends]
                for r in recs:
                    await r.reconcile(desired)
                await poll(lambda: all_handshaken(backends, 2), 15)
                bare, mesh, under = [], [], []
                for round_ in range(rounds):  # interleaved, order alternating, so load from
                    pair = [(bare, "10.89.0.2"), (mesh, mesh_ip(1))]  # elsewhere hits both alike
                    for samples, ip in pair if round_ % 2 == 0 else reversed(pair):
                        samples.append(await tcp_mbps(x.net, y.net, ip, seconds))
                    under.append(await tcp_mbps(x.net, y.net, y.underlay_ip, seconds))
            finally:
                for r in recs:
                    r.close()
                for b in backends:
                    await b.delete()
                for p in procs:
                    p.terminate()
                    await p.wait()
    # best of the interleaved rounds: load from other work on the machine only ever slows a
    # round down, so the best round is the closest to what the path can do
    bare_mbps, mesh_mbps = max(bare), max(mesh)
    return {
        "bare_wg_mbps": bare_mbps, "mesh_mbps": mesh_mbps,
        "mesh_ratio": round(mesh_mbps / bare_mbps, 3) if bare_mbps else None,
        "underlay_mbps": max(under),
        "throughput_samples": {"bare_wg": bare, "mesh": mesh, "underlay": under},
    }


async def main(quick: bool) -> dict:
    sizes = [3] if quick else [3, 5, 10]
    result = await throughput(1.5 if quick else 4.0, 3)
    joins, changes, bare_joins, bare_changes = {}, {}, {}, {}
    for n in sizes:
        joins[str(n)], changes[str(n)] = await through_state(n)
        bare_joins[str(n)], bare_changes[str(n)] = await membership(n)
    largest = str(sizes[-1])
    result.update({
        "n": int(largest),
        "join_to_handshakes_s": joins[largest],
        "join_to_handshakes_by_n": joins,
        "membership_change_s": changes[largest],
        "membership_change_by_n": changes,
        "reconciler_to_handshakes_by_n": bare_joins,
        "reconciler_removal_by_n": bare_changes,
        "join_vs_reconciler_ratio": round(joins[largest] / bare_joins[largest], 2)
        if bare_joins[largest] else None,
        "notes": "Real wireguard-go in network namespaces on one machine. join_to_handshakes_s "
        "is measured on a lab of real node processes through the state store: from the last "
        "host's join request (POST /v1/join/token, what `formation join TOKEN` sends; CLI "
        "start-up excluded) (handshake, replication, its node record with "
        "WireGuard key and endpoints, address claim, every node re-planning its peers) to "
        "every node having a handshake newer than that call with every other; "
        "membership_change_s from an admin's node.remove request (POST /v1/state/ops) to "
        "the peer being gone from every other node's WireGuard config. The reconciler_* "
        "figures are the baseline from the same run without the state store (peer set handed "
        "to every reconciler at once). mesh_ratio compares the same wireguard-go binary "
        "configured by the node's backend vs by `wg`: a check that the "
        "backend adds no overhead, not a kernel-vs-userspace comparison. Throughput figures "
        "are the best of 3 interleaved single-stream TCP rounds (Python sender and receiver "
        "in threads) on a shared 2-core machine; single rounds vary by 2x.",
    })
    return result


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="N=3 and short runs (<1 min)")
    args = parser.parse_args()
    print(json.dumps(asyncio.run(main(args.quick)), indent=2))
