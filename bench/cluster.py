"""Cluster benchmark on the lab (needs root): discovery, gossip propagation, failure detection.

    python bench/cluster.py --quick      # N=3, under a minute
    python bench/cluster.py              # N=3, 5, 10

Prints one JSON object. Timestamps come from the nodes' own events (same machine clock), so
polling does not inflate them. No key is trusted in advance: h1 founds a network and every other
host joins it with `formation join TOKEN` (`join_s`); propagation is a real state write on h1
(a signed `dns.set` op) until it is applied on every other host."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import statistics
import time
from datetime import datetime

from formation.api import join_models as jm
from formation.api import join_routes as jr
from formation.api import p2p_routes, routes, state_routes
from formation.api import state_models as sm
from formation.lab import Lab

TARGET_P99_MS = 100.0
TARGET_DETECT_S = 3.0
PUBLISH_GAP_S = 0.05  # 20 messages/s: latency, not a throughput test


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


async def _first_events(lab: Lab, host: str, topic: str, want, timeout_s: float,
                        since: int | None = None) -> dict[str, datetime]:
    """Reads `host`'s events until `want.done(found)`; found maps a key to the event's time."""
    found: dict[str, datetime] = {}
    async with lab.client(host, timeout_s=timeout_s) as client:

        async def read() -> None:
            async for event in client.events(since=since, topic=topic):
                key = want(event)
                if key and key not in found:
                    found[key] = event.time
                if want.done(found):
                    return

        await asyncio.wait_for(read(), timeout_s)
    return found


class MdnsPeers:
    def __init__(self, count: int) -> None:
        self.count = count

    def __call__(self, event):
        return event.data.get("name") if "mdns" in event.data.get("sources", []) else None

    def done(self, found) -> bool:
        return len(found) >= self.count


class DeadEvents:
    def __init__(self, target: str) -> None:
        self.target = target

    def __call__(self, event):
        return "dead" if event.kind == "dead" and event.data.get("name") == self.target else None

    def done(self, found) -> bool:
        return "dead" in found


async def discovery_s(lab: Lab) -> float:
    """Node start -> it has seen every other host via mDNS; the slowest host counts."""
    names = [h.name for h in lab.hosts]
    worst = 0.0
    for name in names:
        async with lab.client(name) as client:
            started = (await client.call(routes.node_status)).started_at
        found = await _first_events(lab, name, "discovery", MdnsPeers(len(names) - 1), 60,
                                    since=0)
        worst = max(worst, max((t - started).total_seconds() for t in found.values()))
    return worst


async def _heads(lab: Lab, host: str) -> list[str]:
    async with lab.client(host) as client:
        return (await client.call(state_routes.state_heads)).heads


async def _all_alive(lab: Lab) -> bool:
    for host in lab.hosts:
        async with lab.client(host.name) as client:
            members = (await client.call(p2p_routes.members)).members
        if len([m for m in members if m.state == "alive"]) != len(lab.hosts) - 1:
            return False
    return True


async def join_all(lab: Lab) -> list[float]:
    """h1 founds the network; each other host in turn runs `formation join TOKEN` (the CLI in
    its namespaces); the time from starting the command until the joiner's state heads equal
    h1's. Then waits until every host sees every other alive."""
    async with lab.client("h1") as h1:
        await h1.call(state_routes.state_create_network,
                      sm.CreateNetworkRequest(name="bench", cidr="10.42.0.0/16"))
    times = []
    for host in lab.hosts[1:]:
        async with lab.client("h1") as h1:
            token = (await h1.call(jr.invite_create, jm.InviteRequest(expires_s=600))).token
        start = time.perf_counter()
        out = await asyncio.to_thread(lab.exec, host.name, ["formation", "join", token],
                                      capture_output=True, text=True, timeout=60)
        if out.returncode != 0:
            raise RuntimeError(f"{host.name}: formation join failed: {out.stderr.strip()}")
        for _poll in range(3000):  # every 20 ms, at most a minute
            if await _heads(lab, host.name) == await _heads(lab, "h1"):
                break
            await asyncio.sleep(0.02)
        else:
            raise RuntimeError(f"{host.name}: state not converged a minute after joining")
        times.append(time.perf_counter() - start)
    deadline = time.monotonic() + 60
    while not await _all_alive(lab):
        if time.monotonic() > deadline:
            raise RuntimeError("after joining, not every host sees every other alive")
        await asyncio.sleep(0.2)
    return times


