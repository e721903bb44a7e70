"""What researchers read: the daily digest of new candidates (Markdown, HTML, Atom, e-mail).

    result = write_digest(settings, date(2024, 5, 1), send=True)
    print(result.markdown_path, result.delivery)

``review`` reads the store only through ``store.queue`` and never imports ``crawler``.
"""

from __future__ import annotations

from review.digest import DigestItem, DigestResult, gather_candidates, write_digest
from review.errors import DigestError

__all__ = ["DigestError", "DigestItem", "DigestResult", "gather_candidates", "write_digest"]
