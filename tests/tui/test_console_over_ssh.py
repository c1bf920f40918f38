"""The console as an SSH session, set up the way an operator does it on a plain host: a real
OpenSSH server on a loopback port (its own config, host key and pid file in a temp dir),
`formation ssh-setup` creating the console user and its group, writing the drop-in and giving the
node's 0660 socket to the group (api.socket_group); the node started from that config; keys
served by `formation ssh-keys` from the running node; a real `ssh` client inside tmux. The
dashboard renders over SSH as that ordinary user and a key press acts. The user and group get
per-run names and are deleted afterwards, like every process."""

from __future__ import annotations

import grp
import os
import pwd
import shutil
import stat
import subprocess
from pathlib import Path

import pytest
import yaml
from waiting import until_sync

from bench.support.processes import (
    FORMATION,
    Sshd,
    Tmux,
    can_run_for_other_users,
    have_ssh_tools,
    installed_for_other_users,
    keygen,
    node_process,
    safe_executable,
    write_node_config,
)

pytestmark = pytest.mark.skipif(
    not have_ssh_tools() or not shutil.which("tmux") or not shutil.which("useradd")
    or not shutil.which("runuser") or not can_run_for_other_users(),
    reason="needs root, sshd, ssh, tmux, useradd, runuser, the formation script and a python "
    "that every user can run")


def _delete_account(user: str, group: str) -> None:
    subprocess.run(["userdel", "--remove", user], capture_output=True, check=False)
    subprocess.run(["groupdel", group], capture_output=True, check=False)


@pytest.fixture
def accounts():
    """A console user and group nobody else uses, one name for both as by default
    (`formation`); both deleted afterwards."""
    user = group = f"fmc{os.getpid()}"
    _delete_account(user, group)
    yield user, group
    _delete_account(user, group)


def runs_as(user: str, *args: str) -> subprocess.CompletedProcess:
    """As user with its groups, as sshd runs the keys command (runuser: no capabilities kept)."""
    return subprocess.run(["runuser", "-u", user, "--", *args], capture_output=True, text=True,
                          timeout=60, check=False, cwd="/")


@pytest.fixture(scope="session")
def formation_site():
    """This checkout installed where the console user can read it (the checkout itself may be
    under a 0700 directory), once per test session."""
    with installed_for_other_users() as site:
        yield site


@pytest.fixture
def ssh_host(short_tmp: Path, accounts, formation_site: Path):
    user, group = accounts
    short_tmp.chmod(0o711)  # the console user reaches the socket inside, nothing else
    user_pub = keygen(short_tmp / "user_key")
    config = write_node_config(short_tmp, "ssh-node", admin_ssh_keys=[user_pub])
    sshd = Sshd(short_tmp)
    with safe_executable(formation_site) as executable:
        setup = subprocess.run(
            [FORMATION, "--config", str(config), "ssh-setup", "--user", user, "--group", group,
             "--executable", executable, "--dropin", str(sshd.dropin),
             "--check-with", str(sshd.config)], capture_output=True, text=True, check=False)
        assert setup.returncode == 0, setup.stderr
        assert f"created system group {group}" in setup.stdout
        assert f"created system user {user}" in setup.stdout
        assert f"AuthorizedKeysCommand {executable} " in sshd.dropin.read_text()
        assert yaml.safe_load(config.read_text())["api"]["socket_group"] == group
        entry = pwd.getpwnam(user)
        assert grp.getgrnam(group).gr_gid in os.getgrouplist(user, entry.pw_gid)
        version = runs_as(user, executable, "version")
        assert version.returncode == 0, version.stderr
        tmux = Tmux(f"fmtest-{os.getpid()}")
        with node_process(config):
            sshd.start()
            try:
                yield short_tmp, sshd, tmux, user, group, executable
            finally:
                tmux.kill()
                sshd.stop()


def check_socket_and_keys(base: Path, user: str, group: str, formation: str) -> None:
    """The socket is the group's, 0660; as the console user (what sshd runs), ssh-keys prints
    the admin key for the console user and nothing for anyone else."""
    sock = base / "node.sock"
    info = sock.stat()
    assert (grp.getgrgid(info.st_gid).gr_name, stat.S_IMODE(info.st_mode)) == (group, 0o660)
    keys = [formation, "ssh-keys", "--socket", str(sock), "--console-user"]
    mine = runs_as(user, *keys, user, user)
    assert mine.returncode == 0, mine.stderr
    assert mine.stdout.strip() == (base / "user_key.pub").read_text().strip()
    other = runs_as(user, *keys, user, "mallory")
    assert (other.returncode, other.stdout) == (0, "")
    nobody = runs_as("nobody", *keys, "nobody", "nobody")  # not in the group
    assert nobody.returncode == 1 and "Permission denied" in nobody.stderr, nobody.stderr


def test_console_over_ssh_as_the_console_user(ssh_host) -> None:
    base, sshd, tmux, user, group, formation = ssh_host
    assert pwd.getpwnam(user).pw_uid != 0
    check_socket_and_keys(base, user, group, formation)
    tmux.start("console", sshd.client_args(base / "user_key", user))
    try:
        until_sync(lambda: "ssh-node" in tmux.screen("console")
                   and "online" in tmux.screen("console"), 30, what="the dashboard over ssh")
    except AssertionError:
        raise AssertionError(f"screen:\n{tmux.screen('console')}\n"
                             f"sshd log:\n{sshd.log_tail()}") from None
    until_sync(lambda: "role: none" in tmux.screen("console"), 15, what="the network to be read")
    tmux.run("send-keys", "-t", "console", "l")
    until_sync(lambda: "recent log records of the node" in tmux.screen("console"), 15,
               what="the logs screen")
    tmux.run("send-keys", "-t", "console", "q")
    until_sync(lambda: "console" not in tmux.run("list-sessions"), 15, what="the session to end")
