"""Benchmark: GET node status over the unix socket vs a bare aiohttp handler on a unix socket.

Both servers run in their own process (`formation node` with a temporary config, and this file
with --serve-bare); the same client code measures both, interleaved, in the same run:
throughput with several concurrent requests, latency with one request at a time. The bare
handler answers with the very bytes the node answered, so the ratio measures what the node's
stack costs per request, not payload size.

Prints one JSON object: status_rps, bare_rps, ratio (status/bare), status_p50_ms, status_p99_ms,
bare_p50_ms, bare_p99_ms, and each server's CPU time per request (cpu_ratio = bare/status), which
a busy machine distorts least. Targets (issue 2): ratio >= 0.7, status_p50_ms <= 1.

Under a flood (issue 13): in each round the node's status is also measured while FLOOD idle TCP
connections to the node's TCP port are held by another process (`--hold-flood`, from several
loopback addresses, reopening what the node closes): status_rps_under_idle_flood, and
flood_ratio = status_rps_under_idle_flood / status_rps (target >= 0.8). flood_held is how many
connections that process held when a measurement started, flood_open_at_node how many the node
had open (its connection caps may close some at once).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import resource
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import aiohttp
import yaml
from aiohttp import web

STATUS_PATH = "/v1/node"
CONCURRENCY = 8
FLOOD = 2000
FLOOD_SOURCES = 20  # loopback addresses the flood comes from: 100 each, within the per-peer cap


def serve_bare(socket_path: str, body_file: str) -> None:
    """The baseline: one aiohttp handler returning fixed bytes, nothing else."""
    body = Path(body_file).read_bytes()

    async def handler(_: web.Request) -> web.Response:
        return web.Response(body=body, content_type="application/json")

    app = web.Application()
    app.router.add_get(STATUS_PATH, handler)
    web.run_app(app, path=socket_path, print=None, access_log=None)


async def wait_for_socket(path: Path, proc: subprocess.Popen, timeout_s: float = 30) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"server exited with {proc.returncode}")
        if path.exists():
            try:
                async with session_for(path) as session, session.get(
                        "http://bench" + STATUS_PATH) as resp:
                    if resp.status == 200:
                        return
            except aiohttp.ClientError:
                pass
        await asyncio.sleep(0.05)
    raise SystemExit(f"no server on {path} after {timeout_s} s")


def session_for(path: Path) -> aiohttp.ClientSession:
    connector = aiohttp.UnixConnector(path=str(path), limit=CONCURRENCY)
    return aiohttp.ClientSession(connector=connector)


def cpu_seconds(pid: int) -> float:
    """User plus system CPU time of a process, from /proc: what the server spent, whatever the
    load of the machine."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def throughput(path: Path, seconds: float) -> tuple[float, int]:
    """Requests per second with CONCURRENCY requests in flight, and how many were made."""
    done = 0
    stop_at = time.perf_counter() + seconds

    async def worker(session: aiohttp.ClientSession) -> None:
        nonlocal done
        while time.perf_counter() < stop_at:
            async with session.get("http://bench" + STATUS_PATH) as resp:
                await resp.read()
                assert resp.status == 200
            done += 1

    async with session_for(path) as session:
        start = time.perf_counter()
        await asyncio.gather(*(worker(session) for _ in range(CONCURRENCY)))
        return done / (time.perf_counter() - start), done


