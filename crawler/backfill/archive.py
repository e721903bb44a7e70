"""The archive backfill method: listing and archive pages, followed back until before the window.

Which pages: the source's ``archive_urls`` templates, else a listing source's own URLs:

- ``https://site/news?page={page}``: pages 1, 2, 3, ... (a 404 past page 1 ends the list);
- ``https://site/{yyyy}/{mm}/`` (or ``{yyyy}``, ``{yyyy}/{mm}/{dd}``): one archive page per
  year, month or day of the window, newest first, each followed through its own next links;
- a plain URL: followed through ``rel=next`` or "next"/"older" links (crawler/spiders/listings.py).

Article links are the source's ``link_selector`` matches (else every link on the page's site,
within the allow/deny patterns). An item is dated by a ``<time datetime>`` in its own block, else
by a /YYYY/MM/DD/ date in its URL. A list is followed until its dated items all fall before the
window (newest-first listings), or `MAX_UNDATED_PAGES` pages without any date (the fetched
pages' own dates then decide), and never beyond `MAX_PAGES`.

Units: ``archive:<page url>``; a done page records the next page in its detail, so a resumed
job walks on from where it stopped without fetching the pages again.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from typing import TYPE_CHECKING, ClassVar

import scrapy
from parsel import Selector
from scrapy.http import Response, TextResponse

from crawler.items import FetchedPage
from crawler.spiders.listings import next_page_url
from extract import same_site

if TYPE_CHECKING:
    from crawler.backfill.spider import BackfillSpider, DateWindow

logger = logging.getLogger(__name__)

__all__ = ["MAX_PAGES", "MAX_UNDATED_PAGES", "ArchiveMethod", "archive_periods", "date_in_url", "dated_links"]

MAX_PAGES = 500            # pages followed per list
MAX_UNDATED_PAGES = 20     # pages followed in a row when no item carries a date
NAME = "archive"
_URL_DATE = re.compile(r"/((?:19|20)\d{2})[/-](0[1-9]|1[0-2])[/-](0[1-9]|[12]\d|3[01])(?:[/\-_.]|$)")


def date_in_url(url: str) -> datetime | None:
    """The /YYYY/MM/DD/ (or /YYYY-MM-DD) date in an article URL, at midnight UTC."""
    match = _URL_DATE.search(url)
    if match is None:
        return None
    try:
        return datetime(int(match[1]), int(match[2]), int(match[3]), tzinfo=UTC)
    except ValueError:
        return None


def _parse_when(value: str | None) -> datetime | None:
    if not value:
        return None
    try:
        when = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    except ValueError:
        return None
    return when if when.tzinfo is not None else when.replace(tzinfo=UTC)


def _item_date(anchor: Selector, href: str) -> datetime | None:
    """A <time datetime> in the smallest block around the link that holds no other article."""
    node = anchor.root
    for _ in range(4):
        if node is None:
            break
        block = Selector(root=node)
        hrefs = {h.strip() for h in block.css("a::attr(href)").getall() if h.strip()}
        if len(hrefs) > 1:
            break
        when = _parse_when(block.css("time::attr(datetime)").get()
                           or block.css("[itemprop=datePublished]::attr(content)").get())
        if when is not None:
            return when
        node = node.getparent()
    return None


def dated_links(response: TextResponse, selector: str) -> list[tuple[str, str | None, datetime | None]]:
    """(absolute URL, link text, item date) of the article links `selector` matches, in page order."""
    out: list[tuple[str, str | None, datetime | None]] = []
    for element in response.css(selector):
        anchors = [element] if element.root.tag == "a" else element.css("a[href]")
        for anchor in anchors:
            href = (anchor.attrib.get("href") or "").strip()
            if not href or href.startswith("#"):
                continue
            url = response.urljoin(href)
            text = " ".join(" ".join(anchor.css("::text").getall()).split()) or None
            out.append((url, text, _item_date(anchor, href) or date_in_url(url)))
    return out


def archive_periods(template: str, window: DateWindow) -> list[tuple[str, date, date]]:
    """(URL, first day, last day) of each year/month/day archive page of the window, newest first."""
    out: list[tuple[str, date, date]] = []
    if "{dd}" in template:
        day = window.until
        while day >= window.since:
            out.append((template.format(yyyy=f"{day:%Y}", mm=f"{day:%m}", dd=f"{day:%d}"), day, day))
            day -= timedelta(days=1)
    elif "{mm}" in template:
        year, month = window.until.year, window.until.month
        while (year, month) >= (window.since.year, window.since.month):
            first = date(year, month, 1)
            last = (date(year + month // 12, month % 12 + 1, 1) - timedelta(days=1))
            out.append((template.format(yyyy=f"{year:04d}", mm=f"{month:02d}"), first, last))
            year, month = (year, month - 1) if month > 1 else (year - 1, 12)
    else:
        for year in range(window.until.year, window.since.year - 1, -1):
            out.append((template.format(yyyy=f"{year:04d}"), date(year, 1, 1), date(year, 12, 31)))
    return out


class ArchiveMethod:
    name: ClassVar[str] = NAME
    per_source: ClassVar[bool] = True

    def __init__(self, spider: BackfillSpider) -> None:
        self.spider = spider

    def links(self, response: TextResponse) -> list[tuple[str, str | None, datetime | None]]:
        """The page's article links: the source's link_selector, else those in <article>/<main>, else all."""
        selectors = [self.spider.source.link_selector] if self.spider.source.link_selector else [
            "article", "main", "a"]
        for selector in selectors:
            found = [
                (url, text, when) for url, text, when in dated_links(response, selector)
                if self.spider.source.allow_patterns or same_site(url, response.url)
            ]
            if found:
                return found
        return []

    def templates(self) -> list[str]:
        source = self.spider.source
        if source.archive_urls:
            return list(source.archive_urls)
        return list(source.urls) if source.kind == "listing" else []

    def start(self) -> Iterator[scrapy.Request | FetchedPage]:
        for template in self.templates():
            if "{page}" in template:
                yield from self._follow(template.format(page=1), page=1, template=template, undated=0)
            elif "{yyyy}" in template:
                for url, _first, _last in archive_periods(template, self.spider.window):
                    yield from self._follow(url, page=1, template=None, undated=0)
            else:
                yield from self._follow(template, page=1, template=None, undated=0)

    def _follow(self, url: str, *, page: int, template: str | None, undated: int) -> Iterator[scrapy.Request]:
        """The request for the first page of a list this job has not read yet (resume walks on)."""
        while True:
            unit = f"{NAME}:{url}"
            done = self.spider.unit_state(unit)
            if done is None or done.status != "done":
                break
            if not done.detail:
                return            # the list ended there
            url, page = done.detail, page + 1
        request = self.spider.discovery_request(url, self.parse_page, unit=unit, method=NAME, page=page,
                                                template=template, undated=undated)
        if request is not None:
            if page > 1:          # past the first page, "no such page" ends the list
                request.meta["handle_httpstatus_list"] = [404, 410]
            yield request

    def parse_page(self, response: Response, page: int, template: str | None,
                   undated: int) -> Iterator[scrapy.Request]:
        spider = self.spider
        unit = spider.unit_of(response)
        if response.status >= 400:
            spider.unit_finished(unit, 0, detail="")
            return
        if not isinstance(response, TextResponse):
            spider.discovery_error(response.url, "not an HTML page", method=NAME)
            return
        links = self.links(response)
        spider.source_ok()
        for url, text, when in links:
            request = spider.backfill_article(url, method=NAME, discovered_from=response.url,
                                              published=when, title=text)
            if request is not None:
                yield request
        following = self._next(response, page, template, links, undated)
        spider.unit_finished(unit, len(links), detail=following or "")
        if following is not None:
            dates = [when for _url, _text, when in links if when is not None]
            yield from self._follow(following, page=page + 1, template=template,
                                    undated=0 if dates else undated + 1)

    def _next(self, response: TextResponse, page: int, template: str | None,
              links: list[tuple[str, str | None, datetime | None]], undated: int) -> str | None:
        """The next page of the list, or None: no items, items all before the window, caps."""
        spider = self.spider
        if not links or page >= MAX_PAGES:
            return None
        dates = [when for _url, _text, when in links if when is not None]
        if dates and all(spider.window.before(when) for when in dates):
            logger.info("%s: %s: every item is older than %s; list not followed further", spider.name,
                        response.url, spider.window.since, extra=spider.log_extra)
            return None
        if not dates and undated + 1 >= MAX_UNDATED_PAGES:
            logger.info("%s: %s: %d pages without dated items; list not followed further", spider.name,
                        response.url, MAX_UNDATED_PAGES, extra=spider.log_extra)
            return None
        following = template.format(page=page + 1) if template is not None else next_page_url(response)
        return following if following is not None and following != response.url else None
