"""The Wayback Machine's CDX server API: query URLs and its ``output=json`` answers.

The format (github.com/internetarchive/wayback, wayback-cdx-server/README.md): a JSON array
whose first row names the fields (by default ``urlkey, timestamp, original, mimetype,
statuscode, digest, length``), then one row per capture. With ``showResumeKey=true`` and
more results than ``limit``, the captures are followed by an empty row and a row holding
only the resumption key, which a next query passes back as ``resumeKey=``. A query with no
result answers ``[]``.

`parse_cdx_json` raises `CdxError` (what is wrong, where, and what to check) when the answer
as a whole cannot be read; a single unreadable row is skipped and named in
`CdxPage.problems`, so one bad row never loses the others. `cdx_query_url` and
`replay_url` build the request URLs. Pure: no network.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import UTC, date, datetime
from urllib.parse import quote, urlencode, urlsplit

__all__ = [
    "CdxCapture",
    "CdxError",
    "CdxPage",
    "cdx_query_url",
    "parse_cdx_json",
    "replay_url",
    "wayback_timestamp",
]

_TIMESTAMP = re.compile(r"^\d{14}$")
_REQUIRED = ("timestamp", "original")
_SHOWN_ROWS = 3          # rows named in full in `problems` before the rest are only counted


class CdxError(ValueError):
    """A CDX answer that cannot be read as the documented ``output=json`` format.

    The message names the query URL, what was found and what to check.
    """


@dataclass(frozen=True)
class CdxCapture:
    """One capture of a URL in the Wayback Machine's index."""

    timestamp: datetime          # tz-aware UTC (the 14-digit capture timestamp)
    original: str                # the URL as it was captured (the article's own URL)
    mimetype: str | None         # e.g. "text/html"; None when the field was not requested
    statuscode: int | None       # HTTP status of the capture; None for "-" (revisits) or absent
    digest: str | None           # SHA-1 (base32) of the captured body

    @property
    def wayback_timestamp(self) -> str:
        """The timestamp as the Wayback Machine writes it: ``YYYYMMDDhhmmss``."""
        return wayback_timestamp(self.timestamp)


@dataclass(frozen=True)
class CdxPage:
    """One CDX answer: its captures, the key of the next page (None: last page), skipped rows."""

    captures: tuple[CdxCapture, ...]
    resume_key: str | None
    fields: tuple[str, ...]
    problems: tuple[str, ...] = ()


def wayback_timestamp(when: datetime) -> str:
    """``YYYYMMDDhhmmss`` in UTC (naive datetimes are taken as UTC)."""
    aware = when if when.tzinfo is not None else when.replace(tzinfo=UTC)
    return aware.astimezone(UTC).strftime("%Y%m%d%H%M%S")


def cdx_query_url(
    endpoint: str,
    prefix: str,
    *,
    since: date,
    until: date,
    limit: int,
    resume_key: str | None = None,
) -> str:
    """The CDX query for every HTML capture with status 200 under `prefix`, `since`..`until` inclusive.

    One capture per URL (``collapse=urlkey``), the resumption key shown so the next page can
    be asked for. The key is sent as the server printed it (it is already URL-encoded).
    """
    if limit < 1:
        raise ValueError(f"CDX page size must be at least 1, got {limit}")
    params = [
        ("url", prefix),
        ("matchType", "prefix"),
        ("output", "json"),
        ("from", since.strftime("%Y%m%d")),
        ("to", until.strftime("%Y%m%d") + "235959"),
        ("collapse", "urlkey"),
        ("filter", "statuscode:200"),
        ("filter", "mimetype:text/html"),
        ("showResumeKey", "true"),
        ("limit", str(limit)),
    ]
    url = f"{endpoint}{'&' if '?' in endpoint else '?'}{urlencode(params)}"
    if resume_key:
        url += "&resumeKey=" + quote(resume_key, safe="%+")
    return url


def replay_url(replay_base: str, capture: CdxCapture) -> str:
    """The capture as it was archived, without the Wayback toolbar or rewritten links (``id_``)."""
    base = replay_base if replay_base.endswith("/") else replay_base + "/"
    return f"{base}{capture.wayback_timestamp}id_/{capture.original}"


