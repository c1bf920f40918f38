"""A real OpenSSH ssh-agent for tests: started in the foreground (`-D`) on a socket in a short
directory, stopped by its own pid; keys made by ssh-keygen (no passphrase) and added by
ssh-add, exactly as a person would."""

from __future__ import annotations

import base64
import os
import subprocess
from dataclasses import dataclass
from pathlib import Path

from waiting import until_sync


@dataclass
class Agent:
    dir: Path
    socket: Path
    proc: subprocess.Popen[bytes]

    @property
    def env(self) -> dict[str, str]:
        """The environment a person's shell has after `eval $(ssh-agent)`."""
        return {**os.environ, "SSH_AUTH_SOCK": str(self.socket)}

    def make_key(self, name: str, kind: str = "ed25519", comment: str | None = None) -> Path:
        path = self.dir / name
        subprocess.run(["ssh-keygen", "-q", "-t", kind, "-N", "", "-C", comment or name,
                        "-f", str(path)], check=True, capture_output=True, timeout=30)
        return path

    def add(self, name: str, kind: str = "ed25519", comment: str | None = None) -> str:
        """Makes a key and adds it; returns its public key: hex for Ed25519 (what an admin puts
        in an account), the OpenSSH line otherwise."""
        path = self.make_key(name, kind, comment)
        self.ssh_add(str(path))
        line = Path(f"{path}.pub").read_text().split()
        if kind != "ed25519":
            return " ".join(line)
        return base64.b64decode(line[1])[-32:].hex()

    def ssh_add(self, *args: str) -> None:
        subprocess.run(["ssh-add", *args], env=self.env, check=True, capture_output=True,
                       timeout=30)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(timeout=10)


def start_agent(base: Path) -> Agent:
    """`base` must be short (a unix socket path is limited to 108 bytes): use short_tmp."""
    base.mkdir(parents=True, exist_ok=True)
    socket = base / "agent.sock"
    proc = subprocess.Popen(["ssh-agent", "-D", "-a", str(socket)], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    agent = Agent(base, socket, proc)

    def listening() -> bool:
        if proc.poll() is not None:
            raise RuntimeError(f"ssh-agent exited with {proc.returncode}")
        return socket.exists()

    until_sync(listening, 10, what="ssh-agent to listen")
    return agent
