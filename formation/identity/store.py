"""The identity on disk: a 32-byte seed, hex, in `<data_dir>/identity.key`, mode 0600."""

from __future__ import annotations

import os
import stat
from pathlib import Path

from formation.errors import IdentityError
from formation.identity.keys import NodeIdentity

KEY_FILE = "identity.key"


def identity_path(data_dir: Path) -> Path:
    return data_dir / KEY_FILE


def load_identity(data_dir: Path) -> NodeIdentity:
    """Refuses a key file that others can read: a leaked seed is a stolen node."""
    path = identity_path(data_dir)
    try:
        mode = path.stat().st_mode
        text = path.read_text().strip()
    except FileNotFoundError:
        raise IdentityError(f"{path}: no identity yet (start the node once to make one)") from None
    except PermissionError:
        raise IdentityError(f"{path}: permission denied reading the node identity") from None
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        mode_text = f"{stat.S_IMODE(mode):o}"
        raise IdentityError(f"{path}: mode {mode_text} is too open; run: chmod 600 {path}")
    try:
        seed = bytes.fromhex(text)
    except ValueError:
        seed = b""
    if len(seed) != 32:
        raise IdentityError(f"{path}: expected 64 hex characters (a 32-byte Ed25519 seed)")
    return NodeIdentity.from_seed(seed)


def load_or_create_identity(data_dir: Path) -> NodeIdentity:
    """Creates the key atomically (O_EXCL) so two processes starting at once agree on one key."""
    path = identity_path(data_dir)
    if path.exists():
        return load_identity(data_dir)
    data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    identity = NodeIdentity.generate()
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return load_identity(data_dir)
    with os.fdopen(fd, "w") as handle:
        handle.write(identity.seed.hex() + "\n")
        handle.flush()
        os.fsync(handle.fileno())
    return identity