def parse_cdx_json(body: bytes, url: str) -> CdxPage:
    """Read one ``output=json`` CDX answer; `url` (the query) is named in every error."""
    rows = _json_rows(body, url)
    if not rows:
        return CdxPage(captures=(), resume_key=None, fields=())
    header = rows[0]
    if not isinstance(header, list) or not header or not all(isinstance(f, str) for f in header):
        raise CdxError(
            f"CDX answer from {url}: the first row must list the field names "
            f'(e.g. ["urlkey","timestamp","original",...]), got {_short(header)}'
        )
    fields = tuple(header)
    missing = [name for name in _REQUIRED if name not in fields]
    if missing:
        raise CdxError(
            f"CDX answer from {url}: no {' or '.join(repr(m) for m in missing)} field in {list(fields)}; "
            "query without fl= or include timestamp and original"
        )
    body_rows, resume_key = _split_resume_key(rows[1:], url)
    captures: list[CdxCapture] = []
    problems: list[str] = []
    for number, row in enumerate(body_rows, start=2):
        capture = _capture(row, fields)
        if isinstance(capture, str):
            problems.append(f"row {number}: {capture}")
        else:
            captures.append(capture)
    if len(problems) > _SHOWN_ROWS:
        problems[_SHOWN_ROWS:] = [f"{len(problems) - _SHOWN_ROWS} more unreadable rows"]
    return CdxPage(captures=tuple(captures), resume_key=resume_key, fields=fields, problems=tuple(problems))


def _json_rows(body: bytes, url: str) -> list[object]:
    text = body.decode("utf-8-sig", errors="replace").strip()
    if not text:
        raise CdxError(f"CDX answer from {url} is empty; a query without results answers []")
    try:
        rows = json.loads(text)
    except json.JSONDecodeError as exc:
        hint = " (plain-text CDX? add output=json)" if not text.startswith(("[", "{")) else ""
        raise CdxError(
            f"CDX answer from {url} is not JSON{hint}: {exc.msg} at line {exc.lineno} "
            f"column {exc.colno}; it starts {text[:80]!r}"
        ) from exc
    if not isinstance(rows, list):
        raise CdxError(
            f"CDX answer from {url}: expected a JSON array of rows, got a {type(rows).__name__} "
            f"{_short(rows)}"
        )
    return rows


def _split_resume_key(rows: list[object], url: str) -> tuple[list[object], str | None]:
    """The capture rows and the resumption key: ``[], ["<key>"]`` closing the answer."""
    try:
        gap = rows.index([])
    except ValueError:
        return rows, None
    tail = rows[gap + 1:]
    if not tail:                        # a trailing empty row without a key: nothing more to read
        return rows[:gap], None
    key_row = tail[0]
    if (len(tail) != 1 or not isinstance(key_row, list) or len(key_row) != 1
            or not isinstance(key_row[0], str) or not key_row[0]):
        raise CdxError(
            f"CDX answer from {url}: after the empty row only the resumption key row "
            f'(["<key>"]) may follow, got {_short(tail)}'
        )
    return rows[:gap], key_row[0]


def _capture(row: object, fields: tuple[str, ...]) -> CdxCapture | str:
    """A capture, or why the row cannot be one."""
    if not isinstance(row, list) or len(row) != len(fields):
        return f"expected {len(fields)} fields {list(fields)}, got {_short(row)}"
    if not all(isinstance(value, str) for value in row):
        return f"fields must be strings, got {_short(row)}"
    values = dict(zip(fields, row, strict=True))
    stamp = values["timestamp"]
    if not _TIMESTAMP.match(stamp):
        return f"timestamp {stamp!r} is not YYYYMMDDhhmmss"
    try:
        when = datetime.strptime(stamp, "%Y%m%d%H%M%S").replace(tzinfo=UTC)
    except ValueError:
        return f"timestamp {stamp!r} is not a valid date and time"
    original = values["original"].strip()
    if urlsplit(original).scheme.lower() not in ("http", "https"):
        return f"original {original!r} is not an absolute http(s) URL"
    status = values.get("statuscode")
    return CdxCapture(
        timestamp=when,
        original=original,
        mimetype=values.get("mimetype") or None,
        statuscode=int(status) if status is not None and status.isdigit() else None,
        digest=values.get("digest") or None,
    )


def _short(value: object, limit: int = 120) -> str:
    text = json.dumps(value, ensure_ascii=False)
    return text if len(text) <= limit else text[: limit - 3] + "..."
