"""Benchmark: GET node status over the unix socket vs a bare aiohttp handler on a unix socket.

Both servers run in their own process (`formation node` with a temporary config, and this file
with --serve-bare); the same client code measures both, interleaved, in the same run:
throughput with several concurrent requests, latency with one request at a time. The bare
handler answers with the very bytes the node answered, so the ratio measures what the node's
stack costs per request, not payload size.

Prints one JSON object: status_rps, bare_rps, ratio (status/bare), status_p50_ms, status_p99_ms,
bare_p50_ms, bare_p99_ms, and each server's CPU time per request (cpu_ratio = bare/status), which
a busy machine distorts least. Targets (issue 2): ratio >= 0.7, status_p50_ms <= 1.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import signal
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


def start_node(base: Path) -> tuple[subprocess.Popen, Path]:
    sock = base / "node.sock"
    config = base / "node.yaml"
    config.write_text(yaml.safe_dump({
        "name": "bench", "data_dir": str(base / "data"), "api": {"socket": str(sock)},
        "log": {"level": "warning"}, "probe": {"boot_test": False},
    }))
    env = {k: v for k, v in os.environ.items() if not k.startswith("FORMATION_")}
    proc = subprocess.Popen([sys.executable, "-m", "formation", "--config", str(config), "node"],
                            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, env=env)
    return proc, sock


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
                  warmup: float) -> dict[str, dict[str, list]]:
    """Alternates short bare and status runs, so that the load of a shared machine, which drifts,
    weighs on both alike."""
    results: dict[str, dict[str, list]] = {
        name: {"rps": [], "lat": [], "cpu_us": []} for name in servers}
    for _ in range(rounds):
        for name, (sock, pid) in servers.items():
            await throughput(sock, warmup)
            cpu_before = cpu_seconds(pid)
            rps, count = await throughput(sock, seconds)
            results[name]["cpu_us"].append((cpu_seconds(pid) - cpu_before) / count * 1e6)
            results[name]["rps"].append(rps)
            results[name]["lat"].extend(await latencies(sock, seconds / 2))
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
    out["cpu_ratio"] = round(out["bare_server_cpu_us_per_request"]
                             / out["status_server_cpu_us_per_request"], 3)
    out["rps_concurrency"] = CONCURRENCY
    out["latency_concurrency"] = 1
    out["rounds"] = rounds
    out["cpus"] = os.cpu_count()
    out["load_1m_at_end"] = round(os.getloadavg()[0], 2)
    ordered = ["status_rps", "bare_rps", "ratio", "status_p50_ms", "status_p99_ms"]
    return {key: out[key] for key in ordered} | {k: v for k, v in out.items() if k not in ordered}


def run(quick: bool) -> dict:
    rounds, seconds, warmup = (8, 1.0, 0.2) if quick else (20, 2.0, 0.3)
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
        results = asyncio.run(measure(servers, rounds, seconds, warmup))
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
    args = parser.parse_args()
    if args.serve_bare:
        serve_bare(*args.serve_bare)
        return
    print(json.dumps(run(args.quick)))


if __name__ == "__main__":
    main()
