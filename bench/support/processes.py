"""Real processes around the console, shared by bench/tui.py and the console tests: a
`formation node` process, OpenSSH (sshd on a loopback port with its own config, host key and
pid file; `ssh` as the client), the console on an 80x24 pseudo-terminal. Every process is
started in its own session, so stopping it stops its children too. A private tmux server
(its own socket) plays a person's terminal.

It lives in bench/support/ because a benchmark runs as a script (bench/ is then first on
sys.path, so `support.processes` imports without path editing; `just bench` runs only
bench/*.py) and must not import tests/; tests import it as `bench.support.processes` (the
checkout is on their sys.path). So it imports neither: it waits on what the processes say
(the node's READY=1, sshd's "Server listening"), not by polling."""

from __future__ import annotations

import fcntl
import os
import pty
import select
import shlex
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import termios
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import yaml

SSHD = shutil.which("sshd") or "/usr/sbin/sshd"
FORMATION = str(Path(sys.executable).parent / "formation")


def have_ssh_tools() -> bool:
    return (os.geteuid() == 0 and Path(SSHD).exists() and shutil.which("ssh") is not None
            and Path(FORMATION).exists())


def keygen(path: Path, comment: str = "admin@test") -> str:
    """A fresh ed25519 key pair at path (and path.pub); returns the public line."""
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", comment,
                    "-f", str(path)], check=True)
    return path.with_suffix(".pub").read_text().strip()


def write_node_config(base: Path, name: str, **extra) -> Path:
    """A node config with everything under base: data dir, socket, no KVM boot test."""
    config = base / "node.yaml"
    config.write_text(yaml.safe_dump({
        "name": name, "data_dir": str(base / "data"),
        "api": {"socket": str(base / "node.sock")}, "probe": {"boot_test": False}, **extra}))
    return config


