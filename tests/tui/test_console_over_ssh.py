"""The console as an SSH session: a real OpenSSH server on a loopback port (its own config, host
key and pid file in a temp dir) with the drop-in written by `formation ssh-setup`, keys served by
`formation ssh-keys` from the node's admin_ssh_keys, and a real `ssh` client inside tmux. The
dashboard renders over SSH and a key press acts. Every process is stopped afterwards."""

from __future__ import annotations

import os
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest
import yaml

SSHD = shutil.which("sshd") or "/usr/sbin/sshd"
FORMATION = str(Path(sys.executable).parent / "formation")

pytestmark = pytest.mark.skipif(
    os.geteuid() != 0 or not Path(SSHD).exists() or not shutil.which("ssh")
    or not shutil.which("tmux") or not Path(FORMATION).exists(),
    reason="needs root, sshd, ssh, tmux and the formation script")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def keygen(path: Path) -> str:
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "admin@test",
                    "-f", str(path)], check=True)
    return path.with_suffix(".pub").read_text().strip()


def wait_until(check, timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


class Tmux:
    """A private tmux server (its own socket name), so nobody else's sessions are touched."""

    def __init__(self, name: str) -> None:
        self.base = ["tmux", "-L", name]

    def run(self, *args: str) -> str:
        return subprocess.run([*self.base, *args], capture_output=True, text=True,
                              check=False).stdout

    def screen(self) -> str:
        return self.run("capture-pane", "-p", "-t", "console")

    def kill(self) -> None:
        self.run("kill-server")


@pytest.fixture
def safe_formation():
    """sshd runs an AuthorizedKeysCommand only if every directory above it is root-owned and
    not group- or world-writable; a checkout under /tmp fails that. A wrapper in a fresh
    0755 directory under /run passes it and runs this checkout's `formation`."""
    safe_dir = Path(tempfile.mkdtemp(prefix="fmtest-", dir="/run"))
    safe_dir.chmod(0o755)
    wrapper = safe_dir / "formation"
    wrapper.write_text(f"#!/bin/sh\nexec {shlex.quote(FORMATION)} \"$@\"\n")
    wrapper.chmod(0o755)
    yield str(wrapper)
    shutil.rmtree(safe_dir, ignore_errors=True)


@pytest.fixture
def ssh_lab(short_tmp: Path, safe_formation: str):
    port = free_port()
    user_pub = keygen(short_tmp / "user_key")
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f",
                    str(short_tmp / "host_key")], check=True)
    config = short_tmp / "node.yaml"
    config.write_text(yaml.safe_dump({
        "name": "ssh-node", "data_dir": str(short_tmp / "data"),
        "api": {"socket": str(short_tmp / "node.sock")}, "probe": {"boot_test": False},
        "admin_ssh_keys": [user_pub]}))
    dropin = short_tmp / "formation.conf"
    sshd_config = short_tmp / "sshd_config"
    sshd_config.write_text("\n".join((
        f"Port {port}", "ListenAddress 127.0.0.1", f"HostKey {short_tmp / 'host_key'}",
        f"PidFile {short_tmp / 'sshd.pid'}", "UsePAM no", "StrictModes no",
        "PermitRootLogin prohibit-password", "PasswordAuthentication no",
        "AuthorizedKeysFile none", "LogLevel VERBOSE", f"Include {dropin}", "")))
    Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)
    setup = subprocess.run(
        [FORMATION, "--config", str(config), "ssh-setup", "--user", "root",
         "--no-create-user", "--executable", safe_formation,
         "--keys-command-user", "root", "--dropin", str(dropin),
         "--check-with", str(sshd_config)], capture_output=True, text=True, check=False)
    assert setup.returncode == 0, setup.stderr
    assert "ForceCommand" in dropin.read_text()
    assert f"AuthorizedKeysCommand {safe_formation} " in dropin.read_text()
    node = subprocess.Popen([FORMATION, "--config", str(config), "node"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    sshd = subprocess.Popen([SSHD, "-D", "-f", str(sshd_config), "-E", str(short_tmp / "sshd.log")],
                            start_new_session=True)
    tmux = Tmux(f"fmtest-{os.getpid()}")
    try:
        wait_until(lambda: (short_tmp / "node.sock").exists(), 20, "the node socket")
        wait_until(lambda: _listening(port), 10, "sshd to listen")
        yield short_tmp, port, tmux
    finally:
        tmux.kill()
        for proc in (sshd, node):
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
                try:
                    proc.wait(10)
                except subprocess.TimeoutExpired:
                    os.killpg(proc.pid, signal.SIGKILL)
                    proc.wait()


def _listening(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


def ssh_command(base: Path, port: int) -> str:
    return (f"ssh -t -p {port} -i {base / 'user_key'} -o IdentitiesOnly=yes "
            "-o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o LogLevel=ERROR "
            "root@127.0.0.1")


def check_ssh_keys(base: Path) -> None:
    """What sshd's AuthorizedKeysCommand gets: the admin keys, only for the console user."""
    config = str(base / "node.yaml")
    mine = subprocess.run([FORMATION, "--config", config, "ssh-keys", "--console-user", "root",
                           "root"], capture_output=True, text=True, check=True).stdout
    assert mine.strip() == (base / "user_key.pub").read_text().strip()
    other = subprocess.run([FORMATION, "--config", config, "ssh-keys", "--console-user", "root",
                            "mallory"], capture_output=True, text=True, check=True).stdout
    assert other == ""


def test_console_over_ssh_renders_and_acts(ssh_lab) -> None:
    base, port, tmux = ssh_lab
    check_ssh_keys(base)
    tmux.run("new-session", "-d", "-s", "console", "-x", "80", "-y", "24",
             ssh_command(base, port))
    try:
        wait_until(lambda: "ssh-node" in tmux.screen() and "online" in tmux.screen(), 30,
                   "the dashboard over ssh")
    except AssertionError:
        log = (base / "sshd.log").read_text()[-2000:]
        raise AssertionError(f"screen:\n{tmux.screen()}\nsshd log:\n{log}") from None
    wait_until(lambda: "role: none" in tmux.screen(), 15, "the network to be read")
    tmux.run("send-keys", "-t", "console", "l")
    wait_until(lambda: "recent log records of the node" in tmux.screen(), 15, "the logs screen")
    tmux.run("send-keys", "-t", "console", "q")
    wait_until(lambda: "console" not in tmux.run("list-sessions"), 15, "the session to end")
