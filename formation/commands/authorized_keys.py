"""What sshd's AuthorizedKeysCommand (`formation ssh-keys`) does, in the standard library only:
one HTTP GET over the node's unix socket, the key lines printed. sshd runs it twice per login (to
probe a key, then to check its signature), so its start-up is login time: formation.launcher
sends `formation ssh-keys --socket ...` here before click (~50 ms) is imported, and the click
command in ssh_keys.py (help, and the form without --socket, which needs the settings) uses the
same functions. No pathlib either (it costs ~10 ms)."""

from __future__ import annotations

import json
import socket
import sys
import time

DEFAULT_USER = "formation"
KEYS_PATH = "/v1/ssh/authorized-keys"  # formation.api.ssh_routes.ssh_authorized_keys
TIMEOUT_S = 5.0
GROUP_OPTIONS = {"--config"}  # before `ssh-keys`, as click takes them
SUBCOMMAND_OPTIONS = {"--socket", "--console-user"}


class KeysError(Exception):
    """The node did not give the keys; the message names the socket and why."""


def http_get_unix(socket_path, path: str, timeout_s: float) -> tuple[int, bytes]:
    """One GET over a unix socket, `Connection: close`: (status, body). A raw socket rather
    than http.client, whose header parsing imports the email package (~40 ms of CPU, twice per
    login)."""
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
    out: list[bytes] = []
    while True:
        size_line, _, rest = data.partition(b"\r\n")
        size = int(size_line.split(b";")[0], 16)
        if size == 0:
            return b"".join(out)
        out.append(rest[:size])
        data = rest[size + 2:]


def fetch_key_lines(socket_path, timeout_s: float = TIMEOUT_S) -> list[str]:
    """The node's authorized_keys lines; KeysError naming the socket if it does not answer."""
    try:
        status, body = http_get_unix(socket_path, KEYS_PATH, timeout_s)
    except OSError as exc:
        reason = exc.strerror or str(exc) or type(exc).__name__
        raise KeysError(f"no node service answers on {socket_path}: {reason}") from None
    except ValueError as exc:
        raise KeysError(f"node at {socket_path}: bad HTTP answer: {exc}") from None
    if status != 200:
        raise KeysError(f"node at {socket_path}: {KEYS_PATH} answered {status}")
    try:
        keys = json.loads(body)["keys"]
        return [key["line"] for key in keys]
    except (ValueError, KeyError, TypeError):
        raise KeysError(f"node at {socket_path}: {KEYS_PATH}: not the expected JSON") from None


def authorized_keys_text(lines: list[str]) -> str:
    """One key a line; a line with a newline in it (never from a sane node) is dropped whole,
    so it cannot smuggle a second line with options into sshd's parser."""
    return "".join(f"{line}\n" for line in lines if "\n" not in line and line)


def parse_fast_args(argv: list[str]) -> tuple[str, str, str] | None:
    """(socket, console user, user) from `[--config F] ssh-keys --socket S [--console-user C]
    USER` (the drop-in's form, `--opt=value` too); None for anything else (--help, no --socket,
    an unknown option), which the click command then handles with its usual messages."""
    options: dict[str, str] = {}
    positional: list[str] = []
    args = iter(argv)
    for arg in args:
        if arg.startswith("-"):
            name, has_value, value = arg.partition("=")
            allowed = SUBCOMMAND_OPTIONS if positional else GROUP_OPTIONS
            if name not in allowed or name in options:
                return None
            if not has_value:
                following = next(args, None)
                if following is None:
                    return None
                value = following
            options[name] = value
        else:
            positional.append(arg)
    if positional[:1] != ["ssh-keys"] or len(positional) != 2 or "--socket" not in options:
        return None
    return options["--socket"], options.get("--console-user", DEFAULT_USER), positional[1]


def run_fast(argv: list[str]) -> int | None:
    """`formation ssh-keys` without click: the exit code, or None if argv is not the fast form.
    Output and errors as the click command gives them."""
    parsed = parse_fast_args(argv)
    if parsed is None:
        return None
    socket_path, console_user, user = parsed
    if user != console_user:
        return 0
    try:
        lines = fetch_key_lines(socket_path)
    except KeysError as exc:
        sys.stderr.write(f"formation: error: {exc}\n")
        return 1
    sys.stdout.write(authorized_keys_text(lines))
    sys.stdout.flush()
    return 0