async def latencies(path: Path, seconds: float) -> list[float]:
    """Milliseconds per request, one request at a time on a kept-alive connection."""
    found = []
    stop_at = time.perf_counter() + seconds
    async with session_for(path) as session:
        while time.perf_counter() < stop_at:
            start = time.perf_counter()
            async with session.get("http://bench" + STATUS_PATH) as resp:
                await resp.read()
            found.append((time.perf_counter() - start) * 1000)
    return found


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def raise_nofile(need: int) -> int:
    """Raises this process's soft open-file limit as far as the hard one allows; returns it."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < need:
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, max(need, soft)), hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def hold_flood(host: str, port: str, count: str) -> None:
    """The flood: reads commands on stdin ("open": open `count` idle connections and keep them
    open, reopening any the server closes, a second later; "close": close them all), answering
    each with a line (how many are open)."""
    want = int(count)
    raise_nofile(want + 64)

    async def main() -> None:
        held: set[asyncio.StreamWriter] = set()
        all_held = asyncio.Event()
        holding = False

        async def one(n: int) -> None:
            source = f"127.0.1.{1 + n % FLOOD_SOURCES}"
            while holding:
                writer = None
                try:
                    reader, writer = await asyncio.open_connection(
                        host, int(port), local_addr=(source, 0))
                    held.add(writer)
                    if len(held) >= want:
                        all_held.set()
                    await reader.read()  # idle until the server closes it
                except OSError:
                    pass
                finally:
                    if writer is not None:
                        held.discard(writer)
                        writer.close()
                if holding:
                    await asyncio.sleep(1.0)

        loop = asyncio.get_running_loop()
        tasks: list[asyncio.Task] = []
        while line := await loop.run_in_executor(None, sys.stdin.readline):
            if line.strip() == "open":
                holding = True
                tasks = [asyncio.create_task(one(n)) for n in range(want)]
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(all_held.wait(), 10)
            elif line.strip() == "close":
                holding = False
                all_held.clear()
                for writer in list(held):
                    writer.transport.abort()
                await asyncio.gather(*tasks, return_exceptions=True)
            print(len(held), flush=True)

    asyncio.run(main())


def start_flood(node_tcp: str) -> subprocess.Popen:
    host, _, port = node_tcp.rpartition(":")
    return subprocess.Popen([sys.executable, __file__, "--hold-flood", host, port, str(FLOOD)],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)


def flood_command(flood: subprocess.Popen, command: str) -> int:
    assert flood.stdin is not None and flood.stdout is not None
    flood.stdin.write(command + "\n")
    flood.stdin.flush()
    return int(flood.stdout.readline())


async def open_at_node(path: Path) -> float:
    async with session_for(path) as session, session.get("http://bench/metrics") as resp:
        text = await resp.text()
    return next((float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
                 if line.startswith("formation_api_connections_open ")), -1.0)


def start_node(base: Path) -> tuple[subprocess.Popen, Path]:
    sock = base / "node.sock"
    config = base / "node.yaml"
    with socket.socket() as probe:  # a free port for the node's TCP API, which the flood hits
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    config.write_text(yaml.safe_dump({
        "name": "bench", "data_dir": str(base / "data"),
        "api": {"socket": str(sock), "listen": f"127.0.0.1:{port}"},
        "discovery": {"mdns": False},
        "log": {"level": "warning"}, "probe": {"boot_test": False},
    }))
    env = {k: v for k, v in os.environ.items() if not k.startswith("FORMATION_")}
    proc = subprocess.Popen([sys.executable, "-m", "formation", "--config", str(config), "node"],
                            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, env=env)
    return proc, sock


async def tcp_address(path: Path) -> str:
    """The node's TCP API address, from its status (the first tcp: listen address)."""
    status = json.loads(await fetch(path))
    found = [a for a in status.get("listen", []) if a.startswith("tcp:")]
    if not found:
        raise SystemExit(f"the node serves no TCP address: {status.get('listen')}")
    return found[0].removeprefix("tcp:")


async def fetch(path: Path) -> bytes:
    async with session_for(path) as session, session.get("http://bench" + STATUS_PATH) as resp:
        return await resp.read()


def start_bare(base: Path, body: bytes) -> tuple[subprocess.Popen, Path]:
    body_file = base / "status.json"
    body_file.write_bytes(body)
    sock = base / "bare.sock"
    proc = subprocess.Popen([sys.executable, __file__, "--serve-bare", str(sock), str(body_file)],
                            stdin=subprocess.DEVNULL)
    return proc, sock


