"""What this host can really do. Every 'no' carries its reason, measured, not assumed."""

from formation.node.capabilities.probe import CapabilityProber

__all__ = ["CapabilityProber"]