async def propagation_ms(lab: Lab, messages: int) -> tuple[list[float], int]:
    """A state write on h1 (`dns.set`, signed, applied and committed there); each other host's
    `state` event for that op (applied to its replica) minus the time the write was sent."""
    others = [h.name for h in lab.hosts[1:]]
    sent: dict[str, float] = {}
    arrivals: list[tuple[str, float]] = []
    all_arrived = asyncio.Event()
    clients = {name: lab.client(name, timeout_s=60) for name in others}

    async def watch(name: str) -> None:
        async for event in clients[name].events(topic="state"):
            if event.kind != "dns.set":
                continue
            arrivals.append((event.data["id"], event.time.timestamp()))
            if len(arrivals) >= messages * len(others):
                all_arrived.set()

    watchers = [asyncio.create_task(watch(n)) for n in others]
    await asyncio.sleep(0.5)
    async with lab.client("h1") as h1:
        for i in range(messages):
            before = time.time()
            op = await h1.call(state_routes.state_append, sm.AppendRequest(
                kind="dns.set", payload={"name": f"bench{i}", "type": "TXT", "value": "x"}))
            sent[op.id] = before
            await asyncio.sleep(PUBLISH_GAP_S)
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(all_arrived.wait(), 10)
    for watcher in watchers:
        watcher.cancel()
    await asyncio.gather(*watchers, return_exceptions=True)
    for client in clients.values():
        await client.close()
    expected = messages * len(others)
    return [(at - sent[ident]) * 1000 for ident, at in arrivals if ident in sent], expected


async def failure_detect_s(lab: Lab) -> float:
    """SIGKILL the last host; the time until every other host has marked it dead."""
    victim = lab.hosts[-1].name
    watchers = []
    for host in lab.hosts[:-1]:
        async with lab.client(host.name) as client:
            members = await client.call(p2p_routes.members)
        if not all(m.state == "alive" for m in members.members):
            raise RuntimeError(f"{host.name} does not see everyone alive before the kill")
        watchers.append(asyncio.create_task(
            _first_events(lab, host.name, "membership", DeadEvents(victim), 30)))
    await asyncio.sleep(0.5)
    killed = time.time()
    await asyncio.to_thread(lab.kill, victim)
    results = await asyncio.gather(*watchers)
    return max(found["dead"].timestamp() - killed for found in results)


async def api_rtt_ms(lab: Lab, count: int = 50) -> float:
    """Baseline: one local API round trip to a lab node over its unix socket, p50."""
    samples = []
    async with lab.client("h1") as client:
        for _ in range(count):
            start = time.perf_counter()
            await client.call(routes.health)
            samples.append((time.perf_counter() - start) * 1000)
    return statistics.median(samples)


async def run_one(count: int, messages: int) -> dict:
    async with Lab(count, pretrust=False) as lab:
        disc = await discovery_s(lab)
        joins = await join_all(lab)
        baseline = await api_rtt_ms(lab)
        prop, expected = await propagation_ms(lab, messages)
        detect = await failure_detect_s(lab)
    p50, p99 = _pct(prop, 0.5), _pct(prop, 0.99)
    return {
        "n": count,
        "discovery_s": round(disc, 3),
        "join_s": round(statistics.median(joins), 3),
        "join_max_s": round(max(joins), 3),
        "propagation_p50_ms": round(p50, 2),
        "propagation_p99_ms": round(p99, 2),
        "failure_detect_s": round(detect, 3),
        "baseline_api_rtt_p50_ms": round(baseline, 2),
        "ratios": {
            "propagation_p50_vs_baseline_api_rtt": round(p50 / baseline, 2),
            "propagation_p99_vs_target_100ms": round(p99 / TARGET_P99_MS, 3),
            "failure_detect_vs_target_3s": round(detect / TARGET_DETECT_S, 3),
        },
        "propagation_delivered": f"{len(prop)}/{expected}",
    }


NOTES = {
    "join_s": "median over hosts h2..hN joining one after another: start of the `formation "
              "join TOKEN` process in the host (includes the CLI's Python start-up) -> the "
              "joiner's state heads equal h1's; join_max_s the slowest",
    "propagation": "percentiles over delivered writes (a miss is reported in "
                   "propagation_delivered, not timed); a `dns.set` op appended on h1 every "
                   "50 ms through its API until the `state` event (op applied to the replica) "
                   "on each other host (node timestamps); carried by the store's direct push",
    "discovery_s": "per host: node started_at -> its discovery event naming the last other "
                   "host seen via mDNS; the slowest host",
    "failure_detect_s": "SIGKILL of the last host -> the last other host's `dead` event; "
                        "membership defaults: 1 s heartbeats, suspect 2 s, dead 2.5 s",
}


def main() -> None:
    parser = argparse.ArgumentParser(description="Cluster benchmark on the lab (needs root).")
    parser.add_argument("--quick", action="store_true", help="N=3 only (under a minute)")
    args = parser.parse_args()
    if os.geteuid() != 0:
        print(json.dumps({"skipped": "needs root: the lab creates namespaces"}))
        return
    sizes, messages = ([3], 30) if args.quick else ([3, 5, 10], 100)
    runs = [asyncio.run(run_one(n, messages)) for n in sizes]
    result = dict(runs[-1])
    if len(runs) > 1:
        result["by_n"] = runs
    result["notes"] = NOTES
    print(json.dumps(result))


if __name__ == "__main__":
    main()
