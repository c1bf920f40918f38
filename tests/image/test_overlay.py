"""The files the image lays over Debian, checked with the real tools without building the image:
the default config loads, the headless generator decides right, sshd accepts the console drop-in."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from formation.config.loader import load_settings

OVERLAY = Path(__file__).resolve().parents[2] / "image" / "overlay"
GENERATOR = OVERLAY / "usr/lib/systemd/system-generators/formation-headless-generator"


def test_default_node_config_is_valid() -> None:
    settings = load_settings(OVERLAY / "etc/formation/node.yaml", environ={})
    assert settings.data_dir == Path("/var/lib/formation")
    assert settings.api.socket == Path("/run/formation/node.sock")
    assert settings.api.socket_mode == 0o660
    assert settings.headless is False


def run_generator(tmp_path: Path, cmdline: str, config: str) -> tuple[Path, Path]:
    (tmp_path / "cmdline").write_text(cmdline + "\n")
    (tmp_path / "node.yaml").write_text(config)
    normal, early = tmp_path / "normal", tmp_path / "early"
    env = {**os.environ, "FORMATION_CMDLINE": str(tmp_path / "cmdline"),
           "FORMATION_CONFIG": str(tmp_path / "node.yaml")}
    subprocess.run(["sh", str(GENERATOR), str(normal), str(early), str(tmp_path / "late")],
                   check=True, env=env, timeout=10)
    return normal, early


def is_headless(normal: Path, early: Path) -> bool:
    masked = (early / "formation-console@tty1.service").is_symlink()
    enrolls = (normal / "multi-user.target.wants/formation-enroll.service").is_symlink()
    assert masked == enrolls, "console masked and enrolment pulled in go together"
    if masked:
        assert os.readlink(early / "formation-console@.service") == "/dev/null"
    return masked


@pytest.mark.parametrize(
    ("cmdline", "config", "headless"),
    [
        ("root=PARTLABEL=formation-root quiet", "headless: false\n", False),
        ("root=PARTLABEL=formation-root formation.headless quiet", "", True),
        ("formation.headless=1", "headless: false\n", True),
        ("quiet", "name: edge\nheadless: true  # no screen here\n", True),
        ("quiet", "headless: yes\n", True),
        ("formation.headless=0", "headless: true\n", False),
        ("quiet", "probe:\n  headless: true\n", False),
        ("xformation.headless", "", False),
    ],
)
def test_headless_generator(tmp_path: Path, cmdline: str, config: str, headless: bool) -> None:
    assert is_headless(*run_generator(tmp_path, cmdline, config)) is headless


def test_sshd_accepts_the_console_drop_in(tmp_path: Path) -> None:
    sshd = shutil.which("sshd") or "/usr/sbin/sshd"
    if not os.access(sshd, os.X_OK):
        pytest.skip("sshd (openssh-server) is not installed")
    privsep = Path("/run/sshd")  # sshd -T insists on its privilege separation directory
    if not privsep.is_dir():
        if os.geteuid() != 0:
            pytest.skip("sshd -T needs /run/sshd, which only root may create")
        privsep.mkdir(mode=0o755)
    host_key = tmp_path / "host_key"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(host_key)],
                   check=True)
    config = tmp_path / "sshd_config"
    config.write_text(f"HostKey {host_key}\nInclude {OVERLAY}/etc/ssh/sshd_config.d/*.conf\n")
    effective = subprocess.run(
        [sshd, "-T", "-f", str(config), "-C", "user=formation-console,host=h,addr=127.0.0.1"],
        capture_output=True, text=True, timeout=10)
    assert effective.returncode == 0, effective.stderr
    lines = set(effective.stdout.splitlines())
    socket = "--socket /run/formation/node.sock"
    assert f"forcecommand /usr/bin/formation console --no-embedded {socket}" in lines
    assert (f"authorizedkeyscommand /usr/bin/formation ssh-keys {socket} "
            "--console-user formation-console %u") in lines
    assert "authorizedkeyscommanduser formation-console" in lines
    assert "passwordauthentication no" in lines
    other = subprocess.run(
        [sshd, "-T", "-f", str(config), "-C", "user=alice,host=h,addr=127.0.0.1"],
        capture_output=True, text=True, timeout=10)
    assert "forcecommand none" in other.stdout.splitlines(), "only the console user is forced"


def unit_settings(path: Path) -> dict[str, list[str]]:
    """KEY -> every value it is given in a systemd unit or .network file (sections ignored)."""
    found: dict[str, list[str]] = {}
    for line in path.read_text().splitlines():
        key, sep, value = line.partition("=")
        if sep and not line.lstrip().startswith(("#", "[")):
            found.setdefault(key.strip(), []).extend(value.split())
    return found


def test_node_may_hold_many_more_descriptors_than_systemds_default() -> None:
    """The node's TCP connection cap is derived from its open-file limit (systemd's default
    soft limit, 1024, would cap it at 768 connections)."""
    unit = unit_settings(OVERLAY / "usr/lib/systemd/system/formation-node.service")
    [limit] = unit["LimitNOFILE"]
    assert int(limit.split(":")[-1]) >= 65536


def test_node_starts_early_and_first_while_booting() -> None:
    """The node is what the appliance boots for (bench/image.py's boot_ratio): it waits for
    nothing it does not use, and has the CPU first while the machine boots."""
    unit = unit_settings(OVERLAY / "usr/lib/systemd/system/formation-node.service")
    assert unit["DefaultDependencies"] == ["no"]
    waits_for = set(unit.get("After", []) + unit.get("Requires", []) + unit.get("Wants", []))
    assert not waits_for & {"network.target", "network-online.target", "basic.target",
                            "sysinit.target", "systemd-networkd.service"}, waits_for
    assert int(unit["StartupCPUWeight"][0]) > 100, "the default weight is 100"
    # Not ordered after the network, so the network must outlive networkd's stop at shutdown.
    network = unit_settings(OVERLAY / "etc/systemd/network/80-formation-dhcp.network")
    assert network["KeepConfiguration"] == ["yes"]


STOP_LEFTOVERS = OVERLAY / "usr/libexec/formation/stop-leftovers"
# A node stand-in: one child in its own session (a VMM, with a child of its own), one in the
# node's session (wireguard-go, say). It prints their pids and then reaps the second one, so a
# stopped helper does not linger as a zombie that `kill -0` still finds.
NODE = """
import subprocess, sys
helper = subprocess.Popen(["sleep", "300"])
vmm = subprocess.Popen(["sh", "-c", "sleep 300 & echo $!; wait"], start_new_session=True,
                       stdout=subprocess.PIPE, text=True)
print(helper.pid, vmm.pid, vmm.stdout.readline().strip(), flush=True)
helper.wait()
sys.stdin.read()
"""


def test_node_restart_keeps_vmms_and_stops_the_rest(tmp_path: Path) -> None:
    """KillMode=process keeps the VMMs (each in its own session) through a node restart;
    stop-leftovers, the unit's ExecStopPost, stops what else the node left, as systemd's
    default control-group mode would have."""
    unit = unit_settings(OVERLAY / "usr/lib/systemd/system/formation-node.service")
    assert unit["KillMode"] == ["process"]
    assert unit["ExecStopPost"] == ["/usr/libexec/formation/stop-leftovers"]
    assert os.access(STOP_LEFTOVERS, os.X_OK)
    node = subprocess.Popen([sys.executable, "-c", NODE], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, text=True, start_new_session=True)
    vmm_group = None
    try:
        assert node.stdout is not None
        helper, vmm, vmm_child = (int(pid) for pid in node.stdout.readline().split())
        vmm_group = os.getpgid(vmm)
        # The unit's cgroup once the node has exited: its leftovers, not the node itself.
        procs = tmp_path / "cgroup.procs"
        procs.write_text(f"{helper}\n{vmm}\n{vmm_child}\n")
        done = subprocess.run(["sh", str(STOP_LEFTOVERS), str(procs)], capture_output=True,
                              text=True, timeout=30)
        assert done.returncode == 0, done.stderr
        assert f"stopping what the node left running: {helper}" in done.stderr
        assert not Path(f"/proc/{helper}").exists(), "the node's helper must be stopped"
        for pid in (vmm, vmm_child):
            assert Path(f"/proc/{pid}").exists(), "a VMM's session must survive the restart"
            os.kill(pid, 0)
    finally:
        if vmm_group is not None:
            os.killpg(vmm_group, signal.SIGKILL)
        node.kill()
        node.wait(10)
