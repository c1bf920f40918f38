"""The edge's settings live with every other setting (formation/config/settings.py, `edge:` in
the node's config); this name stays for the edge's own modules."""

from formation.config.settings import EdgeSettings

__all__ = ["EdgeSettings"]
