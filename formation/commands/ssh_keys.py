"""`formation ssh-keys USER`: sshd's AuthorizedKeysCommand. sshd runs it on every login attempt,
so it is the fastest path through the CLI: the standard library only, one HTTP GET over the
node's unix socket (the socket path comes from the drop-in; without --socket the node's settings
are loaded to find it, which costs pydantic and yaml). The node answers from the replicated admin
list, so this command keeps no copy of it."""

from __future__ import annotations

import http.client
import json
import socket
from pathlib import Path

import click

from formation.commands.common import Context
from formation.errors import FormationError

DEFAULT_USER = "formation"
KEYS_PATH = "/v1/ssh/authorized-keys"  # formation.api.ssh_routes.ssh_authorized_keys
TIMEOUT_S = 5.0


class UnixHTTPConnection(http.client.HTTPConnection):
    """http.client over a unix socket: the node API without aiohttp."""

    def __init__(self, path: Path, timeout: float) -> None:
        super().__init__("localhost", timeout=timeout)
        self.unix_path = str(path)

    def connect(self) -> None:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(self.timeout)
        try:
            sock.connect(self.unix_path)
        except OSError:
            sock.close()
            raise
        self.sock = sock


def fetch_authorized_keys(socket_path: Path, timeout_s: float = TIMEOUT_S) -> list[str]:
    """The node's authorized_keys lines; FormationError naming the socket if it does not answer."""
    conn = UnixHTTPConnection(socket_path, timeout_s)
    try:
        conn.request("GET", KEYS_PATH, headers={"Accept": "application/json"})
        response = conn.getresponse()
        body = response.read()
    except OSError as exc:
        reason = exc.strerror or str(exc) or type(exc).__name__
        raise FormationError(f"no node service answers on {socket_path}: {reason}") from None
    except http.client.HTTPException as exc:
        raise FormationError(f"node at {socket_path}: bad HTTP answer: {exc!r}") from None
    finally:
        conn.close()
    if response.status != 200:
        raise FormationError(f"node at {socket_path}: {KEYS_PATH} answered {response.status}")
    try:
        keys = json.loads(body)["keys"]
        return [key["line"] for key in keys]
    except (ValueError, KeyError, TypeError):
        raise FormationError(f"node at {socket_path}: {KEYS_PATH}: not the expected JSON") from None


@click.command("ssh-keys")
@click.argument("user")
@click.option("--console-user", default=DEFAULT_USER, show_default=True,
              help="Only this account gets keys; any other user gets none.")
@click.option("--socket", "socket_path", default=None,
              type=click.Path(path_type=Path, readable=False),
              help="The node's API socket (default: api.socket of the node's settings).")
@click.pass_obj
def ssh_keys(obj: Context, user: str, console_user: str, socket_path: Path | None) -> None:
    """Print the admin SSH public keys allowed to log in as USER (for AuthorizedKeysCommand).

    The running node answers: the admin accounts of the replicated state and its own
    admin_ssh_keys setting. Prints nothing for any user but the console user; with no node
    answering, prints nothing and exits 1 (nobody logs in).
    """
    if user != console_user:
        return
    lines = fetch_authorized_keys(socket_path or obj.settings.api.socket)
    click.echo("".join(f"{line}\n" for line in lines if "\n" not in line and line), nl=False)
