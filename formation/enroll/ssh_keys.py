"""Checks an OpenSSH public key line (`ssh-ed25519 AAAA... comment`) the way sshd reads it: the
type named in front must be the type encoded inside the base64 blob."""

from __future__ import annotations

import base64
import binascii
import struct

KEY_TYPES = (
    "ssh-ed25519",
    "ecdsa-sha2-nistp256",
    "ecdsa-sha2-nistp384",
    "ecdsa-sha2-nistp521",
    "sk-ssh-ed25519@openssh.com",
    "sk-ecdsa-sha2-nistp256@openssh.com",
    "ssh-rsa",
)


def check_ssh_public_key(line: str) -> str:
    """Returns the line stripped, or raises ValueError saying what is wrong with it."""
    parts = line.strip().split(None, 2)
    if len(parts) < 2:
        raise ValueError("expected an SSH public key line: TYPE BASE64 [COMMENT]")
    key_type, blob_text = parts[0], parts[1]
    if key_type not in KEY_TYPES:
        known = ", ".join(KEY_TYPES)
        raise ValueError(f"unknown SSH key type {key_type!r}; expected one of {known}")
    try:
        blob = base64.b64decode(blob_text, validate=True)
    except (binascii.Error, ValueError):
        raise ValueError(f"the {key_type} key is not valid base64") from None
    if len(blob) < 4:
        raise ValueError(f"the {key_type} key is truncated")
    (length,) = struct.unpack(">I", blob[:4])
    inner = blob[4 : 4 + length]
    if len(inner) != length or inner.decode("ascii", "replace") != key_type:
        raise ValueError(f"the key's data does not hold a {key_type} key (copied incompletely?)")
    return line.strip()
