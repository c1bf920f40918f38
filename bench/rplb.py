"""Benchmark (issue 19): the edge's data path on loopback, as root or not.

The edge is the node's own engine code (formation/node/edge: Caddy from Debian, per-route access
log streamed to this process, which sums it as the node does). The backends are Caddy processes
answering a fixed 1 KiB body (a fast stand-in for a workload, so what is measured is the proxy,
not a slow backend). The load generator is Debian's `wrk`, the same for both sides, alternated
in the same run:

- proxy_rps / direct_rps (proxy_ratio, target >= 0.8) and p99_ms through the proxy;
- failover_s: one of two backends killed under load -> the last failed request (0: none failed,
  retries and passive health hid it), and health_out_s: kill -> the engine's active health
  check marks it down;
- route_apply_ms: the engine's apply call for a new route -> its first answer. The route ops
  (`route.set`) do not exist yet: op written -> served will add the store's replication to this.
- haproxy_rps (Debian's haproxy 2.6 on the same backend, when installed): the alternative
  engine's throughput, for the choice in docs/operations.md;
- proxy_rps_without_route_metrics: the same engine with per-route metrics off (what logging
  every request to the node costs);
- python_backend_*: the same through-proxy vs direct pair with a backend that costs what a small
  Python (aiohttp) workload costs per request, where the proxy is not the bottleneck.

Prints one JSON object. `--quick`: 2 rounds of 3 s; otherwise 3 rounds of 8 s."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import re
import shutil
import socket
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import aiohttp
from support import cpu_account
from support.cpu_account import Account

from formation.node.edge.engine import CaddyEngine
from formation.node.edge.routes import Backend, Route
from formation.node.edge.settings import EdgeSettings

HOST = "www.bench.test"
PY_HOST = "py.bench.test"
BODY = b"x" * 1023 + b"\n"
CONNECTIONS = 32
THREADS = 1  # wrk: one thread, so the proxy and backend get the other core
US = 1e6  # cpu_per_request is in CPU microseconds per request


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def start_backend(work: Path, port: int) -> asyncio.subprocess.Process:
    """A Caddy answering BODY on every path (admin off, nothing persisted)."""
    config = work / f"backend-{port}.json"
    config.write_text(json.dumps({
        "admin": {"disabled": True, "config": {"persist": False}},
        "logging": {"logs": {"default": {"level": "ERROR"}}},
        "apps": {"http": {"servers": {"backend": {
            "listen": [f"127.0.0.1:{port}"], "automatic_https": {"disable": True},
            "routes": [{"handle": [{"handler": "static_response",
                                    "body": BODY.decode()}]}]}}}}}))
    env = {**os.environ, "HOME": str(work), "XDG_DATA_HOME": str(work),
           "XDG_CONFIG_HOME": str(work)}
    process = await asyncio.create_subprocess_exec(
        "caddy", "run", "--config", str(config), stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL, env=env)
    await wait_answering(f"http://127.0.0.1:{port}/", "backend")
    return process


def serve_backend(port: int) -> None:
    """The Python backend (`--serve-backend PORT`): aiohttp answering BODY."""
    from aiohttp import web

    async def handler(_: web.Request) -> web.Response:
        return web.Response(body=BODY)

    app = web.Application()
    app.router.add_get("/", handler)
    web.run_app(app, host="127.0.0.1", port=port, print=None, access_log=None)


async def start_python_backend(port: int) -> asyncio.subprocess.Process:
    process = await asyncio.create_subprocess_exec(
        sys.executable, __file__, "--serve-backend", str(port), stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL)
    await wait_answering(f"http://127.0.0.1:{port}/", "python backend")
    return process


async def start_haproxy(work: Path, port: int, backend_port: int) -> asyncio.subprocess.Process:
    config = work / "haproxy.cfg"
    config.write_text(f"""global
    maxconn 4096
defaults
    mode http
    timeout connect 5s
    timeout client 30s
    timeout server 30s
frontend edge
    bind 127.0.0.1:{port}
    default_backend www
backend www
    balance roundrobin
    option httpchk GET /
    server b1 127.0.0.1:{backend_port} check inter 1s
