"""The identity on disk: a 32-byte seed, hex, in `<data_dir>/identity.key`, mode 0600."""

from __future__ import annotations

import os
import stat
from pathlib import Path

from formation.errors import FormationError, IdentityError
from formation.identity.keys import NodeIdentity

KEY_FILE = "identity.key"


def identity_path(data_dir: Path) -> Path:
    return data_dir / KEY_FILE


def load_identity(data_dir: Path) -> NodeIdentity:
    return read_seed_file(identity_path(data_dir), "no identity yet (start the node once to "
                          "make one)", IdentityError)


def read_seed_file(path: Path, missing: str,
                   error: type[FormationError] = IdentityError) -> NodeIdentity:
    """A node's identity and a person's account key are the same file form. It refuses a file
    that others can read: a leaked seed is a stolen node, or a stolen account. `missing` says
    what to do when there is no file; `error` is the caller's error type."""
    try:
        mode = path.stat().st_mode
        text = path.read_text().strip()
    except FileNotFoundError:
        raise error(f"{path}: {missing}") from None
    except PermissionError:
        raise error(f"{path}: permission denied reading the key") from None
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise error(f"{path}: mode {stat.S_IMODE(mode):o} is too open; run: chmod 600 {path}")
    try:
        seed = bytes.fromhex(text)
    except ValueError:
        seed = b""
    if len(seed) != 32:
        raise error(f"{path}: expected 64 hex characters (a 32-byte Ed25519 seed)")
    return NodeIdentity.from_seed(seed)


def write_seed_file(path: Path, identity: NodeIdentity) -> None:
    """Writes the seed to a new file, mode 0600, created exclusively (O_EXCL: FileExistsError
    if it is there, so two processes starting at once agree on one key), and synced."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(identity.seed.hex() + "\n")
        handle.flush()
        os.fsync(handle.fileno())


def load_or_create_identity(data_dir: Path) -> NodeIdentity:
    """Creates the key atomically (O_EXCL) so two processes starting at once agree on one key."""
    path = identity_path(data_dir)
    if path.exists():
        return load_identity(data_dir)
    data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    identity = NodeIdentity.generate()
    try:
        write_seed_file(path, identity)
    except FileExistsError:
        return load_identity(data_dir)
    return identity
