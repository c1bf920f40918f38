"""Over SSH, admins get the console as their session: `formation ssh-setup` installs an sshd
drop-in for a dedicated user whose only command is the console, and whose authorized keys come
from `formation ssh-keys` (formation/commands/ssh_keys.py), which asks the running node.

The console user is an ordinary account, and the node's socket is 0660: so the user goes into a
group (`formation`) that the node makes the socket's group (the `api.socket_group` setting, which
ssh-setup writes into the config file)."""

from __future__ import annotations

import grp
import os
import pwd
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import click

from formation.commands.common import Context
from formation.commands.ssh_keys import DEFAULT_USER
from formation.errors import FormationError

DEFAULT_GROUP = "formation"
DEFAULT_DROPIN = Path("/etc/ssh/sshd_config.d/formation.conf")


def formation_executable() -> str:
    """The absolute path sshd will run (sshd insists on absolute, root-owned commands): the
    `formation` being run now, else the one on PATH."""
    me = Path(sys.argv[0])
    if me.name == "formation" and me.exists():
        return str(me.absolute())
    found = shutil.which("formation")
    return str(Path(found).absolute()) if found else "/usr/bin/formation"


def dropin_text(user: str, executable: str, config_file: Path | None, keys_user: str,
                socket: Path) -> str:
    """Both commands get the socket path: the console user then needs neither the node's
    config file (0600) nor the settings code to find it, and `ssh-keys` stays fast."""
    config = f" --config {shlex.quote(str(config_file))}" if config_file else ""
    base = shlex.quote(executable) + config
    sock = shlex.quote(str(socket))
    return "\n".join((
        "# Installed by `formation ssh-setup`: admins log in as this user and get the",
        "# Formation console as their session. Keys come from `formation ssh-keys`.",
        f"Match User {user}",
        "    AuthorizedKeysFile none",
        f"    AuthorizedKeysCommand {base} ssh-keys --socket {sock} --console-user {user} %u",
        f"    AuthorizedKeysCommandUser {keys_user}",
        f"    ForceCommand {base} console --no-embedded --socket {sock}",
        "    PasswordAuthentication no",
        "    KbdInteractiveAuthentication no",
        "    PermitTTY yes",
        "    AllowTcpForwarding no",
        "    AllowStreamLocalForwarding no",  # else `ssh -L` reaches the node's socket directly
        "    AllowAgentForwarding no",
        "    X11Forwarding no",
        "    PermitTunnel no",
        "",
    ))


def _tool(name: str) -> str:
    found = shutil.which(name) or shutil.which(name, path="/usr/sbin:/sbin")
    if found is None:
        raise FormationError(f"{name} not found: create the console user and group yourself")
    return found


