"""Node start-up benchmark: CPU time of `formation node` from exec to READY=1 (the API socket
answers), against a bare aiohttp server on a unix socket that sends READY=1 the same way.

Under QEMU/TCG in the appliance, almost all of the node's boot is Python importing modules, and
the guest's CPU is many times slower than the host's, so the CPU seconds the process spent up to
READY (its own utime+stime from /proc, which a loaded machine distorts least) is what this
measures. Both are started alternately, several times, in the same run; `startup_ratio` is the
median node CPU over the median bare CPU. `heavy_at_ready` lists the modules from a watched set
(ones the node should not need before READY) that the node had imported when it said READY.

    python bench/startup.py [--quick]

Prints one JSON object."""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

READY_TIMEOUT_S = 60
# Imported by the console, the CLI or on first use, not by the node on its way to READY (aiohttp's
# client side is not here: `import aiohttp` always loads it).
WATCHED = ("textual", "segno", "zeroconf", "ruamel", "multiprocessing", "rich")

BARE = """
import os, socket, sys
from aiohttp import web
async def ok(_): return web.Response(text="ok")
async def ready(_):
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as s:
        s.sendto(b"READY=1", os.environ["NOTIFY_SOCKET"])
app = web.Application(); app.router.add_get("/", ok); app.on_startup.append(ready)
web.run_app(app, path=sys.argv[1], print=None, access_log=None)
"""


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def start_and_wait(args: list[str], base: Path, extra_env: dict[str, str] | None = None
                   ) -> tuple[float, float, subprocess.Popen]:
    """Starts `args` with NOTIFY_SOCKET pointing at a socket of ours; returns (cpu_s, wall_s)
    of the process when READY=1 arrives, and the still running process."""
    notify_path = base / "notify.sock"
    notify_path.unlink(missing_ok=True)
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as notify:
        notify.bind(str(notify_path))
        notify.settimeout(READY_TIMEOUT_S)
        env = {k: v for k, v in os.environ.items() if not k.startswith("FORMATION_")}
        env |= {"NOTIFY_SOCKET": str(notify_path), **(extra_env or {})}
        started = time.perf_counter()
        proc = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                stderr=subprocess.PIPE if extra_env else subprocess.DEVNULL,
                                env=env)
        try:
            while b"READY=1" not in notify.recv(4096):
                pass
        except TimeoutError:
            proc.kill()
            raise SystemExit(f"{args} sent no READY=1 in {READY_TIMEOUT_S} s") from None
        wall = time.perf_counter() - started
        return cpu_seconds(proc.pid), wall, proc


def stop(proc: subprocess.Popen) -> str:
    proc.send_signal(signal.SIGTERM)
    try:
        _, err = proc.communicate(timeout=15)
    except subprocess.TimeoutExpired:
        proc.kill()
        _, err = proc.communicate()
    return (err or b"").decode(errors="replace")


def node_args(base: Path) -> list[str]:
    config = base / "node.yaml"
    config.write_text(yaml.safe_dump({
        "name": "bench", "data_dir": str(base / "data"),
        "api": {"socket": str(base / "node.sock")},
        "log": {"level": "warning"}, "probe": {"boot_test": False},
    }))
    return [sys.executable, "-m", "formation", "--config", str(config), "node"]


def heavy_at_ready(base: Path) -> list[str]:
    """The watched modules the node imported before READY (from -X importtime's report)."""
    _, _, proc = start_and_wait([sys.executable, "-X", "importtime", *node_args(base)[1:]], base,
                                {"PYTHONPROFILEIMPORTTIME": "1"})
    report = stop(proc)
    imported = {line.rsplit("|", 1)[1].strip() for line in report.splitlines()
                if line.startswith("import time:") and "|" in line}
    return sorted(name for name in imported
                  if any(name == w or name.startswith(w + ".") for w in WATCHED))


def run(rounds: int) -> dict:
    base = Path(tempfile.mkdtemp(prefix="fm-bench-", dir="/tmp"))
    node_cpu, node_wall, bare_cpu, bare_wall = [], [], [], []
    try:
        bare_args = [sys.executable, "-c", BARE, str(base / "bare.sock")]
        for _ in range(rounds):
            for args, cpus, walls in ((node_args(base), node_cpu, node_wall),
                                      (bare_args, bare_cpu, bare_wall)):
                cpu, wall, proc = start_and_wait(args, base)
                stop(proc)
                cpus.append(cpu)
                walls.append(wall)
        heavy = heavy_at_ready(base)
    finally:
        shutil.rmtree(base, ignore_errors=True)
    node, bare = statistics.median(node_cpu), statistics.median(bare_cpu)
    return {
        "node_ready_cpu_s": round(node, 3),
        "bare_ready_cpu_s": round(bare, 3),
        "startup_ratio": round(node / bare, 2),
        "node_ready_wall_s": round(statistics.median(node_wall), 3),
        "bare_ready_wall_s": round(statistics.median(bare_wall), 3),
        "heavy_at_ready": heavy,
        "rounds": rounds,
        "load_1m_at_end": round(os.getloadavg()[0], 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer rounds")
    args = parser.parse_args()
    print(json.dumps(run(5 if args.quick else 15)))


if __name__ == "__main__":
    main()
