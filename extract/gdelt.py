"""GDELT DOC 2.0 API: the article-list answer read into records, and the time slices asked for.

GDELT is a discovery source only: `mode=artlist&format=json` answers list the articles GDELT
saw (``seendate``) for a query in a time range, at most `GDELT_MAX_RECORDS` of them. The
crawler asks per query and time slice (`plan_slices`); a slice whose answer holds the cap is
split in two (`TimeSlice.halves`) down to `MIN_SLICE`, so a busy week is read hour by hour
instead of losing everything past the 250th result. ``seendate`` is when GDELT saw the link,
not when it was published: the fetched page decides whether an article is in the range.

`parse_artlist(body, url)` reads one answer. A JSON answer gives a `GdeltArtList` (``{}`` is
GDELT's "nothing found"); rows without an http(s) ``url`` are dropped and counted. GDELT
answers refusals as text, often with HTTP 200, so these raise typed errors that say what
happened and what to do: `GdeltRateLimited` ("Please limit requests to one every 5
seconds"), `GdeltQueryRejected` ("Your search contained a keyword that was too short", "The
specified phrase is too short"), `GdeltFormatError` (an HTML page, broken or foreign JSON).
Invalid escapes and raw control characters, which GDELT's JSON is known to carry inside
titles, are repaired before giving up.
"""

from __future__ import annotations

import html
import json
import logging
import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from urllib.parse import parse_qs, urlencode, urlsplit

from extract.errors import ExtractError
from extract.urls import absolute_http_url

logger = logging.getLogger(__name__)

__all__ = [
    "GDELT_DOC_EARLIEST",
    "GDELT_MAX_RECORDS",
    "MIN_SLICE",
    "GdeltArtList",
    "GdeltArticle",
    "GdeltError",
    "GdeltFormatError",
    "GdeltQueryRejected",
    "GdeltRateLimited",
    "TimeSlice",
    "artlist_url",
    "parse_artlist",
    "parse_seendate",
    "plan_slices",
]

GDELT_MAX_RECORDS = 250                 # maxrecords cannot go higher: the DOC API's cap
MIN_SLICE = timedelta(hours=1)          # a full slice is not split below this
GDELT_DOC_EARLIEST = date(2017, 1, 1)   # the DOC 2.0 API's full-text index starts here
_PARAM_FORMAT = "%Y%m%d%H%M%S"          # startdatetime / enddatetime
_SEENDATE = re.compile(r"^(\d{8})T(\d{6})Z$")
_BAD_ESCAPE = re.compile(r'\\(?!["\\/bfnrtu])')
_RATE_LIMIT = re.compile(r"limit requests|rate.?limit|too many requests", re.IGNORECASE)
_EVERY_SECONDS = re.compile(r"one every (\d+(?:\.\d+)?) seconds?", re.IGNORECASE)
_HTML_START = re.compile(r"^\s*<(?:!doctype|html|head|body)\b", re.IGNORECASE)
_TAG = re.compile(r"<[^>]*>")
_SPACE = re.compile(r"\s+")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]+")
_EXCERPT = 300


# ---------------------------------------------------------------- errors


class GdeltError(ExtractError, ValueError):
    """An answer of the DOC API that is not an article list. ``url`` is the request,
    ``query`` its ``query=`` parameter (None when absent), ``text`` what GDELT said (trimmed)."""

    def __init__(self, message: str, *, url: str, text: str) -> None:
        super().__init__(message)
        self.url = url
        self.query = _query_of(url)
        self.text = text


class GdeltRateLimited(GdeltError):
    """GDELT refused the request for its rate limit; ask again later. ``seconds`` is the
    interval it asks for ("one every 5 seconds"), None when it names none."""

    def __init__(self, message: str, *, url: str, text: str, seconds: float | None) -> None:
        super().__init__(message, url=url, text=text)
        self.seconds = seconds


class GdeltQueryRejected(GdeltError):
    """GDELT refused the query itself (a keyword or phrase too short, a bad operator): asking
    again gives the same answer; the query in ``backfill.gdelt_queries`` must change."""


class GdeltFormatError(GdeltError):
    """The answer is neither an article list nor a message from GDELT: an HTML page, broken
    JSON, or JSON of another mode. Usually a wrong ``backfill.gdelt_url`` or a cut answer."""


# ---------------------------------------------------------------- records


@dataclass(frozen=True)
class GdeltArticle:
    """One row of an artlist answer."""

    url: str                        # absolute http(s) URL as GDELT gives it (not canonicalised)
    title: str | None
    seen: datetime | None           # ``seendate``, tz-aware UTC: when GDELT saw it, not published
    domain: str | None = None
    language: str | None = None     # GDELT's language name, e.g. "English", "Arabic"
    source_country: str | None = None
    url_mobile: str | None = None
    social_image: str | None = None


