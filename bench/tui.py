"""Console benchmark. Prints one JSON object.

cold_start_s        `formation console` launched in a pseudo-terminal (80x24) against a running
                    `formation node` process -> first frame (the title bar drawn); first_data_s
                    -> the node's name on screen. Baseline: a minimal Textual app launched the
                    same way, in the same run (ratio = ours / baseline). *_cpu_s: the CPU
                    seconds the process had used when its first frame appeared (less disturbed
                    by other load on the machine than wall time).
ssh_first_frame_s   `ssh` to a real sshd on loopback whose ForceCommand is the console (the
                    `formation ssh-setup` drop-in, its console user, the appliance's kind of
                    `formation` script) -> first frame. Ratio against cold_start_s.
ssh_keys_command_s  one run of sshd's AuthorizedKeysCommand (`formation ssh-keys`, as the
                    console user), which every login waits for twice.
frame_p99_ms        the console (headless, in-process, with an embedded node on the same loop, as
                    `formation console` runs without a service) computing frames (layout +
                    compositor: Screen._on_timer_update) while the node publishes 100 events/s
                    through its bus; baseline = the same without load.
event_to_screen_p99_ms  publish on the node's bus -> SSE over the unix socket -> console -> the
                    first frame that shows it in the dashboard's log pane.
What is synthetic: the node founds a network and its store gets 100 admitted nodes (random keys,
no live hosts behind them, so membership stays empty) and 900 instances, 1,000 records; the load
is 100 events/s on the `state` topic (each makes the console read the network again, which it
coalesces). Headless frames are not written to a terminal, so terminal output time is not in
frame_p99_ms.
loop_lag_*_ms: how late a 10 ms timer fires on the console's loop during the load (the bound
"nothing in the event loop waits more than 0.1 s" is checked here, not in a timed test).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from support.processes import (  # bench/ is first on sys.path when a benchmark runs
    FORMATION,
    Sshd,
    can_run_for_other_users,
    have_ssh_tools,
    installed_for_other_users,
    keygen,
    node_process,
    safe_executable,
    time_to_markers,
    write_node_config,
)

MINIMAL_APP = ("from textual.app import App\nfrom textual.widgets import Header, Static\n"
               "class A(App):\n    TITLE = 'Formation'\n"
               "    def compose(self):\n        yield Header()\n        yield Static('x')\n"
               "A().run()\n")


SPEC = {"image": "ab" * 32, "vcpus": 1, "memory_mb": 512, "disk_gb": 5}  # a valid instance spec


def p99(values: list[float]) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(0.99 * (len(ordered) - 1)))]


def time_to_marker(args: list[str], marker: bytes, timeout_s: float = 30.0) -> float | None:
    return time_to_markers(args, [marker], timeout_s)[0]


def cold_start(base: Path, runs: int) -> dict:
    config = write_node_config(base, "bench-node")
    with node_process(config):
        console = [FORMATION, "--config", str(config), "console", "--no-embedded"]
        cpu: list[float | None] = []
        both = [time_to_markers(console, [b"Formation", b"bench-node"], cpu_at_markers=cpu)
                for _ in range(runs)]
        frames = [b[0] for b in both]
        data = [b[1] for b in both]
        minimal_cpu: list[float | None] = []
        minimal = [time_to_markers([sys.executable, "-c", MINIMAL_APP], [b"Formation"],
                                   cpu_at_markers=minimal_cpu)[0] for _ in range(runs)]
    cold = min(f for f in frames if f is not None) if any(frames) else None
    base_s = min(m for m in minimal if m is not None) if any(minimal) else None
    return {
        "cold_start_s": round(cold, 3) if cold else None,
        "first_data_s": round(min(d for d in data if d), 3) if any(data) else None,
        "baseline_minimal_textual_s": round(base_s, 3) if base_s else None,
        "cold_start_ratio": round(cold / base_s, 2) if cold and base_s else None,
        "cold_start_cpu_s": _least(cpu[0::2]),
        "baseline_minimal_textual_cpu_s": _least(minimal_cpu),
    }


def _least(values: list[float | None]) -> float | None:
    present = [v for v in values if v is not None]
    return round(min(present), 3) if present else None


def ssh_first_frame(base: Path, runs: int) -> dict:
    """As on the appliance: `formation ssh-setup` creates the console user (shell /bin/sh) and
    its group, the node's socket goes to the group, and sshd runs the appliance's kind of
    `formation` script (system python, a world-readable site directory); then the login, sshd
    running `formation ssh-keys` twice, the session and the console's first frame. (Logging
    in as root instead would time root's ~/.bashrc too, which bash reads under sshd.)"""
    if not have_ssh_tools() or not shutil.which("useradd") or not can_run_for_other_users():
        return {"ssh_first_frame_s": None, "ssh_note": "needs root, sshd, ssh and useradd"}
    user = f"fmb{os.getpid()}"
    user_pub = keygen(base / "user_key")
    base.chmod(0o711)
    config = write_node_config(base, "bench-node", admin_ssh_keys=[user_pub])
    sshd = Sshd(base)
    try:
        with installed_for_other_users() as site, safe_executable(site) as executable:
            setup = [executable, "--config", str(config), "ssh-setup", "--user", user,
                     "--group", user, "--dropin", str(sshd.dropin), "--no-check",
                     "--executable", executable]
            subprocess.run(setup, check=True, capture_output=True)
            with node_process(config):
                sshd.start()
                try:
                    ssh = sshd.client_args(base / "user_key", user)
                    found = [time_to_marker(ssh, b"Formation") for _ in range(runs)]
                    keys = ["runuser", "-u", user, "--", executable, "ssh-keys", "--socket",
                            str(base / "node.sock"), "--console-user", user, user]
                    keys_s = []
                    for _ in range(runs * 3):
                        began = time.perf_counter()
                        subprocess.run(keys, check=True, capture_output=True)
                        keys_s.append(time.perf_counter() - began)
                finally:
                    sshd.stop()
    finally:
        subprocess.run(["userdel", "--remove", user], capture_output=True, check=False)
        subprocess.run(["groupdel", user], capture_output=True, check=False)
    best = min(f for f in found if f) if any(found) else None
    return {"ssh_first_frame_s": round(best, 3) if best else None,
            "ssh_keys_command_s": round(min(keys_s), 3)}


