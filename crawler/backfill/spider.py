"""BackfillSpider: one source's discovery methods over a date window, resumable, deduplicated.

The discovery methods (crawler/backfill/<name>.py, registered in methods.py) run inside this
spider and use its small API:

- `window` -> `DateWindow`; `window.contains(when)` is True, False or None (unknown date).
- `discovery_request(url, callback, *, unit, method, **cb_kwargs)`: a request for a sitemap,
  listing page, CDX page, ...; None when this job already finished the unit (resume). Its
  failure is a counted discovery error and leaves the unit to be redone by the next run.
- `unit_finished(unit, found, detail=None)`: the unit is done (``detail``: where it led, e.g.
  the next page, so a resumed job walks on without fetching it again); `unit_state(unit)`.
- `backfill_article(url, *, method, discovered_from, published=None, ...)`: the request for
  one discovered article, or None: outside the window by the listing's date (recorded as
  out_of_range, not fetched), already stored, already requested in this backfill, over the
  cap, or in ``--plan`` mode (counted only). A returned request is recorded as pending first.
- `backfill_page(page)`: the same checks for a page that needs no fetch (a CC-NEWS record);
  returns it to be yielded as an item, or None.

Articles found by the source-less methods (gdelt, ccnews) belong to the configured source
whose host they are on (`SourceConfig.hosts`, default: the hosts of its URLs), else to a
source named after the method. Every fetched page goes through the normal pipelines, the
store step being `crawler.backfill.pipelines.BackfillStorePipeline`.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import AsyncIterator, Callable, Iterable, Iterator
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar
from urllib.parse import urlsplit

import scrapy
from scrapy.http import Response
from twisted.python.failure import Failure

from crawler import runstats
from crawler.errors import SkippedRequest
from crawler.fingerprint import canonical_or_none
from crawler.items import Discovery, FetchedPage
from crawler.settings import ARTICLE_ERROR_STATUSES
from crawler.spiders.base import SourceSpider
from store import backfill as state
from store import queue

if TYPE_CHECKING:
    from typing import Self

    from scrapy.crawler import Crawler
    from scrapy.settings import BaseSettings
    from sqlalchemy.orm import Session, sessionmaker

    from config import SourceConfig
    from config.settings import BackfillSettings
    from crawler.backfill.progress import Tally

logger = logging.getLogger(__name__)

__all__ = [
    "BACKFILL_SETTING",
    "DISCOVERY_ERRORS",
    "METHODS_SETTING",
    "BackfillContext",
    "BackfillSpider",
    "DateWindow",
    "backfill_context_from",
    "host_owners",
    "site_hosts",
    "wayback_prefixes",
]

BACKFILL_SETTING = "DWATCH_BACKFILL"
METHODS_SETTING = "DWATCH_BACKFILL_METHODS"     # tuple of method names this crawler runs
UNIT_META = "dwatch_unit"
METHOD_META = "dwatch_method"
UNITS_SKIPPED = runstats.PREFIX + "backfill/units_already_done"
DISCOVERY_ERRORS = runstats.PREFIX + "backfill/discovery_errors"   # units left to redo
RESUMED = runstats.PREFIX + "backfill/resumed_articles"


@dataclass(frozen=True)
class DateWindow:
    """The days a backfill covers, both inclusive (UTC)."""

    since: date
    until: date

    def day(self, when: datetime | date) -> date:
        if isinstance(when, datetime):
            aware = when if when.tzinfo is not None else when.replace(tzinfo=UTC)
            return aware.astimezone(UTC).date()
        return when

    def contains(self, when: datetime | date | None) -> bool | None:
        """True inside the window, False outside, None when the date is unknown."""
        if when is None:
            return None
        return self.since <= self.day(when) <= self.until

    def before(self, when: datetime | date) -> bool:
        """True when `when` falls before the window (older than ``since``)."""
        return self.day(when) < self.since

    def __str__(self) -> str:
        return f"{self.since.isoformat()}..{self.until.isoformat()}"


@dataclass
class BackfillContext:
    """What every crawler of one backfill shares (crawler setting ``DWATCH_BACKFILL``)."""

    args: state.BackfillArgs
    settings: BackfillSettings
    session_factory: sessionmaker[Session]
    tally: Tally
    job_id: int | None                      # None in --plan mode (nothing is recorded)
    owners: dict[str, str] = field(default_factory=dict)   # host -> source id
    data_dir: Path = Path("data")
    claimed: set[str] = field(default_factory=set)        # canonical URLs requested in this backfill

    def __deepcopy__(self, memo: dict[int, Any]) -> BackfillContext:
        return self   # Scrapy deep-copies settings; this is shared, never copied

    @property
    def window(self) -> DateWindow:
        return DateWindow(self.args.since, self.args.until)

    @property
    def plan(self) -> bool:
        return self.args.plan


def backfill_context_from(settings: BaseSettings) -> BackfillContext | None:
    value = settings.get(BACKFILL_SETTING)
    return value if isinstance(value, BackfillContext) else None


def _host(url: str) -> str:
    host = (urlsplit(url).hostname or "").lower().rstrip(".")
    return host.removeprefix("www.")


def site_hosts(source: SourceConfig) -> tuple[str, ...]:
    """The hosts whose articles belong to `source`: its `hosts`, else those of all its URLs."""
    if source.hosts:
        return tuple(dict.fromkeys(h.removeprefix("www.") for h in source.hosts))
    templates = (u.replace("{", "").replace("}", "") for u in source.archive_urls)
    urls = [*source.urls, *source.sitemaps, *templates]
    return tuple(dict.fromkeys(h for h in (_host(u) for u in urls) if h))


def wayback_prefixes(source: SourceConfig) -> tuple[str, ...]:
    """CDX URL prefixes of `source`: its `wayback_prefixes`, else the host of its first URL + "/"."""
    if source.wayback_prefixes:
        return tuple(source.wayback_prefixes)
    host = (urlsplit(source.urls[0]).hostname or "").lower()
    return (f"{host}/",)


def host_owners(sources: Iterable[SourceConfig]) -> dict[str, str]:
    """host (without "www.") -> the id of the first source it belongs to."""
    owners: dict[str, str] = {}
    for source in sources:
        for host in site_hosts(source):
            owners.setdefault(host, source.id)
    return owners


def owner_of(url: str, owners: dict[str, str]) -> str | None:
    """The source owning `url`'s host, or one of its parent domains (news.example.com -> example.com)."""
    host = _host(url)
    while host:
        if host in owners:
            return owners[host]
        host = host.partition(".")[2]
    return None


