"""Over SSH, admins get the console as their session: `formation ssh-setup` installs an sshd
drop-in for a dedicated user whose only command is the console, and whose authorized keys come
from `formation ssh-keys` (today the `admin_ssh_keys` setting; later the replicated admin list)."""

from __future__ import annotations

import pwd
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import click

from formation.commands.common import Context
from formation.errors import FormationError
from formation.fileutil import write_text_atomically

DEFAULT_USER = "formation"
DEFAULT_DROPIN = Path("/etc/ssh/sshd_config.d/formation.conf")


def formation_executable() -> str:
    """The absolute path sshd will run (sshd insists on absolute, root-owned commands): the
    `formation` being run now, else the one on PATH."""
    me = Path(sys.argv[0])
    if me.name == "formation" and me.exists():
        return str(me.absolute())
    found = shutil.which("formation")
    return str(Path(found).absolute()) if found else "/usr/bin/formation"


def dropin_text(user: str, executable: str, config_file: Path | None, keys_user: str) -> str:
    config = f" --config {shlex.quote(str(config_file))}" if config_file else ""
    base = shlex.quote(executable) + config
    return "\n".join((
        "# Installed by `formation ssh-setup`: admins log in as this user and get the",
        "# Formation console as their session. Keys come from `formation ssh-keys`.",
        f"Match User {user}",
        "    AuthorizedKeysFile none",
        f"    AuthorizedKeysCommand {base} ssh-keys --console-user {user} %u",
        f"    AuthorizedKeysCommandUser {keys_user}",
        f"    ForceCommand {base} console --no-embedded",
        "    PasswordAuthentication no",
        "    KbdInteractiveAuthentication no",
        "    PermitTTY yes",
        "    AllowTcpForwarding no",
        "    AllowAgentForwarding no",
        "    X11Forwarding no",
        "    PermitTunnel no",
        "",
    ))


def ensure_user(user: str) -> bool:
    """Creates a system user with no password (key logins only). True if it was created."""
    try:
        pwd.getpwnam(user)
        return False
    except KeyError:
        pass
    useradd = shutil.which("useradd")
    if useradd is None:
        raise FormationError("useradd not found: create the console user yourself")
    result = subprocess.run(
        [useradd, "--system", "--create-home", "--home-dir", f"/var/lib/{user}-console",
         "--shell", "/bin/sh", "--comment", "Formation console", user],
        capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise FormationError(f"useradd {user} failed: {result.stderr.strip()}")
    return True


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
@click.option("--dropin", type=click.Path(path_type=Path), default=DEFAULT_DROPIN,
              show_default=True, help="Where to write the sshd drop-in.")
@click.option("--create-user/--no-create-user", default=True, show_default=True,
              help="Create the user as a system account if it does not exist.")
@click.option("--keys-command-user", default=None, metavar="USER",
              help="Who runs `ssh-keys` for sshd (default: the console user).")
@click.option("--check-with", "sshd_config", type=click.Path(path_type=Path), default=None,
              help="Validate with `sshd -t -f FILE` (default: the system sshd_config).")
@click.option("--no-check", is_flag=True, help="Do not run `sshd -t` after writing.")
@click.option("--executable", metavar="PATH", default=None,
              help="The `formation` sshd runs; every directory above it must be root-owned and "
              "not group/world-writable (default: this formation).")
@click.pass_obj
def ssh_setup(obj: Context, user: str, dropin: Path, create_user: bool,
              keys_command_user: str | None, sshd_config: Path | None, no_check: bool,
              executable: str | None) -> None:
    """Install the sshd drop-in that gives admins the console over SSH.

    Admins log in as USER with a key listed in the node's `admin_ssh_keys` setting; sshd asks
    `formation ssh-keys` for the keys and runs `formation console` as the session. Reload sshd
    afterwards (systemctl reload ssh).
    """
    if create_user and ensure_user(user):
        click.echo(f"created system user {user}")
    if executable is not None and not Path(executable).is_absolute():
        raise FormationError(f"--executable {executable}: expected an absolute path")
    text = dropin_text(user, executable or formation_executable(), obj.config_file,
                       keys_command_user or user)
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


@click.command("ssh-keys")
@click.argument("user")
@click.option("--console-user", default=DEFAULT_USER, show_default=True,
              help="Only this account gets keys; any other user gets none.")
@click.pass_obj
def ssh_keys(obj: Context, user: str, console_user: str) -> None:
    """Print the admin SSH public keys allowed to log in as USER (for AuthorizedKeysCommand).

    Today the keys come from the `admin_ssh_keys` setting; with the state store they will come
    from the replicated admin list. Prints nothing for any user but the console user.
    """
    if user != console_user:
        return
    for key in obj.settings.admin_ssh_keys:
        click.echo(key)