""")
    process = await asyncio.create_subprocess_exec(
        "haproxy", "-db", "-f", str(config), stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL)
    await wait_answering(f"http://127.0.0.1:{port}/", "haproxy")
    return process


async def wait_answering(url: str, what: str, host: str | None = None,
                         timeout_s: float = 20.0) -> float:
    """Seconds until `url` answers 200 (polling every 5 ms)."""
    start = time.monotonic()
    headers = {"Host": host} if host else {}
    async with aiohttp.ClientSession() as session:
        while True:
            with contextlib.suppress(aiohttp.ClientError, OSError):
                async with session.get(url, headers=headers) as response:
                    if response.status == 200:
                        await response.read()
                        return time.monotonic() - start
            if time.monotonic() - start > timeout_s:
                raise RuntimeError(f"{what} did not answer {url} within {timeout_s:g} s")
            await asyncio.sleep(0.005)


def _ms(value: str) -> float:
    number, unit = float(value[:-2] if value.endswith(("us", "ms")) else value[:-1]), value
    if unit.endswith("us"):
        return number / 1000
    if unit.endswith("ms"):
        return number
    return number * 1000  # seconds


async def wrk(url: str, seconds: float, host: str | None = None) -> dict[str, float]:
    args = ["wrk", f"-t{THREADS}", f"-c{CONNECTIONS}", f"-d{seconds:g}s", "--latency", url]
    if host:
        args[1:1] = ["-H", f"Host: {host}"]
    process = await asyncio.create_subprocess_exec(
        *args, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await process.communicate()
    text = out.decode()
    rps = re.search(r"Requests/sec:\s+([\d.]+)", text)
    p99 = re.search(r"^\s+99%\s+(\S+)", text, re.MULTILINE)
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", text)
    if not rps or not p99:
        raise RuntimeError(f"wrk: no result: {text} {err.decode()}")
    total = re.search(r"(\d+) requests in", text)
    return {"rps": float(rps.group(1)), "p99_ms": _ms(p99.group(1)),
            "requests": float(total.group(1)) if total else 0.0,
            "non_2xx": float(errors.group(1)) if errors else 0.0}


def run_roles(runs: dict[str, tuple[str, str | None]], backend: int, py_backend: int,
              edge: int, bare: int, haproxy: int | None) -> dict[str, dict[str, Any]]:
    """The processes of each run's chain. wrk is this script's only child that exits during a
    round; the edge with route metrics streams every request's log line to this process, which
    sums it as the node would (`log_reader`)."""
    wrk_role = cpu_account.reaped_children
    out: dict[str, dict[str, Any]] = {
        "direct": {"wrk": wrk_role(), "backend": cpu_account.of_pids(backend)},
        "proxy": {"wrk": wrk_role(), "backend": cpu_account.of_pids(backend),
                  "caddy": cpu_account.of_pids(edge), "log_reader": cpu_account.of_self()},
        "proxy_bare": {"wrk": wrk_role(), "backend": cpu_account.of_pids(backend),
                       "caddy": cpu_account.of_pids(bare)},
        "py_direct": {"wrk": wrk_role(), "backend": cpu_account.of_pids(py_backend)},
        "py_proxy": {"wrk": wrk_role(), "backend": cpu_account.of_pids(py_backend),
                     "caddy": cpu_account.of_pids(edge), "log_reader": cpu_account.of_self()},
    }
    if haproxy is not None:
        out["haproxy"] = {"wrk": wrk_role(), "backend": cpu_account.of_pids(backend),
                          "haproxy": cpu_account.of_pids(haproxy)}
    return {name: out[name] for name in runs}


def equal_cores(check: dict[str, dict[str, float | None]]) -> dict[str, float]:
    """Each proxied chain's CPU bound over its direct chain's: the ratio when both get the same
    cores, whatever else runs on the machine (HAProxy's and the Python backend's too)."""
    pairs = {"proxy": "direct", "proxy_bare": "direct", "haproxy": "direct",
             "py_proxy": "py_direct"}
    out = {}
    for name, base in pairs.items():
        got, ref = check.get(name, {}).get("bound_rps"), check.get(base, {}).get("bound_rps")
        if got and ref:
            out[name] = round(got / ref, 3)
    return out


def cpu_figures(results: dict[str, list[dict[str, float]]],
                spent: dict[str, list[cpu_account.Round]], direct_rps: float) -> dict[str, Any]:
    """cpu_per_request (CPU microseconds per request of each role, medians over the rounds),
    the CPU bound of each chain (requests/s on all cores; wrk is one thread, so at most one
    core), proxy_ratio_cpu_bound (the proxy chain's bound / the direct rps measured),
    proxy_ratio_equal_cores (the proxy chain's bound / the direct chain's) and the
    model's check: each run's median rps against its bound on the cores it really had."""
    caps = {"wrk": float(THREADS)}
    costs: dict[str, dict[str, float]] = {}
    check: dict[str, dict[str, float | None]] = {}
    for name, rounds in spent.items():
        per = [r.per_unit(res["requests"], US)
               for r, res in zip(rounds, results[name], strict=True)]
        costs[name] = {role: round(statistics.median(p[role] for p in per), 1)
                       for role in per[0]}
        left = statistics.median(r.cores_left() for r in rounds)
        check[name] = {
            "measured_rps": round(statistics.median(r["rps"] for r in results[name])),
            "bound_rps": cpu_account.scaled_bound(costs[name], US, caps=caps),
            "predicted_rps": cpu_account.scaled_bound(costs[name], US, left, caps),
            **{k: round(statistics.median(r.summary()[k] for r in rounds), 2)
               for k in ("busy", "other_cores", "steal_cores", "cores_left")}}
    proxy_bound, direct_bound = check["proxy"]["bound_rps"], check["direct"]["bound_rps"]
    return {
        "cpu_per_request": costs,
        "cpu_per_request_units": "CPU microseconds per request",
        "proxy_ratio_cpu_bound": round(proxy_bound / direct_rps, 3)
        if proxy_bound and direct_rps else None,
        "proxy_ratio_equal_cores": round(proxy_bound / direct_bound, 3)
        if proxy_bound and direct_bound else None,
        "ratio_equal_cores": equal_cores(check),
        "cpu_model_check": check,
    }


async def failover(engine: CaddyEngine, edge_url: str, victim: asyncio.subprocess.Process,
                   victim_dial: str, after_s: float,
                   health_within_s: float) -> dict[str, float | int]:
    """Kill one backend under steady load (4 clients) for `after_s`: seconds to the last failed
    request; then, up to `health_within_s` after the kill, when Caddy's health gauge (refreshed
    by Caddy every 10 s, whatever the check interval) shows it down."""
    failures: list[float] = []
    sent = 0
    stop = asyncio.Event()

    async def client(session: aiohttp.ClientSession) -> None:
        nonlocal sent
        while not stop.is_set():
            sent += 1
            try:
                async with session.get(edge_url, headers={"Host": HOST}) as response:
                    await response.read()
                    if response.status != 200:
                        failures.append(time.monotonic())
            except (aiohttp.ClientError, OSError):
                failures.append(time.monotonic())

    async with aiohttp.ClientSession() as session:
        clients = [asyncio.create_task(client(session)) for _ in range(4)]
        await asyncio.sleep(0.5)
        killed = time.monotonic()
        victim.kill()
        await victim.wait()
        health_out_s = None
        while time.monotonic() - killed < after_s:
            if health_out_s is None and \
                    (await engine.upstreams_healthy()).get(victim_dial) is False:
                health_out_s = time.monotonic() - killed
            await asyncio.sleep(0.02)
        stop.set()
        await asyncio.gather(*clients)
        while health_out_s is None and time.monotonic() - killed < health_within_s:
            if (await engine.upstreams_healthy()).get(victim_dial) is False:
                health_out_s = time.monotonic() - killed
            await asyncio.sleep(0.05)
    after = [t - killed for t in failures if t >= killed]
    return {"failover_s": round(max(after), 3) if after else 0.0,
            "failed_requests": len(after), "requests_during_failover": sent,
            "health_gauge_out_s": round(health_out_s, 3) if health_out_s is not None else -1}


async def main(quick: bool) -> dict[str, object]:
    rounds, seconds = (2, 3.0) if quick else (3, 8.0)
    for tool in ("caddy", "wrk"):
        if not shutil.which(tool):
            raise SystemExit(f"bench/rplb.py needs {tool} (scripts/system-packages.sh)")
    work = Path(tempfile.mkdtemp(prefix="rplb-", dir="/tmp"))
    processes: list[asyncio.subprocess.Process] = []
    engine: CaddyEngine | None = None
    try:
        b1_port, b2_port, edge_port = free_port(), free_port(), free_port()
        bare_port, py_port = free_port(), free_port()
        b1 = await start_backend(work, b1_port)
        b2 = await start_backend(work, b2_port)
        processes += [b1, b2, await start_python_backend(py_port)]
        settings = EdgeSettings(listen=["127.0.0.1"], http_port=edge_port,
                                https_port=free_port(), health_interval_s=1.0)
        engine = CaddyEngine(settings, work / "edge")
        one = Backend("127.0.0.1", b1_port)
        www = Route(HOST, "http", None, (one,), "www")
        py = Route(PY_HOST, "http", None, (Backend("127.0.0.1", py_port),), "py")
        await engine.start([www, py])
        bare = CaddyEngine(settings.model_copy(update={
            "http_port": bare_port, "https_port": free_port(), "route_metrics": False}),
            work / "bare")
        await bare.start([www])
        edge_url, direct_url = f"http://127.0.0.1:{edge_port}/", f"http://127.0.0.1:{b1_port}/"
        bare_url, py_url = f"http://127.0.0.1:{bare_port}/", f"http://127.0.0.1:{py_port}/"
        await wait_answering(edge_url, "edge", HOST)
        await wait_answering(bare_url, "edge without route metrics", HOST)
        runs: dict[str, tuple[str, str | None]] = {
            "direct": (direct_url, None), "proxy": (edge_url, HOST),
            "proxy_bare": (bare_url, HOST), "py_direct": (py_url, None),
            "py_proxy": (edge_url, PY_HOST)}
        if shutil.which("haproxy"):
            haproxy_port = free_port()
            processes.append(await start_haproxy(work, haproxy_port, b1_port))
            runs["haproxy"] = (f"http://127.0.0.1:{haproxy_port}/", None)

        assert engine.process is not None and bare.process is not None
        roles = run_roles(runs, b1.pid, processes[2].pid, engine.process.pid, bare.process.pid,
                          processes[3].pid if "haproxy" in runs else None)
        results: dict[str, list[dict[str, float]]] = {name: [] for name in runs}
        spent: dict[str, list[cpu_account.Round]] = {name: [] for name in runs}
        for _ in range(rounds):  # alternated, so load from other work hits all alike
            for name, (url, host) in runs.items():
                account = Account(roles[name])
                account.start()
                results[name].append(await wrk(url, seconds, host))
                spent[name].append(account.stop())
        await bare.stop()
        served = engine.metrics.routes.get("www")
        counted = served.requests if served else 0

        applies = []
        for index in range(5 if quick else 10):
            name = f"new{index}.bench.test"
            routes = [Route(HOST, "http", None, (one,), "www"),
                      Route(name, "http", None, (one,), f"new{index}")]
            start = time.monotonic()
            await engine.apply(routes)
            await wait_answering(edge_url, "the new route", name)
            applies.append((time.monotonic() - start) * 1000)

        both = (one, Backend("127.0.0.1", b2_port))
        await engine.apply([Route(HOST, "http", None, both, "www")])
        await wait_answering(edge_url, "two backends", HOST)
        failed = await failover(engine, edge_url, b1, one.dial, after_s=3.0 if quick else 5.0,
                                health_within_s=12.0)

        def median(name: str, key: str = "rps") -> float:
            return statistics.median(r[key] for r in results[name])

        proxy, direct = results["proxy"], results["direct"]
        proxy_rps, direct_rps = median("proxy"), median("direct")
        return {
            "proxy_rps": round(proxy_rps),
            "direct_rps": round(direct_rps),
            "proxy_ratio": round(proxy_rps / direct_rps, 3),
            "p99_ms": round(statistics.median(r["p99_ms"] for r in proxy), 2),
            "direct_p99_ms": round(statistics.median(r["p99_ms"] for r in direct), 2),
            "proxy_non_2xx": sum(r["non_2xx"] for r in proxy),
            **failed,
            "route_apply_ms": round(statistics.median(applies), 1),
            "route_apply_ms_max": round(max(applies), 1),
            "proxy_rps_without_route_metrics": round(median("proxy_bare")),
            "haproxy_rps": round(median("haproxy")) if "haproxy" in results else None,
            "haproxy_ratio": round(median("haproxy") / direct_rps, 3)
            if "haproxy" in results else None,
            "python_backend_proxy_rps": round(median("py_proxy")),
            "python_backend_direct_rps": round(median("py_direct")),
            "python_backend_ratio": round(median("py_proxy") / median("py_direct"), 3),
            **cpu_figures(results, spent, direct_rps),
            "requests_counted_by_route_metrics": counted,
            "requests_sent_through_proxy": int(sum(r["requests"] for r in proxy)),
            "rounds": rounds, "seconds_per_run": seconds, "connections": CONNECTIONS,
            "load_generator": f"wrk -t{THREADS} -c{CONNECTIONS}",
            "backend": "caddy static_response, 1 KiB body, on loopback",
            "cpus": os.cpu_count(),
            "load_avg_1m": round(os.getloadavg()[0], 2),
            "notes": "route_apply_ms is from the engine's apply call (admin API) to the new "
                     "route's first 200; route ops (issue 19's route.set) do not exist yet, so "
                     "the store's replication is not in it. The edge logs every request to the "
                     "node (per-route metrics), as in production.",
        }
    finally:
        if engine is not None:
            await engine.stop()
        for process in processes:
            if process.returncode is None:
                process.kill()
                await process.wait()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="2 rounds of 3 s")
    parser.add_argument("--serve-backend", type=int, metavar="PORT", help=argparse.SUPPRESS)
    arguments = parser.parse_args()
    if arguments.serve_backend:
        serve_backend(arguments.serve_backend)
    else:
        print(json.dumps(asyncio.run(main(arguments.quick))))