async def frames_under_load(base: Path, load_s: float, events_per_s: int) -> dict:
    from textual.screen import Screen

    from formation.api.client import NodeClient
    from formation.config.loader import load_settings
    from formation.node.service import NodeService
    from formation.tui.app import FormationApp
    from formation.tui.widgets.event_log import EventLog

    frame_ms: list[float] = []
    lags: list[float] = []
    published: dict[int, float] = {}
    latencies: list[float] = []
    state: dict = {"log": None}
    original = Screen._on_timer_update

    def timed(screen: Screen) -> None:
        start = time.perf_counter()
        original(screen)
        end = time.perf_counter()
        frame_ms.append((end - start) * 1000)
        log = state["log"]
        if log is not None and published:
            for seq in [s for s in published if s <= log.shown_seq]:
                latencies.append((end - published.pop(seq)) * 1000)

    Screen._on_timer_update = timed  # type: ignore[method-assign]
    settings = load_settings(write_node_config(base, "bench-node"))
    service = NodeService(settings)
    await service.start()
    await fill_store(service, nodes=100, instances=900)
    app = FormationApp(lambda _: NodeClient.unix(settings.api.socket), poll_s=2.0)
    try:
        async with app.run_test(size=(120, 40)) as pilot:
            while not app.link_status.online:
                await pilot.pause(0.05)
            state["log"] = app.screen.query_one(EventLog)
            await pilot.pause(1.0)
            frame_ms.clear()
            await pilot.pause(load_s / 2)  # idle baseline
            idle = list(frame_ms)
            frame_ms.clear()
            interval = 1.0 / events_per_s
            lag_task = asyncio.get_running_loop().create_task(loop_lag(lags))
            begin = time.perf_counter()
            sent = 0
            while time.perf_counter() - begin < load_s:
                due = int((time.perf_counter() - begin) / interval)
                while sent < due:
                    event = service.bus.publish("state", "bench.tick", {"n": sent})
                    published[event.seq] = time.perf_counter()
                    sent += 1
                await asyncio.sleep(interval / 2)
            await pilot.pause(0.5)
            lag_task.cancel()
    finally:
        Screen._on_timer_update = original  # type: ignore[method-assign]
        await service.stop()
    loaded_p99, idle_p99 = p99(frame_ms), p99(idle)
    return {
        "frame_p99_ms": round(loaded_p99, 2) if loaded_p99 is not None else None,
        "frame_p99_idle_ms": round(idle_p99, 2) if idle_p99 is not None else None,
        "frame_ratio_loaded_to_idle": round(loaded_p99 / idle_p99, 2)
        if loaded_p99 and idle_p99 else None,
        "frames_measured": len(frame_ms),
        "event_to_screen_p99_ms": round(p99(latencies), 1) if latencies else None,
        "events_published": sent, "events_seen_on_screen": len(latencies),
        "events_per_s": events_per_s,
        "loop_lag_p99_ms": round(p99(lags), 1) if lags else None,
        "loop_lag_max_ms": round(max(lags), 1) if lags else None,
    }


async def fill_store(service, nodes: int, instances: int) -> None:
    """Real signed ops through the node's store: a network, admitted nodes, instances."""
    from nacl.signing import SigningKey

    store = service.parts.state.require_store()
    await store.create_network("bench", "10.42.0.0/16")
    for _ in range(nodes):
        key = SigningKey.generate().verify_key.encode().hex()
        await store.append("node.admit", {"node": key, "roles": ["member"]})
    for i in range(instances):
        await store.append("instance.create", {"name": f"vm{i}", "spec": SPEC})


async def loop_lag(lags: list[float], tick_s: float = 0.01) -> None:
    """How late a 10 ms sleep wakes: the longest the event loop was busy with something else
    (console and embedded node together: they share the loop in this measurement)."""
    while True:
        start = time.perf_counter()
        await asyncio.sleep(tick_s)
        lags.append((time.perf_counter() - start - tick_s) * 1000)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer runs, ~5 s of load")
    args = parser.parse_args()
    runs, load_s = (2, 6.0) if args.quick else (5, 20.0)
    result: dict = {"quick": args.quick}
    with tempfile.TemporaryDirectory(prefix="fm-bt-", dir="/tmp") as tmp:
        base = Path(tmp)
        base.chmod(0o711)  # the SSH console user reaches its node's socket inside ssh/
        for name in ("cold", "ssh", "load"):
            (base / name).mkdir()
        result |= cold_start(base / "cold", runs)
        result |= ssh_first_frame(base / "ssh", runs)
        if result.get("ssh_first_frame_s") and result.get("cold_start_s"):
            result["ssh_ratio_to_local"] = round(
                result["ssh_first_frame_s"] / result["cold_start_s"], 2)
        result |= asyncio.run(frames_under_load(base / "load", load_s, 100))
    result["synthetic"] = {"events_per_s": 100, "nodes": 100, "state_records": 1000,
                           "note": "store records are real ops; the 100 nodes have no hosts, "
                                   "so membership and the mesh are empty"}
    print(json.dumps(result))


if __name__ == "__main__":
    main()
