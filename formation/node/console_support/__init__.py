"""What the node serves for its console: host samples, a log ring, editable settings."""

from formation.node.console_support.component import ConsoleSupport

__all__ = ["ConsoleSupport"]
