"""The processes of a simulated host. A holder (`sleep infinity` in the host's network namespace
and a private mount namespace with tmpfs on /run/formation and /run/wireguard) pins the mount
namespace; the node and every `lab exec` enter the holder's namespaces with nsenter."""

from __future__ import annotations

import contextlib
import os
import select
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

from formation.errors import FormationError
from formation.lab.names import NETNS_DIR

RUN_DIRS = ("/run/formation", "/run/wireguard")
NODE_SOCKET = "/run/formation/node.sock"
HOLDER_READY_S = 10.0


class LabProcessError(FormationError):
    pass


def start_holder(netns: str, tag: str, log_path: Path) -> int:
    script = (
        "set -e; mkdir -p " + " ".join(RUN_DIRS) + "; "
        f"mount -t tmpfs -o mode=0755,size=16m {tag} /run/formation; "
        f"mount -t tmpfs -o mode=0700,size=4m {tag} /run/wireguard; "
        # a sysfs of this network namespace, so /sys/class/net shows the host's own links
        "mount -t sysfs sysfs /sys; echo ready; exec sleep infinity"
    )
    argv = ["nsenter", f"--net={NETNS_DIR / netns}", "--", "unshare", "--mount",
            "--propagation", "private", "--", "/bin/sh", "-c", script]
    with open(log_path, "ab") as log:
        proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                stderr=log, start_new_session=True)
    assert proc.stdout is not None
    ready, _, _ = select.select([proc.stdout], [], [], HOLDER_READY_S)
    line = proc.stdout.readline() if ready else b""
    proc.stdout.close()
    if line.strip() != b"ready":
        kill(proc.pid)
        raise LabProcessError(f"host namespace holder for {netns} did not start; see {log_path}")
    return proc.pid


def host_env(config: Path) -> dict[str, str]:
    """A clean environment: the host's config file, this installation's `formation` on PATH,
    and none of the caller's FORMATION_* overrides."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("FORMATION_")}
    env["FORMATION_CONFIG"] = str(config)
    bin_dir = str(Path(sys.executable).parent)
    env["PATH"] = bin_dir + os.pathsep + env.get("PATH", "/usr/sbin:/usr/bin:/sbin:/bin")
    return env


def enter_argv(holder_pid: int, argv: list[str]) -> list[str]:
    return ["nsenter", f"--target={holder_pid}", "--net", "--mount", "--", *argv]


def start_node(holder_pid: int, config: Path, log_path: Path) -> int:
    argv = enter_argv(holder_pid, [sys.executable, "-m", "formation", "node"])
    with open(log_path, "ab") as log:
        proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                                env=host_env(config), start_new_session=True)
    return proc.pid


def socket_path(holder_pid: int) -> Path:
    """The host's node socket as seen from outside its mount namespace."""
    return Path(f"/proc/{holder_pid}/root") / NODE_SOCKET.lstrip("/")


def node_healthy(holder_pid: int, timeout_s: float = 1.0) -> bool:
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as conn:
            conn.settimeout(timeout_s)
            conn.connect(str(socket_path(holder_pid)))
            conn.sendall(b"GET /v1/health HTTP/1.0\r\nHost: node\r\n\r\n")
            return conn.recv(64).split(b" ", 2)[1:2] == [b"200"]
    except OSError:
        return False


def wait_healthy(holder_pid: int, node_pid: int, timeout_s: float, log_path: Path) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if node_healthy(holder_pid):
            return
        if not alive(node_pid):
            raise LabProcessError(f"the node exited during start; see {log_path}")
        time.sleep(0.05)
    raise LabProcessError(f"the node did not answer within {timeout_s:.0f} s; see {log_path}")


def alive(pid: int | None) -> bool:
    if not pid:
        return False
    _reap(pid)
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, IndexError):
        return False
    return state != "Z"


def kill(pid: int | None, wait_s: float = 5.0) -> None:
    """SIGKILL and wait until it is gone (reaped when it is our child)."""
    if not pid:
        return
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + wait_s
    while alive(pid) and time.monotonic() < deadline:
        time.sleep(0.01)


def _reap(pid: int) -> None:
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, os.WNOHANG)


def processes_in_namespaces(netns_paths: list[Path]) -> list[int]:
    """Every process whose network namespace is one of these: what `down` must kill even when
    the state file is gone (a `lab exec` left running, a node started by hand)."""
    inodes = set()
    for path in netns_paths:
        with contextlib.suppress(OSError):
            inodes.add(os.stat(path).st_ino)
    if not inodes:
        return []
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        with contextlib.suppress(OSError):
            if os.stat(entry / "ns" / "net").st_ino in inodes:
                found.append(int(entry.name))
    return found


def power_cut(netns_path: Path, keep: int | None, rounds: int = 20) -> list[int]:
    """SIGKILL every process in this network namespace but `keep` (the holder), until none is
    left (a process may fork while we look). Returns the pids killed."""
    killed: list[int] = []
    for _ in range(rounds):
        pids = [p for p in processes_in_namespaces([netns_path])
                if p != keep and p != os.getpid() and alive(p)]
        if not pids:
            break
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        for pid in pids:
            kill(pid)
        killed += pids
    return killed


def processes_with_mount(tag: str) -> list[int]:
    """Every process that sees a mount whose source carries `tag`: all processes inside a lab
    host's mount namespace (its tmpfs mounts are named after the host's namespace)."""
    found = []
    needle = f" {tag}".encode()
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and entry.name != str(os.getpid()):
            with contextlib.suppress(OSError):
                if needle in (entry / "mountinfo").read_bytes():
                    found.append(int(entry.name))
    return found
