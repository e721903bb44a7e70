"""Errors raised while loading configuration."""

from __future__ import annotations


class ConfigError(Exception):
    """A configuration file or environment value is invalid.

    The message names the file, the line when known, the source id and the field, and says how
    to fix it. Nothing is crawled when loading fails.
    """