def start_node_process(config: Path, env: dict[str, str] | None = None) -> subprocess.Popen:
    """`formation node` (through `python -m`, the same code as the script)."""
    return subprocess.Popen(
        [sys.executable, "-m", "formation", "--config", str(config), "node"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True, env=env)


def stop_process(proc: subprocess.Popen) -> None:
    """SIGTERM to the process group, SIGKILL after 10 s."""
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


@contextmanager
def node_process(config: Path, ready_s: float = 30.0) -> Iterator[subprocess.Popen]:
    """A node process that has said READY=1 (sd_notify, as to systemd: its socket is served),
    stopped on exit."""
    with tempfile.TemporaryDirectory(prefix="fm-notify-") as tmp, \
            socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as notify:
        notify.bind(str(Path(tmp) / "notify"))
        notify.settimeout(ready_s)
        proc = start_node_process(config, {**os.environ, "NOTIFY_SOCKET": notify.getsockname()})
        try:
            try:
                said = notify.recv(4096)
            except TimeoutError:
                said = b""
            if said != b"READY=1":
                raise AssertionError(f"the node did not say READY=1 within {ready_s:g} s "
                                     f"(said {said!r}, exit code {proc.poll()})")
            yield proc
        finally:
            stop_process(proc)


def _reachable_by_all(path: Path) -> bool:
    """Every directory above path searchable by others (a python under /root is not)."""
    return all(parent.stat().st_mode & 0o001 for parent in path.resolve().parents)


def _python_for_other_users() -> Path | None:
    """This interpreter if others can run it (a venv's python is a link to it), else the
    system python of the same version (this one may live under a 0700 home, as pyenv's)."""
    mine = Path(sys.executable).resolve()
    if _reachable_by_all(mine):
        return mine
    system = Path(f"/usr/bin/python{sys.version_info.major}.{sys.version_info.minor}")
    return system if system.exists() else None


def _link_or_copy(source: str, target: str) -> None:
    try:
        os.link(source, target)
    except OSError:
        shutil.copy2(source, target)


def _not_copied(directory: str, names: list[str]) -> set[str]:
    """The checkout's own package (copied apart) and its editable-install hooks."""
    return {n for n in names if n == "formation" or n.startswith("__editable__")
            or n.endswith(".pth")}


@contextmanager
def installed_for_other_users() -> Iterator[Path]:
    """This checkout installed the way the appliance has it (image/overlay/usr/bin/formation):
    the package and its libraries in one `site` directory that every user can read, run by
    the system python through a tiny script that puts it on sys.path. Yields the site
    directory. The test's checkout and venv may sit under a 0700 directory (CI clones into
    `mktemp -d`), which the console user cannot enter. The libraries are hard links to this
    environment's files (copies across file systems), byte-compiled (the console user cannot
    write __pycache__), so this takes about a second; a session makes it once."""
    import compileall
    import sysconfig

    import formation

    root = Path(tempfile.mkdtemp(prefix="fmtest-site-", dir="/tmp"))
    try:
        root.chmod(0o755)
        site = root / "site"
        shutil.copytree(sysconfig.get_paths()["purelib"], site, ignore=_not_copied,
                        copy_function=_link_or_copy, symlinks=True)
        shutil.copytree(Path(formation.__file__).parent, site / "formation",
                        ignore=shutil.ignore_patterns("__pycache__"))
        compileall.compile_dir(site / "formation", quiet=1)
        yield site
    finally:
        shutil.rmtree(root, ignore_errors=True)


def can_run_for_other_users() -> bool:
    return _python_for_other_users() is not None


@contextmanager
def safe_executable(site: Path | None = None) -> Iterator[str]:
    """sshd runs an AuthorizedKeysCommand only if every directory above it is root-owned and
    not group- or world-writable; a checkout under /tmp fails that. A `formation` in a fresh
    0755 directory under /run passes it: a wrapper that runs this checkout's script, or, with
    site (from installed_for_other_users), the appliance's script, which any user can run."""
    safe_dir = Path(tempfile.mkdtemp(prefix="fmtest-", dir="/run"))
    if site is None:
        text = f"#!/bin/sh\nexec {shlex.quote(FORMATION)} \"$@\"\n"
    else:
        text = (f"#!{_python_for_other_users()}\nimport sys\n\nsys.path.insert(0, {str(site)!r})\n"
                "from formation.launcher import main  # noqa: E402\n\nmain()\n")
    try:
        safe_dir.chmod(0o755)
        wrapper = safe_dir / "formation"
        wrapper.write_text(text)
        wrapper.chmod(0o755)
        yield str(wrapper)
    finally:
        shutil.rmtree(safe_dir, ignore_errors=True)


class Sshd:
    """sshd -D on 127.0.0.1:port with its own config in base, which Includes the drop-in."""

    def __init__(self, base: Path) -> None:
        self.base = base
        with socket.socket() as probe:  # a free port, as tests/ports.py picks one
            probe.bind(("127.0.0.1", 0))
            self.port = probe.getsockname()[1]
        self.dropin = base / "formation.conf"
        self.config = base / "sshd_config"
        self.log = base / "sshd.log"
        self.proc: subprocess.Popen | None = None
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f",
                        str(base / "host_key")], check=True)
        self.config.write_text("\n".join((
            f"Port {self.port}", "ListenAddress 127.0.0.1", f"HostKey {base / 'host_key'}",
            f"PidFile {base / 'sshd.pid'}", "UsePAM no", "StrictModes no",
            "PermitRootLogin prohibit-password", "PasswordAuthentication no",
            "AuthorizedKeysFile none", "LogLevel VERBOSE", f"Include {self.dropin}", "")))

    def start(self, listen_s: float = 10.0) -> None:
        """sshd with its log on stderr (-e), copied to self.log by a thread that also notes the
        "Server listening" line: the moment it accepts connections."""
        Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)
        self.proc = subprocess.Popen([SSHD, "-D", "-e", "-f", str(self.config)],
                                     stderr=subprocess.PIPE, start_new_session=True)
        listening = threading.Event()
        threading.Thread(target=self._copy_log, args=(self.proc, listening), daemon=True).start()
        if not listening.wait(listen_s) or self.proc.poll() is not None:
            raise AssertionError(f"sshd did not listen within {listen_s:g} s: {self.log_tail()}")

    def _copy_log(self, proc: subprocess.Popen, listening: threading.Event) -> None:
        assert proc.stderr is not None
        with self.log.open("wb") as log:
            for line in proc.stderr:
                log.write(line)
                log.flush()
                if line.startswith(b"Server listening on"):
                    listening.set()
        listening.set()  # sshd is gone: start() reports it rather than waiting on

    def stop(self) -> None:
        if self.proc is not None:
            stop_process(self.proc)

    def log_tail(self) -> str:
        return self.log.read_text()[-2000:] if self.log.exists() else "(no sshd log)"

    def client_args(self, key: Path, user: str) -> list[str]:
        """`ssh -t` as user with only this key, trusting any host key, quiet."""
        return ["ssh", "-t", "-p", str(self.port), "-i", str(key), "-o", "IdentitiesOnly=yes",
                "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null",
                "-o", "LogLevel=ERROR", f"{user}@127.0.0.1"]