@dataclass(frozen=True)
class GdeltArtList:
    """A parsed answer. ``rows`` counts every row GDELT sent (the cap applies to it), usable
    or not; ``dropped`` the rows without an http(s) URL; ``detail`` says what was repaired
    or dropped (None when nothing was)."""

    articles: tuple[GdeltArticle, ...]
    rows: int
    dropped: int = 0
    detail: str | None = None

    def full(self, maxrecords: int = GDELT_MAX_RECORDS) -> bool:
        """True when the answer holds the cap: more articles may exist in its time range."""
        return self.rows >= maxrecords


# ---------------------------------------------------------------- time slices


def _param(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime(_PARAM_FORMAT)


@dataclass(frozen=True, order=True)
class TimeSlice:
    """A half-open UTC time range [start, end) asked of the DOC API in one request."""

    start: datetime
    end: datetime

    def __post_init__(self) -> None:
        if self.start.tzinfo is None or self.end.tzinfo is None:
            raise ValueError(f"TimeSlice needs tz-aware datetimes, got {self.start!r}..{self.end!r}")
        if self.end - self.start < timedelta(seconds=1):
            raise ValueError(f"empty TimeSlice {self.start.isoformat()}..{self.end.isoformat()}")

    @property
    def startdatetime(self) -> str:
        """``startdatetime=`` (YYYYMMDDHHMMSS, inclusive)."""
        return _param(self.start)

    @property
    def enddatetime(self) -> str:
        """``enddatetime=``: the last second of the slice, so adjacent slices never overlap."""
        return _param(self.end - timedelta(seconds=1))

    @property
    def key(self) -> str:
        """``<startdatetime>:<enddatetime>``: names the slice in backfill unit keys."""
        return f"{self.startdatetime}:{self.enddatetime}"

    def halves(self) -> tuple[TimeSlice, TimeSlice] | None:
        """The slice cut in two at a whole hour near its middle; None when it is `MIN_SLICE`
        or shorter (it cannot be split further)."""
        length = self.end - self.start
        if length <= MIN_SLICE:
            return None
        hours = int(length / MIN_SLICE) // 2
        middle = self.start + MIN_SLICE * max(hours, 1)
        return TimeSlice(self.start, middle), TimeSlice(middle, self.end)

    def __str__(self) -> str:
        return f"{self.start:%Y-%m-%d %H:%M}..{self.end:%Y-%m-%d %H:%M} UTC"


def plan_slices(since: date, until: date, days: int) -> list[TimeSlice]:
    """Slices of `days` days covering the UTC days `since`..`until` (inclusive); the last is
    cut at the end of `until`."""
    if isinstance(since, datetime) or isinstance(until, datetime):
        raise TypeError("plan_slices takes dates (whole UTC days), not datetimes")
    if until < since:
        raise ValueError(f"until {until.isoformat()} is before since {since.isoformat()}")
    if days < 1:
        raise ValueError(f"backfill.gdelt_slice_days must be at least 1, got {days}")
    start = datetime.combine(since, time(), tzinfo=UTC)
    stop = datetime.combine(until + timedelta(days=1), time(), tzinfo=UTC)
    step = timedelta(days=days)
    slices: list[TimeSlice] = []
    while start < stop:
        end = min(start + step, stop)
        slices.append(TimeSlice(start, end))
        start = end
    return slices


def artlist_url(base_url: str, query: str, span: TimeSlice, *, maxrecords: int = GDELT_MAX_RECORDS) -> str:
    """The DOC API request for `query` in `span` (mode=artlist, format=json)."""
    if not query.strip():
        raise ValueError("an empty GDELT query: give keywords in backfill.gdelt_queries")
    if not 1 <= maxrecords <= GDELT_MAX_RECORDS:
        raise ValueError(f"maxrecords must be 1..{GDELT_MAX_RECORDS}, got {maxrecords}")
    params = {
        "query": query,
        "mode": "artlist",
        "format": "json",
        "maxrecords": str(maxrecords),
        "startdatetime": span.startdatetime,
        "enddatetime": span.enddatetime,
    }
    joiner = "&" if urlsplit(base_url).query else "?"
    return f"{base_url}{joiner}{urlencode(params)}"


# ---------------------------------------------------------------- parsing


def parse_seendate(value: object) -> datetime | None:
    """``20150103T121500Z`` as tz-aware UTC; None for anything else."""
    if not isinstance(value, str):
        return None
    match = _SEENDATE.match(value.strip())
    if match is None:
        return None
    try:
        return datetime.strptime(match.group(1) + match.group(2), _PARAM_FORMAT).replace(tzinfo=UTC)
    except ValueError:
        return None


def _query_of(url: str) -> str | None:
    try:
        values = parse_qs(urlsplit(url).query).get("query")
    except ValueError:
        return None
    return values[0] if values else None


def _text(value: object) -> str | None:
    if not isinstance(value, str):
        return None
    return _SPACE.sub(" ", _CONTROL.sub(" ", value)).strip() or None


def _excerpt(text: str) -> str:
    flat = _SPACE.sub(" ", html.unescape(_TAG.sub(" ", text))).strip()
    return flat if len(flat) <= _EXCERPT else flat[: _EXCERPT - 1] + "…"


def _refusal(text: str, url: str) -> GdeltError:
    """The error for an answer that is not JSON: what GDELT said, and what to do about it."""
    said = _excerpt(text)
    where = f"GDELT DOC API {url}"
    if _RATE_LIMIT.search(said):
        every = _EVERY_SECONDS.search(said)
        seconds = float(every.group(1)) if every else None
        return GdeltRateLimited(
            f"{where}: rate limited ({said!r}); wait and ask again, and keep backfill.gdelt_delay "
            f"at {seconds or 5:g} seconds or more",
            url=url, text=said, seconds=seconds,
        )
    if not said:
        return GdeltFormatError(
            f"{where}: an empty answer (not even {{}}); the request was cut or the endpoint is "
            "wrong: check backfill.gdelt_url", url=url, text=said,
        )
    if _HTML_START.match(text):
        return GdeltFormatError(
            f"{where}: an HTML page instead of the JSON article list ({said!r}); check that "
            "backfill.gdelt_url is the DOC 2.0 endpoint (https://api.gdeltproject.org/api/v2/doc/doc)",
            url=url, text=said,
        )
    query = _query_of(url)
    return GdeltQueryRejected(
        f"{where}: GDELT rejected the query {query!r}: {said!r}; change it in backfill.gdelt_queries "
        "(keywords of 3+ letters, quoted phrases of 2+ words, operators as GDELT documents them)",
        url=url, text=said,
    )


def _load_json(text: str, url: str) -> tuple[object, str | None]:
    """The decoded JSON and a note on what was repaired (None when nothing was)."""
    try:
        return json.loads(text, strict=False), None   # strict=False: raw control chars in strings
    except json.JSONDecodeError as first:
        repaired, count = _BAD_ESCAPE.subn(r"\\\\", text)
        if count:
            try:
                return json.loads(repaired, strict=False), f"{count} invalid JSON escapes repaired"
            except json.JSONDecodeError:
                pass
        around = text[max(first.pos - 40, 0): first.pos + 40]
        raise GdeltFormatError(
            f"GDELT DOC API {url}: broken JSON at line {first.lineno} column {first.colno} "
            f"({first.msg}; near {around!r}); the answer may have been cut off: ask again",
            url=url, text=_excerpt(text),
        ) from first


def _article(row: object) -> GdeltArticle | None:
    if not isinstance(row, dict):
        return None
    raw = row.get("url")
    url = absolute_http_url(raw, raw) if isinstance(raw, str) else None   # relative links stay relative
    if url is None:
        return None
    return GdeltArticle(
        url=url,
        title=_text(row.get("title")),
        seen=parse_seendate(row.get("seendate")),
        domain=_text(row.get("domain")),
        language=_text(row.get("language")),
        source_country=_text(row.get("sourcecountry")),
        url_mobile=_text(row.get("url_mobile")),
        social_image=_text(row.get("socialimage")),
    )


def parse_artlist(body: bytes, url: str) -> GdeltArtList:
    """Read the DOC API's ``mode=artlist&format=json`` answer to the request `url`.

    Raises `GdeltRateLimited`, `GdeltQueryRejected` or `GdeltFormatError` (all `GdeltError`)
    when the answer is not an article list; their message quotes GDELT and says what to do.
    """
    text = body.decode("utf-8", errors="replace").lstrip("\ufeff").strip()
    if not text.startswith(("{", "[")):
        raise _refusal(text, url)
    data, repaired = _load_json(text, url)
    if not isinstance(data, dict):
        raise GdeltFormatError(
            f"GDELT DOC API {url}: a JSON {type(data).__name__} instead of an object with 'articles'",
            url=url, text=_excerpt(text),
        )
    if "articles" not in data:
        if not data:
            return GdeltArtList((), 0, 0, repaired)   # "{}": GDELT's answer when nothing matched
        keys = ", ".join(sorted(map(str, data))[:5])
        raise GdeltFormatError(
            f"GDELT DOC API {url}: a JSON object without 'articles' (keys: {keys}); the request "
            "must ask mode=artlist&format=json", url=url, text=_excerpt(text),
        )
    rows = data["articles"]
    if not isinstance(rows, list):
        raise GdeltFormatError(
            f"GDELT DOC API {url}: 'articles' is a JSON {type(rows).__name__}, not a list",
            url=url, text=_excerpt(text),
        )
    articles = [a for a in map(_article, rows) if a is not None]
    dropped = len(rows) - len(articles)
    notes = [repaired] if repaired else []
    if dropped:
        notes.append(f"{dropped} rows without an http(s) url dropped")
        logger.debug("%s: %d of %d rows dropped", url, dropped, len(rows))
    return GdeltArtList(tuple(articles), len(rows), dropped, "; ".join(notes) or None)
