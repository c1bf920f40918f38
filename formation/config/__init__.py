"""Node configuration: one YAML file, environment overrides, validated into typed settings."""

from formation.config.loader import load_settings
from formation.config.settings import NodeSettings

__all__ = ["NodeSettings", "load_settings"]