class Tmux:
    """A private tmux server (its own socket name), so nobody else's sessions are touched."""

    def __init__(self, name: str) -> None:
        self.base = ["tmux", "-L", name]

    def run(self, *args: str) -> str:
        return subprocess.run([*self.base, *args], capture_output=True, text=True,
                              check=False).stdout

    def start(self, session: str, command: list[str], width: int = 80, height: int = 24) -> None:
        self.run("new-session", "-d", "-s", session, "-x", str(width), "-y", str(height),
                 shlex.join(command))

    def screen(self, session: str) -> str:
        return self.run("capture-pane", "-p", "-t", session)

    def kill(self) -> None:
        self.run("kill-server")


def process_cpu_s(pid: int) -> float | None:
    """CPU seconds (user + system, all threads) a running process has used so far."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def run_on_pty(args: list[str], timeout_s: float = 30.0) -> tuple[int | None, bytes]:
    """Runs args on a fresh 80x24 pty to its end: (exit code, None if it had to be stopped;
    everything it wrote to the terminal)."""
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 80, 0, 0))
    proc = subprocess.Popen(args, stdin=slave, stdout=slave, stderr=slave,
                            start_new_session=True, env={**os.environ, "TERM": "xterm-256color"})
    os.close(slave)
    output = b""
    deadline = time.monotonic() + timeout_s
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([master], [], [], 0.05)
            if ready:
                try:
                    chunk = os.read(master, 65536)
                except OSError:  # EIO: every writer closed the terminal
                    break
                if not chunk:
                    break
                output += chunk
            elif proc.poll() is not None:
                break
        return proc.poll() if proc.poll() is not None else proc.wait(1), output
    except subprocess.TimeoutExpired:
        return None, output
    finally:
        stop_process(proc)
        os.close(master)


def time_to_markers(args: list[str], markers: list[bytes], timeout_s: float = 30.0,
                    env: dict | None = None,
                    cpu_at_markers: list[float | None] | None = None) -> list[float | None]:
    """Runs args on a fresh 80x24 pty; seconds until each marker appears in its output. With
    cpu_at_markers, also the process's CPU seconds at each marker (appended): a figure that a
    busy machine disturbs far less than wall time."""
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 80, 0, 0))
    start = time.perf_counter()
    proc = subprocess.Popen(args, stdin=slave, stdout=slave, stderr=slave,
                            start_new_session=True,
                            env={**os.environ, "TERM": "xterm-256color", **(env or {})})
    os.close(slave)
    seen = b""
    found: list[float | None] = [None] * len(markers)
    cpu_seen: dict[int, float | None] = {}
    try:
        while time.perf_counter() - start < timeout_s and None in found:
            ready, _, _ = select.select([master], [], [], 0.05)
            if ready:
                try:
                    seen += os.read(master, 65536)
                except OSError:
                    break
                now = time.perf_counter() - start
                fresh = [f is None and m in seen for f, m in zip(found, markers, strict=True)]
                if any(fresh):
                    cpu = process_cpu_s(proc.pid)
                    cpu_seen.update({i: cpu for i, new in enumerate(fresh) if new})
                found = [now if new else f for f, new in zip(found, fresh, strict=True)]
    finally:
        stop_process(proc)
        os.close(master)
    if cpu_at_markers is not None:
        cpu_at_markers.extend(cpu_seen.get(i) for i in range(len(markers)))
    return found
