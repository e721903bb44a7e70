"""The queue filter of the URL: one parser for the queue page, the candidate page's prev/next,
the exports and the JSON API, so a link or an API call means the same selection everywhere.

Query parameters (all optional):

    range=today|7d|all      today (default): queued today (UTC); 7d: queued in the last 7 days;
                            all: any date. Ignored when since/until are given.
    since, until            YYYY-MM-DD (UTC, inclusive); given (even empty), they replace range
    dates=published|queued  what since/until apply to (default published: the publication date,
                            the queued time when a page is undated)
    status, lang, source, narrative, channel, min_score (0-1)
    sort=date|score, order=desc|asc, page=N (100 rows a page)
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import date, timedelta
from typing import Any, get_args
from urllib.parse import urlencode

from review.web.errors import WebError
from store.models import CANDIDATE_STATUSES
from store.records import Channel, QueueQuery

__all__ = [
    "CHANNELS",
    "DATE_FIELDS",
    "PAGE_SIZE",
    "RANGES",
    "STATUSES",
    "QueueFilter",
    "parse_date",
    "parse_filter",
]

PAGE_SIZE = 100
RANGES = ("today", "7d", "all")
DATE_FIELDS = ("published", "queued")
SORTS = ("date", "score")
ORDERS = ("desc", "asc")
STATUSES: tuple[str, ...] = tuple(CANDIDATE_STATUSES)
CHANNELS: tuple[str, ...] = get_args(Channel)


@dataclass(frozen=True)
class QueueFilter:
    """A parsed queue filter; ``range`` is None when since/until were given explicitly."""

    range: str | None = "today"
    since: date | None = None
    until: date | None = None
    dates: str = "queued"
    status: str | None = None
    lang: str | None = None
    source: str | None = None
    narrative: str | None = None
    channel: str | None = None
    min_score: float | None = None
    sort: str = "date"
    order: str = "desc"
    page: int = 1

    def query(self, *, limit: int | None = PAGE_SIZE, offset: int | None = None) -> QueueQuery:
        """The store query of this filter (``offset`` defaults to this filter's page)."""
        if offset is None:
            offset = (self.page - 1) * (limit or 0)
        return QueueQuery(
            status=self.status, since=self.since, until=self.until, dates=self.dates,
            lang=self.lang, source_id=self.source, channel=self.channel,
            narrative=self.narrative, min_score=self.min_score, sort=self.sort,
            descending=self.order == "desc", limit=limit, offset=offset,
        )

    def params(self, **changes: Any) -> list[tuple[str, str]]:
        """The canonical query parameters of this filter (with ``changes`` applied)."""
        f = replace(self, **changes) if changes else self
        out: list[tuple[str, str]] = []
        if f.range is not None:
            if f.range != "today":
                out.append(("range", f.range))
        else:
            out += [("since", f.since.isoformat() if f.since else ""),
                    ("until", f.until.isoformat() if f.until else ""), ("dates", f.dates)]
        for key in ("status", "lang", "source", "narrative", "channel"):
            value = getattr(f, key)
            if value is not None:
                out.append((key, value))
        if f.min_score is not None:
            out.append(("min_score", f"{f.min_score:g}"))
        if f.sort != "date":
            out.append(("sort", f.sort))
        if f.order != "desc":
            out.append(("order", f.order))
        if f.page > 1:
            out.append(("page", str(f.page)))
        return out

    def query_string(self, **changes: Any) -> str:
        return urlencode(self.params(**changes))

    def describe(self) -> str:
        """The date part of the filter in words (for headings)."""
        if self.range == "today":
            return "queued today (UTC)"
        if self.range == "7d":
            return "queued in the last 7 days"
        if self.range == "all" or (self.since is None and self.until is None):
            return "all dates"
        what = "queued" if self.dates == "queued" else "published"
        since = self.since.isoformat() if self.since else "the start"
        until = self.until.isoformat() if self.until else "now"
        return f"{what} from {since} to {until}"


def parse_date(name: str, raw: str | None) -> date | None:
    """A YYYY-MM-DD query value; None when empty; a 422 naming the parameter otherwise."""
    if raw is None or not raw.strip():
        return None
    try:
        return date.fromisoformat(raw.strip()) if len(raw.strip()) == 10 else _bad_date(name, raw)
    except ValueError:
        return _bad_date(name, raw)


def _bad_date(name: str, raw: str) -> date:
    raise WebError(422, f"{name}: {raw!r} is not a date; use the format YYYY-MM-DD (e.g. 2024-05-01)")


def _choice(params: Mapping[str, str], name: str, choices: tuple[str, ...]) -> str | None:
    value = (params.get(name) or "").strip()
    if not value or value == "any":
        return None
    if value not in choices:
        raise WebError(422, f"{name}: {value!r} is not one of {', '.join(choices)}")
    return value


def _text(params: Mapping[str, str], name: str) -> str | None:
    value = (params.get(name) or "").strip()
    return value if value and value != "any" else None


def _score(params: Mapping[str, str], name: str) -> float | None:
    raw = (params.get(name) or "").strip()
    if not raw:
        return None
    try:
        value = float(raw)
    except ValueError:
        value = math.nan
    if not (math.isfinite(value) and 0.0 <= value <= 1.0):
        raise WebError(422, f"{name}: {raw!r} is not a score; use a number from 0 to 1 (e.g. 0.6)")
    return value


def _page(params: Mapping[str, str]) -> int:
    raw = (params.get("page") or "1").strip()
    if not raw.isdigit() or int(raw) < 1:
        raise WebError(422, f"page: {raw!r} is not a page number; use 1, 2, 3 ...")
    return int(raw)


def parse_filter(params: Mapping[str, str], *, today: date) -> QueueFilter:
    """The filter of a request's query parameters (see the module doc); 422 on bad values."""
    explicit = "since" in params or "until" in params
    since = parse_date("since", params.get("since"))
    until = parse_date("until", params.get("until"))
    range_: str | None = None
    if explicit and (since is not None or until is not None):
        dates = _choice(params, "dates", DATE_FIELDS) or "published"
        if since is not None and until is not None and since > until:
            raise WebError(422, f"since {since.isoformat()} is after until {until.isoformat()}: "
                           "the date range is empty")
    else:
        range_ = "all" if explicit else _choice(params, "range", RANGES) or "today"
        # today / 7d select by queueing time; "all" has no bounds, so dates only sets the
        # date sort: by publication (queued time when undated)
        dates = "published" if range_ == "all" else "queued"
        if range_ == "today":
            since = until = today
        elif range_ == "7d":
            since, until = today - timedelta(days=6), today
    return QueueFilter(
        range=range_, since=since, until=until, dates=dates,
        status=_choice(params, "status", STATUSES),
        lang=_text(params, "lang"),
        source=_text(params, "source"),
        narrative=_text(params, "narrative"),
        channel=_choice(params, "channel", CHANNELS),
        min_score=_score(params, "min_score"),
        sort=_choice(params, "sort", SORTS) or "date",
        order=_choice(params, "order", ORDERS) or "desc",
        page=_page(params),
    )
