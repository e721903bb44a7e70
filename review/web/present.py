"""How values look on the pages: Jinja filters for dates, scores, statuses and crawled URLs.

Crawled values are hostile: templates escape them (autoescape), and a crawled URL becomes a
link only through ``http_url`` (absolute http/https, cleaned and percent-encoded), else it is
shown as text.
"""

from __future__ import annotations

import mimetypes
import re
from collections.abc import Callable
from datetime import date, datetime
from typing import Any

from review.render import link_url

__all__ = ["TEMPLATE_FILTERS", "download_extension", "fmt_datetime", "fmt_day", "fmt_score", "http_url"]

_EXTENSIONS = {
    "text/html": "html",
    "application/xhtml+xml": "html",
    "text/plain": "txt",
    "application/pdf": "pdf",
    "application/json": "json",
    "text/xml": "xml",
    "application/xml": "xml",
}


def http_url(value: Any) -> str | None:
    """``value`` as a link target when it is an absolute http(s) URL, else None."""
    return link_url(str(value)) if value else None


def fmt_datetime(value: datetime | str | None) -> str:
    if value is None or value == "":
        return "—"
    if isinstance(value, str):
        try:
            parsed = datetime.fromisoformat(value)
        except ValueError:
            return value
        return parsed.strftime("%Y-%m-%d %H:%M UTC")
    return value.strftime("%Y-%m-%d %H:%M UTC")


def fmt_day(value: date | datetime | str | None) -> str:
    if value is None or value == "":
        return "—"
    if isinstance(value, str):
        return value[:10]
    if isinstance(value, datetime):
        return value.date().isoformat()
    return value.isoformat()


def fmt_score(value: float | None) -> str:
    return "—" if value is None else f"{value:.2f}"


def fmt_weight(value: float) -> str:
    return f"{value:+.2f}"


def label(value: str | None) -> str:
    """A status or narrative tag in words: needs_translation -> needs translation."""
    return (value or "").replace("_", " ")


def download_extension(content_type: str | None) -> str:
    """The file extension of a raw download, from its Content-Type (bin when unknown)."""
    mime = (content_type or "").split(";")[0].strip().lower()
    if mime in _EXTENSIONS:
        return _EXTENSIONS[mime]
    guessed = mimetypes.guess_extension(mime) if mime else None
    ext = (guessed or ".bin").lstrip(".")
    return ext if re.fullmatch(r"[a-z0-9]{1,8}", ext) else "bin"


TEMPLATE_FILTERS: dict[str, Callable[..., Any]] = {
    "http_url": http_url,
    "dt": fmt_datetime,
    "day": fmt_day,
    "score": fmt_score,
    "weight": fmt_weight,
    "label": label,
}