def _run(args: list[str], what: str) -> None:
    result = subprocess.run(args, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise FormationError(f"{what} failed: {result.stderr.strip() or result.returncode}")


def ensure_group(group: str) -> bool:
    """Creates a system group. True if it was created."""
    try:
        grp.getgrnam(group)
        return False
    except KeyError:
        pass
    _run([_tool("groupadd"), "--system", group], f"groupadd {group}")
    return True


def ensure_user(user: str, group: str) -> bool:
    """Creates a system user for key logins only, group as its primary group (so a user and a
    group both named `formation` work). Its password is `*` (no password matches it) rather
    than useradd's `!`: without PAM, sshd refuses a `!` account as locked, keys or not.
    True if it was created."""
    try:
        pwd.getpwnam(user)
        return False
    except KeyError:
        pass
    _run([_tool("useradd"), "--system", "--create-home", "--home-dir",
          f"/var/lib/{user}-console", "--shell", "/bin/sh", "--comment", "Formation console",
          "--gid", group, "--password", "*", user], f"useradd {user}")
    return True


def ensure_member(user: str, group: str) -> bool:
    """Puts user in group (root's groups are its own business). True if it was added."""
    entry = pwd.getpwnam(user)
    info = grp.getgrnam(group)
    if entry.pw_uid == 0 or entry.pw_gid == info.gr_gid or user in info.gr_mem:
        return False
    _run([_tool("usermod"), "--append", "--groups", group, user], f"usermod -aG {group} {user}")
    return True


def give_socket_to_group(obj: Context, group: str) -> Path:
    """Writes api.socket_group into the node's config file, and hands the running node's socket
    to the group right away (the node does it itself from its next start)."""
    from formation.commands.node_config import set_config_keys

    socket = obj.settings.api.socket
    config_file = obj.config_file or _default_config_file()
    set_config_keys(config_file, {"api": {"socket_group": group}})
    if socket.exists():
        os.chown(socket, -1, grp.getgrnam(group).gr_gid)
    return socket


def _default_config_file() -> Path:
    from formation.config.paths import default_config_file

    return default_config_file()


def check_sshd(dropin: Path, sshd_config: Path | None) -> str | None:
    """`sshd -t` on the main config (which includes the drop-in); the error text, or None."""
    sshd = shutil.which("sshd") or "/usr/sbin/sshd"
    if not Path(sshd).exists():
        return None
    args = [sshd, "-t"] + (["-f", str(sshd_config)] if sshd_config else [])
    result = subprocess.run(args, capture_output=True, text=True, check=False)
    return None if result.returncode == 0 else (result.stderr.strip() or "sshd -t failed")


@click.command("ssh-setup")
@click.option("--user", default=DEFAULT_USER, show_default=True,
              help="The account admins log in as; its only command is the console.")
@click.option("--group", default=DEFAULT_GROUP, show_default=True,
              help="The group that may use the node's socket; the console user joins it.")
@click.option("--dropin", type=click.Path(path_type=Path), default=DEFAULT_DROPIN,
              show_default=True, help="Where to write the sshd drop-in.")
@click.option("--create-user/--no-create-user", default=True, show_default=True,
              help="Create the user and the group as system accounts if they do not exist, "
              "put the user in the group, and give the node's socket to the group.")
@click.option("--keys-command-user", default=None, metavar="USER",
              help="Who runs `ssh-keys` for sshd (default: the console user).")
@click.option("--check-with", "sshd_config", type=click.Path(path_type=Path), default=None,
              help="Validate with `sshd -t -f FILE` (default: the system sshd_config).")
@click.option("--no-check", is_flag=True, help="Do not run `sshd -t` after writing.")
@click.option("--executable", metavar="PATH", default=None,
              help="The `formation` sshd runs; every directory above it must be root-owned and "
              "not group/world-writable (default: this formation).")
@click.pass_obj
def ssh_setup(obj: Context, user: str, group: str, dropin: Path, create_user: bool,
              keys_command_user: str | None, sshd_config: Path | None, no_check: bool,
              executable: str | None) -> None:
    """Install the sshd drop-in that gives admins the console over SSH.

    Admins log in as USER with a key of an admin account of the network (or one listed in
    the node's `admin_ssh_keys` setting); sshd asks `formation ssh-keys` for the keys and runs
    `formation console` as the session. USER joins GROUP, which the node gives its socket to
    (api.socket_group in the config file). Reload sshd afterwards (systemctl reload ssh).
    """
    if executable is not None and not Path(executable).is_absolute():
        raise FormationError(f"--executable {executable}: expected an absolute path")
    if create_user:
        if ensure_group(group):
            click.echo(f"created system group {group}")
        if ensure_user(user, group):
            click.echo(f"created system user {user}")
        if ensure_member(user, group):
            click.echo(f"added {user} to group {group}")
        socket = give_socket_to_group(obj, group)
        click.echo(f"node socket {socket} belongs to group {group} (api.socket_group)")
    else:
        socket = obj.settings.api.socket
    text = dropin_text(user, executable or formation_executable(), obj.config_file,
                       keys_command_user or user, socket)
    from formation.fileutil import write_text_atomically

    try:
        write_text_atomically(dropin, text)
    except OSError as exc:
        raise FormationError(f"{dropin}: cannot write: {exc.strerror}") from None
    click.echo(f"wrote {dropin}")
    if not no_check:
        problem = check_sshd(dropin, sshd_config)
        if problem:
            raise FormationError(f"sshd rejects the configuration: {problem}")
        click.echo("sshd -t: configuration ok; reload sshd to apply")
