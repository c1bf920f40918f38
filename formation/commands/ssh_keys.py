"""`formation ssh-keys USER`: sshd's AuthorizedKeysCommand. sshd runs it on every login attempt,
so it is the fastest path through the CLI: click and the standard library only, one HTTP GET
over the node's unix socket (the socket path comes from the drop-in; without --socket the
node's settings are loaded to find it, which costs pydantic and yaml). The node answers from the
replicated admin list, so this command keeps no copy of it."""

from __future__ import annotations

import json
import socket
import time
from pathlib import Path

import click

from formation.commands.common import Context
from formation.errors import FormationError

DEFAULT_USER = "formation"
KEYS_PATH = "/v1/ssh/authorized-keys"  # formation.api.ssh_routes.ssh_authorized_keys
TIMEOUT_S = 5.0


def http_get_unix(socket_path: Path, path: str, timeout_s: float) -> tuple[int, bytes]:
    """One GET over a unix socket, `Connection: close`: (status, body). A raw socket rather
    than http.client, whose header parsing imports the email package (~40 ms of CPU, twice per
    login: sshd asks once to probe a key and once to check its signature)."""
    request = (f"GET {path} HTTP/1.1\r\nHost: node\r\nAccept: application/json\r\n"
               "Connection: close\r\n\r\n").encode()
    deadline = time.monotonic() + timeout_s
    chunks = []
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(timeout_s)
        sock.connect(str(socket_path))
        sock.sendall(request)
        while chunk := sock.recv(65536):
            chunks.append(chunk)
            if time.monotonic() > deadline:
                raise TimeoutError("timed out")
    head, _, body = b"".join(chunks).partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = lines[0].split()
    if len(status) < 2 or not status[0].startswith("HTTP/") or not status[1].isdigit():
        raise ValueError(f"not an HTTP answer: {lines[0][:60]!r}")
    headers = {k.strip().lower(): v.strip() for k, _, v in (ln.partition(":") for ln in lines[1:])}
    if headers.get("transfer-encoding", "").lower() == "chunked":
        body = _unchunk(body)
    return int(status[1]), body


def _unchunk(data: bytes) -> bytes:
    out = []
    while True:
        size_line, _, rest = data.partition(b"\r\n")
        size = int(size_line.split(b";")[0], 16)
        if size == 0:
            return b"".join(out)
        out.append(rest[:size])
        data = rest[size + 2:]


def fetch_authorized_keys(socket_path: Path, timeout_s: float = TIMEOUT_S) -> list[str]:
    """The node's authorized_keys lines; FormationError naming the socket if it does not answer."""
    try:
        status, body = http_get_unix(socket_path, KEYS_PATH, timeout_s)
    except OSError as exc:
        reason = exc.strerror or str(exc) or type(exc).__name__
        raise FormationError(f"no node service answers on {socket_path}: {reason}") from None
    except ValueError as exc:
        raise FormationError(f"node at {socket_path}: bad HTTP answer: {exc}") from None
    if status != 200:
        raise FormationError(f"node at {socket_path}: {KEYS_PATH} answered {status}")
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