class BackfillSpider(SourceSpider):
    """Runs the backfill methods of one source (or the source-less ones) over the window."""

    channel = "backfill"
    source_label = "discovery document"
    same_site_by_default: ClassVar[bool] = False

    def __init__(
        self,
        source: SourceConfig,
        max_articles: int,
        *,
        backfill: BackfillContext,
        methods: tuple[str, ...],
        sourceless: bool = False,
        **kwargs: Any,
    ) -> None:
        super().__init__(source, max_articles, **kwargs)
        self.backfill = backfill
        self.methods = methods
        self.sourceless = sourceless     # gdelt/ccnews: articles attributed to sources by host
        self.max_articles = backfill.settings.max_articles     # per source and method
        self._admitted: Counter[tuple[str, str]] = Counter()

    @classmethod
    def from_crawler(cls, crawler: Crawler, *args: Any, **kwargs: Any) -> Self:
        context = backfill_context_from(crawler.settings)
        if context is None:
            raise ValueError(f"crawler setting {BACKFILL_SETTING} is missing; start backfills "
                             "through crawler.backfill.run_backfill")
        kwargs.setdefault("backfill", context)
        kwargs.setdefault("methods", tuple(crawler.settings.get(METHODS_SETTING) or ()))
        kwargs.setdefault("sourceless", crawler.settings.getbool("DWATCH_BACKFILL_SOURCELESS"))
        spider = super().from_crawler(crawler, *args, **kwargs)
        spider.poller = None     # a backfill reads every document, due or not
        return spider

    # ------------------------------------------------------------ what methods read

    @property
    def window(self) -> DateWindow:
        return self.backfill.window

    @property
    def backfill_settings(self) -> BackfillSettings:
        return self.backfill.settings

    @property
    def plan(self) -> bool:
        return self.backfill.plan

    @property
    def hosts(self) -> frozenset[str]:
        """Hosts (without "www.") whose articles this spider keeps: its source's, or every source's."""
        if self.sourceless:
            return frozenset(self.backfill.owners)
        return frozenset(site_hosts(self.source))

    def source_id_for(self, url: str, method: str) -> str:
        """The source an article belongs to: this spider's, or by host (else the method's name)."""
        if not self.sourceless:
            return self.source.id
        return owner_of(url, self.backfill.owners) or method

    def _count(self, source_id: str, method: str, key: str, n: int = 1) -> None:
        self.backfill.tally.add(source_id, method, key, n)

    def _discovery_source(self, method: str) -> str:
        return method if self.sourceless else self.source.id

    # ------------------------------------------------------------ discovery units

    def _session(self) -> Session:
        return self.backfill.session_factory()

    def unit_state(self, unit: str) -> state.BackfillUnit | None:
        """What this job recorded about `unit` (None in --plan mode or when never recorded)."""
        if self.backfill.job_id is None:
            return None
        with self._session() as session:
            return state.get_unit(session, self.backfill.job_id, unit)

    def unit_is_done(self, unit: str) -> bool:
        found = self.unit_state(unit)
        return found is not None and found.status == "done"

    def discovery_request(
        self, url: str, callback: Callable[..., Any], *, unit: str, method: str, **cb_kwargs: Any
    ) -> scrapy.Request | None:
        """A request for one discovery document; None when this job already finished `unit`."""
        if self.unit_is_done(unit):
            self.stats.inc_value(UNITS_SKIPPED)
            return None
        request = self.source_request(url, callback, **cb_kwargs)
        request.meta[UNIT_META] = unit
        request.meta[METHOD_META] = method
        return request

    def unit_of(self, response: Response) -> str:
        return str(response.meta[UNIT_META])

    def unit_finished(self, unit: str, found: int, *, detail: str | None = None) -> None:
        """Record `unit` as done (with how many articles it listed); not requested again."""
        if self.backfill.job_id is None:
            return
        with self._session() as session:
            state.finish_unit(session, self.backfill.job_id, unit, found=found, detail=detail)

    def source_error(self, url: str, reason: str) -> None:
        super().source_error(url, reason)
        self.stats.inc_value(DISCOVERY_ERRORS)

    def discovery_error(self, url: str, reason: str, *, method: str) -> None:
        """A discovery document that could not be read: a counted error; its unit stays to redo."""
        self.source_error(url, reason)
        self._count(self._discovery_source(method), method, "errors")

    def source_failed(self, failure: Failure) -> None:
        super().source_failed(failure)
        request = getattr(failure, "request", None)
        method = request.meta.get(METHOD_META) if request is not None else None
        self._count(self._discovery_source(str(method or "?")), str(method or "?"), "errors")

    # ------------------------------------------------------------ articles

    def _record(self, row: state.BackfillArticle) -> None:
        if self.backfill.job_id is None:
            return
        with self._session() as session:
            state.add_articles(session, self.backfill.job_id, [row])

    def _known(self, canonical: str) -> bool:
        with self._session() as session:
            return bool(queue.known_urls(session, [canonical]))

    def _admit(self, canonical: str, source_id: str, method: str) -> bool:
        """Claim `canonical` for this backfill within the per source and method cap."""
        if canonical in self.backfill.claimed:
            self.stats.inc_value(runstats.DUPLICATE_IN_RUN)
            return False
        if self._admitted[(source_id, method)] >= self.max_articles:
            self.stats.inc_value(runstats.OVER_LIMIT)
            if self._admitted[(source_id, method)] == self.max_articles:
                logger.warning("%s: %s reached backfill.max_articles=%d for %s; later articles are "
                               "not fetched", self.name, method, self.max_articles, source_id,
                               extra=self.log_extra)
                self._admitted[(source_id, method)] += 1
            return False
        self._admitted[(source_id, method)] += 1
        self.backfill.claimed.add(canonical)
        return True

    def _screen(
        self, url: str, method: str, discovered_from: str | None, listed: datetime | None,
        title: str | None, entry_id: str | None, fetch_url: str | None,
    ) -> tuple[str, str] | None:
        """The checks every discovered article goes through; (canonical URL, source id) to keep it."""
        canonical = canonical_or_none(url)
        if canonical is None or not self.accepts(url, discovered_from or url):
            self.stats.inc_value(runstats.FILTERED)
            return None
        if canonical in self._discovered:
            return None
        self._discovered.add(canonical)
        self.stats.inc_value(runstats.DISCOVERED)
        source_id = self.source_id_for(url, method)
        self._count(source_id, method, "discovered")
        row = state.BackfillArticle(
            canonical_url=canonical, url=fetch_url or url, source_id=source_id, method=method,
            discovered_from=discovered_from, entry_id=entry_id, entry_title=title, entry_published=listed,
        )
        if self.window.contains(listed) is False:
            self._count(source_id, method, "out_of_range")
            self._record(replace(row, status="out_of_range"))
            return None
        self._count(source_id, method, "in_range")
        if self._known(canonical):
            self.stats.inc_value(runstats.ALREADY_SEEN)
            self._count(source_id, method, "already_stored")
            self._record(replace(row, status="seen"))
            return None
        if not self._admit(canonical, source_id, method):
            return None
        self._count(source_id, method, "requested")
        if not self.plan and fetch_url is not None:
            self._record(row)
        return canonical, source_id

    def backfill_article(
        self,
        url: str,
        *,
        method: str,
        discovered_from: str,
        published: datetime | None = None,
        title: str | None = None,
        entry_id: str | None = None,
        fetch_url: str | None = None,
    ) -> scrapy.Request | None:
        """The request for one discovered article (see the module doc), or None."""
        kept = self._screen(url, method, discovered_from, published, title, entry_id, fetch_url or url)
        if kept is None or self.plan:
            return None
        discovery = Discovery(
            source_id=kept[1], channel="backfill", discovered_from=discovered_from, entry_id=entry_id,
            entry_title=title, entry_published=published, method=method,
            url=url if fetch_url is not None and fetch_url != url else None,
        )
        return self._article_request(fetch_url or url, discovery)

    def backfill_page(self, page: FetchedPage) -> FetchedPage | None:
        """A page that needed no fetch (a CC-NEWS record) after the same checks, or None."""
        discovery = page.discovery
        if discovery.method is None:
            raise ValueError(f"{page.final_url}: backfill_page needs Discovery.method (the method's name)")
        url = discovery.url or page.final_url
        kept = self._screen(url, discovery.method, discovery.discovered_from, discovery.entry_published,
                            discovery.entry_title, discovery.entry_id, None)
        if kept is None or self.plan:
            return None
        page.discovery = replace(discovery, source_id=kept[1], channel="backfill")
        self.stats.inc_value(runstats.FETCHED)
        return page

    def _article_request(self, url: str, discovery: Discovery) -> scrapy.Request:
        return scrapy.Request(
            url,
            callback=self.parse_article,
            errback=self.article_failed,
            cb_kwargs={"discovery": discovery},
            meta={"dwatch_role": "article", "handle_httpstatus_list": ARTICLE_ERROR_STATUSES},
        )

    def article_failed(self, failure: Failure) -> FetchedPage | None:
        page = super().article_failed(failure)
        request = getattr(failure, "request", None)
        if page is None and request is not None and not isinstance(failure.value, SkippedRequest):
            discovery: Discovery = request.cb_kwargs["discovery"]
            canonical = canonical_or_none(discovery.url or request.url) or request.url
            method = discovery.method or "?"
            self._count(discovery.source_id, method, "errors")
            self._count(discovery.source_id, method, "fetched")   # settled: the bar moves on
            if self.backfill.job_id is not None:
                with self._session() as session:
                    state.mark_article(session, self.backfill.job_id, canonical, "failed")
        return page

    # ------------------------------------------------------------ the crawl

    def _resumed(self) -> Iterator[scrapy.Request]:
        """Requests for the articles this job discovered but had not fetched when it stopped."""
        if self.backfill.job_id is None:
            return
        with self._session() as session:
            pending = [
                a for a in state.pending_articles(session, self.backfill.job_id)
                if a.method in self.methods and (self.sourceless or a.source_id == self.source.id)
            ]
        for article in pending:
            if self._known(article.canonical_url):
                self._count(article.source_id, article.method, "already_stored")
                with self._session() as session:
                    state.mark_article(session, self.backfill.job_id, article.canonical_url, "seen")
                continue
            if not self._admit(article.canonical_url, article.source_id, article.method):
                continue
            self._discovered.add(article.canonical_url)
            self.stats.inc_value(RESUMED)
            self._count(article.source_id, article.method, "requested")
            capture = canonical_or_none(article.url) != article.canonical_url   # e.g. a Wayback replay
            yield self._article_request(article.url, Discovery(
                source_id=article.source_id, channel="backfill", discovered_from=article.discovered_from,
                entry_id=article.entry_id, entry_title=article.entry_title,
                entry_published=article.entry_published, method=article.method,
                url=article.canonical_url if capture else None,
            ))

    async def start(self) -> AsyncIterator[Any]:
        from crawler.backfill.methods import METHODS

        for request in self._resumed():
            yield request
        for name in self.methods:
            method = METHODS[name](self)
            for output in method.start():
                yield output
