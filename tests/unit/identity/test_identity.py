"""The node identity: one seed on disk (0600), every key derived from it, never shown."""

from __future__ import annotations

import base64
import os
import stat
from pathlib import Path

import pytest
from nacl import bindings
from nacl.signing import VerifyKey

from formation.errors import IdentityError
from formation.identity import NodeIdentity, load_or_create_identity, node_id_for
from formation.identity.store import identity_path, load_identity


def test_created_0600_on_first_start_and_reloaded_identically(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    first = load_or_create_identity(data_dir)
    key_file = identity_path(data_dir)
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    again = load_or_create_identity(data_dir)
    assert again.seed == first.seed
    assert again.node_id == first.node_id
    assert again.wireguard_private_key == first.wireguard_private_key
    assert load_identity(data_dir).public_key == first.public_key


@pytest.mark.parametrize("mode", [0o640, 0o604, 0o660, 0o644])
def test_too_open_key_file_is_refused(tmp_path: Path, mode: int) -> None:
    load_or_create_identity(tmp_path)
    key_file = identity_path(tmp_path)
    os.chmod(key_file, mode)
    with pytest.raises(IdentityError) as info:
        load_or_create_identity(tmp_path)
    message = str(info.value)
    assert f"mode {mode:o} is too open" in message and f"chmod 600 {key_file}" in message
    assert key_file.read_text().strip() not in message


def test_corrupt_key_file_is_refused_without_echoing_it(tmp_path: Path) -> None:
    key_file = identity_path(tmp_path)
    key_file.write_text("deadbeef\n")
    os.chmod(key_file, 0o600)
    with pytest.raises(IdentityError, match="expected 64 hex characters") as info:
        load_identity(tmp_path)
    assert "deadbeef" not in str(info.value)


def test_missing_key_file_says_how_to_make_one(tmp_path: Path) -> None:
    with pytest.raises(IdentityError, match="no identity yet"):
        load_identity(tmp_path)


def test_node_id_is_derived_from_the_public_key() -> None:
    ident = NodeIdentity.generate()
    other = NodeIdentity.generate()
    assert ident.node_id == node_id_for(ident.public_key)
    assert ident.node_id != other.node_id
    assert ident.node_id.startswith("n") and len(ident.node_id) == 25
    assert ident.node_id == ident.node_id.lower()


def test_signatures_verify_with_the_public_key() -> None:
    ident = NodeIdentity.generate()
    signature = ident.sign(b"message")
    VerifyKey(bytes.fromhex(ident.public_key_hex)).verify(b"message", signature)


def test_wireguard_key_pair_is_consistent() -> None:
    """The X25519 public key computed from the derived private key is the advertised one."""
    ident = NodeIdentity.from_seed(bytes(range(32)))
    private = base64.b64decode(ident.wireguard_private_key)
    public = base64.b64decode(ident.wireguard_public_key)
    assert len(private) == 32 and len(public) == 32
    assert bindings.crypto_scalarmult_base(private) == public
    assert private != ident.seed


def test_repr_and_str_never_contain_the_seed() -> None:
    ident = NodeIdentity.generate()
    secrets = {ident.seed.hex(), ident.wireguard_private_key, repr(ident.seed),
               base64.b64encode(ident.seed).decode()}
    for text in (repr(ident), str(ident), f"{ident}", f"{ident!r}", repr([ident])):
        assert ident.node_id in text
        for secret in secrets:
            assert secret not in text
