"""Exceptions raised by the store.

Callers translate them at their boundary: the CLI into ``click.ClickException``, the web UI
into its error page, the crawler's store pipeline into a stats counter.
"""

from __future__ import annotations

__all__ = ["ArchiveError", "DecisionError", "StoreError"]


class StoreError(Exception):
    """The database or the archive cannot do what was asked; the message says why and how to fix."""


class DecisionError(StoreError):
    """A researcher's decision cannot be recorded: unknown candidate or invalid decision."""


class ArchiveError(StoreError):
    """A WARC record cannot be written or read back (missing file, truncated record, bad input)."""