async def measure(servers: dict[str, tuple[Path, int]], rounds: int, seconds: float,
                  warmup: float, flood: subprocess.Popen) -> dict[str, dict[str, list]]:
    """Alternates short bare, status and status-under-flood runs, so that the load of a shared
    machine, which drifts, weighs on all alike."""
    results: dict[str, dict[str, list]] = {
        name: {"rps": [], "lat": [], "cpu_us": []} for name in servers}
    results["flood"] = {"rps": [], "held": [], "open": []}
    for _ in range(rounds):
        for name, (sock, pid) in servers.items():
            await throughput(sock, warmup)
            cpu_before = cpu_seconds(pid)
            rps, count = await throughput(sock, seconds)
            results[name]["cpu_us"].append((cpu_seconds(pid) - cpu_before) / count * 1e6)
            results[name]["rps"].append(rps)
            results[name]["lat"].extend(await latencies(sock, seconds / 2))
        sock, _ = servers["status"]
        results["flood"]["held"].append(await asyncio.to_thread(flood_command, flood, "open"))
        results["flood"]["open"].append(await open_at_node(sock))
        await throughput(sock, warmup)
        results["flood"]["rps"].append((await throughput(sock, seconds))[0])
        await asyncio.to_thread(flood_command, flood, "close")
    return results


def summarize(results: dict[str, dict[str, list]], rounds: int) -> dict:
    """The ratio is the median of the per-round ratios."""
    out: dict = {}
    for name in ("status", "bare"):
        out[f"{name}_rps"] = round(statistics.median(results[name]["rps"]), 1)
        out[f"{name}_p50_ms"] = round(percentile(results[name]["lat"], 0.50), 3)
        out[f"{name}_p99_ms"] = round(percentile(results[name]["lat"], 0.99), 3)
        out[f"{name}_server_cpu_us_per_request"] = round(
            statistics.median(results[name]["cpu_us"]), 1)
    pairs = zip(results["status"]["rps"], results["bare"]["rps"], strict=True)
    out["ratio"] = round(statistics.median(s / b for s, b in pairs), 3)
    flood = results["flood"]
    out["status_rps_under_idle_flood"] = round(statistics.median(flood["rps"]), 1)
    flooded = zip(flood["rps"], results["status"]["rps"], strict=True)
    out["flood_ratio"] = round(statistics.median(f / s for f, s in flooded), 3)
    out["flood_connections"] = FLOOD
    out["flood_held"] = int(statistics.median(flood["held"]))
    out["flood_open_at_node"] = int(statistics.median(flood["open"]))
    out["cpu_ratio"] = round(out["bare_server_cpu_us_per_request"]
                             / out["status_server_cpu_us_per_request"], 3)
    out["rps_concurrency"] = CONCURRENCY
    out["latency_concurrency"] = 1
    out["rounds"] = rounds
    out["cpus"] = os.cpu_count()
    out["load_1m_at_end"] = round(os.getloadavg()[0], 2)
    ordered = ["status_rps", "bare_rps", "ratio", "status_p50_ms", "status_p99_ms",
               "status_rps_under_idle_flood", "flood_ratio"]
    return {key: out[key] for key in ordered} | {k: v for k, v in out.items() if k not in ordered}


def run(quick: bool) -> dict:
    rounds, seconds, warmup = (5, 1.0, 0.2) if quick else (20, 2.0, 0.3)
    base = Path(tempfile.mkdtemp(prefix="fm-bench-", dir="/tmp"))
    procs: list[subprocess.Popen] = []
    try:
        node, node_sock = start_node(base)
        procs.append(node)
        asyncio.run(wait_for_socket(node_sock, node))
        bare, bare_sock = start_bare(base, asyncio.run(fetch(node_sock)))
        procs.append(bare)
        asyncio.run(wait_for_socket(bare_sock, bare))
        servers = {"bare": (bare_sock, bare.pid), "status": (node_sock, node.pid)}
        flood = start_flood(asyncio.run(tcp_address(node_sock)))
        procs.append(flood)
        results = asyncio.run(measure(servers, rounds, seconds, warmup, flood))
    finally:
        for proc in procs:
            proc.send_signal(signal.SIGTERM)
        for proc in procs:
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        shutil.rmtree(base, ignore_errors=True)
    return summarize(results, rounds)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="finish in well under a minute")
    parser.add_argument("--serve-bare", nargs=2, metavar=("SOCKET", "BODY_FILE"),
                        help=argparse.SUPPRESS)
    parser.add_argument("--hold-flood", nargs=3, metavar=("HOST", "PORT", "COUNT"),
                        help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve_bare:
        serve_bare(*args.serve_bare)
        return
    if args.hold_flood:
        hold_flood(*args.hold_flood)
        return
    print(json.dumps(run(args.quick)))


if __name__ == "__main__":
    main()
