"""A node's identity: one Ed25519 seed from which every key of the node is derived."""

from formation.identity.keys import NodeIdentity, node_id_for
from formation.identity.store import load_or_create_identity

__all__ = ["NodeIdentity", "load_or_create_identity", "node_id_for"]
