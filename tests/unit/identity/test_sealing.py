"""Sealed secrets open only for their recipient."""

import pytest

from formation.identity.keys import NodeIdentity
from formation.identity.sealing import SealError, open_sealed, seal_to


def test_recipient_opens_what_was_sealed_to_it() -> None:
    node = NodeIdentity.generate()
    sealed = seal_to(node.public_key_hex, b"certificate key")
    assert open_sealed(node, sealed) == b"certificate key"


def test_another_node_cannot_open_it() -> None:
    sealed = seal_to(NodeIdentity.generate().public_key_hex, b"secret")
    with pytest.raises(SealError, match="not sealed to this node"):
        open_sealed(NodeIdentity.generate(), sealed)


def test_damaged_or_malformed_input_is_refused() -> None:
    node = NodeIdentity.generate()
    sealed = seal_to(node.public_key_hex, b"secret")
    with pytest.raises(SealError):
        open_sealed(node, sealed[:-8] + "AAAAAAA=")
    with pytest.raises(SealError, match="recipient"):
        seal_to("zz", b"secret")
