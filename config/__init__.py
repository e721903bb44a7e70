"""Typed configuration: sources.yaml, rules.yaml and settings.yaml, then DWATCH_* env vars.

    settings = load_settings()                 # the packaged config/ directory
    settings = load_settings(Path("myconf"))   # another directory
"""

from __future__ import annotations

from config.errors import ConfigError
from config.loader import DEFAULT_CONFIG_DIR, load_settings, load_sources
from config.settings import CrawlSettings, Settings, SourceConfig

__all__ = [
    "DEFAULT_CONFIG_DIR",
    "ConfigError",
    "CrawlSettings",
    "Settings",
    "SourceConfig",
    "load_settings",
    "load_sources",
]
