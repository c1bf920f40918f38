"""A person's side of tenancy: their account key on their own machine, and which node to ask.

The key file is the same form as a node's identity (64 hex characters of an Ed25519 seed, one
line, mode 0600), with the public key beside it in KEY.pub: the only part that is ever shown
or given to an admin. Or the key stays in a running ssh-agent (`agent:`, `agent:SHA256:...`,
`agent:COMMENT`; identity/agent.py) and never touches this process. Profiles live in
~/.config/formation/client.yaml:

    default: lab
    profiles:
      lab: {node: "192.0.2.10:7701", key: "~/.config/formation/alice.key"}
      work: {node: "192.0.2.10:7701", key: "agent:alice@laptop"}

`--node` and `--key` given on the command line win over the profile."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import yaml

from formation.errors import FormationError
from formation.identity.agent import agent_signer, find_agent_signer, is_agent_spec
from formation.identity.keys import NodeIdentity
from formation.identity.signer import Signer
from formation.identity.store import read_seed_file, write_seed_file


class ProfileError(FormationError):
    pass


def create_key(path: Path) -> NodeIdentity:
    """A new key at `path` (0600, created exclusively: never overwrites) and `path`.pub."""
    public = Path(f"{path}.pub")
    for existing in (path, public):
        if existing.exists():
            raise ProfileError(f"{existing}: exists; refusing to overwrite a key")
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    identity = NodeIdentity.generate()
    try:
        write_seed_file(path, identity)
    except FileExistsError:
        raise ProfileError(f"{path}: exists; refusing to overwrite a key") from None
    public.write_text(identity.public_key_hex + "\n")
    return identity


def load_key(path: Path) -> NodeIdentity:
    """Refuses a key file others can read, as the node does with its own."""
    return read_seed_file(path, f"no such key file (make one: formation key create {path})",
                          ProfileError)


def load_signer(spec: str) -> Signer:
    """The key named by `--key` (or a profile): `agent:...` asks the ssh-agent, anything else
    is a key file. Outside an event loop only (the CLI, before its command runs)."""
    if is_agent_spec(spec):
        return agent_signer(spec)
    return load_key(Path(spec).expanduser())


async def load_signer_async(spec: str) -> Signer:
    """`load_signer` for code inside an event loop."""
    if is_agent_spec(spec):
        return await find_agent_signer(spec)
    return load_key(Path(spec).expanduser())


def public_key_of(text: str) -> str:
    """A public key given as 64 hex characters, as a KEY.pub file or as `agent:...` (a key of
    this machine's ssh-agent: an admin's own account). A secret key file is refused: its seed
    must never be written into the replicated state."""
    if len(text) == 64 and all(c in "0123456789abcdef" for c in text):
        return text
    if is_agent_spec(text):
        return agent_signer(text).public_key_hex
    path = Path(text).expanduser()
    if not path.name.endswith(".pub"):
        raise ProfileError(f"--key {text}: expected a public key, 64 hex characters, a .pub "
                           "file or agent:... (never the secret key file)")
    try:
        value = path.read_text().strip()
    except OSError as exc:
        raise ProfileError(f"--key {text}: cannot read it ({exc.strerror})") from None
    if len(value) != 64 or any(c not in "0123456789abcdef" for c in value):
        raise ProfileError(f"--key {text}: expected 64 hex characters in the file")
    return value


def config_path() -> Path:
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "formation" / "client.yaml"


@dataclass(frozen=True)
class Target:
    """The node to ask and the key to sign with: a key file's path (~ expanded) or an
    `agent:...` spec, as `load_signer` takes it."""

    node: str
    key: str


def resolve(node: str | None, key: str | None, profile: str | None,
            path: Path | None = None) -> Target:
    """The node and key to use: flags first, then the named (or default) profile."""
    path = path or config_path()
    chosen: dict[str, str] = {}
    if profile is not None or node is None or key is None:
        data = _read(path)
        name = profile or data.get("default")
        profiles = data.get("profiles") or {}
        if not isinstance(profiles, dict) or not (name is None or isinstance(name, str)):
            raise ProfileError(f"{path}: expected profiles as a map and default as a name")
        if name is not None:
            if name not in profiles or not isinstance(profiles[name], dict):
                raise ProfileError(f"profile {name!r}: not in {path}")
            chosen = {k: str(v) for k, v in profiles[name].items()}
    node = node or chosen.get("node")
    key = key or chosen.get("key")
    if not node:
        raise ProfileError(f"--node: expected HOST:PORT (or a profile with node in {path})")
    if not key:
        raise ProfileError(f"--key: expected your key file or agent:... (or a profile with key "
                           f"in {path})")
    return Target(node, key if is_agent_spec(key) else str(Path(key).expanduser()))


def _read(path: Path) -> dict[str, object]:
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except FileNotFoundError:
        return {}
    except (OSError, yaml.YAMLError) as exc:
        raise ProfileError(f"{path}: cannot be read ({type(exc).__name__})") from None
    if not isinstance(data, dict):
        raise ProfileError(f"{path}: expected a map with profiles")
    return data
