"""The exceptions of the review package (the CLI turns them into click errors)."""

from __future__ import annotations

__all__ = ["DigestError"]


class DigestError(Exception):
    """The daily digest could not be built, written or delivered; the message says how to fix it.

    Raised after the files that could be written are on disk: a failed delivery loses nothing.
    """
