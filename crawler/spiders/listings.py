"""ListingSpider: HTML pages of links (sites without a feed), with "next page" pagination.

``link_selector`` is a CSS selector for the article links: it may select ``<a>`` elements
or elements containing them. With ``follow_pages: N`` up to N further pages are read,
found through ``<link rel="next">``, ``<a rel="next">`` or a link whose text says "next"
or "older". Article links must match ``allow_patterns``, or else be on the listing's site.
"""

from __future__ import annotations

import logging
import re
from collections.abc import AsyncIterator, Iterator
from typing import Any

import scrapy
from parsel import Selector
from scrapy.http import Response, TextResponse

from crawler.spiders.base import SourceSpider
from crawler.spiders.feeds import content_type_of

logger = logging.getLogger(__name__)

__all__ = ["ListingSpider"]

_NEXT_TEXT = re.compile(r"^\W*(next|older|more)\b|^\s*(›|»|→)\s*$", re.IGNORECASE)


def _hrefs(selection: list[Selector]) -> list[str]:
    hrefs: list[str] = []
    for element in selection:
        href = element.attrib.get("href")
        if href is not None and element.root.tag == "a":
            hrefs.append(href)
        else:
            hrefs.extend(element.css("a::attr(href)").getall())
    return [h.strip() for h in hrefs if h and h.strip() and not h.strip().startswith("#")]


def next_page_url(response: TextResponse) -> str | None:
    """The URL of the next listing page, or None."""
    for href in (
        response.css('link[rel~="next"]::attr(href)').get(),
        response.css('a[rel~="next"]::attr(href)').get(),
    ):
        if href and href.strip():
            return response.urljoin(href.strip())
    for anchor in response.css("a[href]"):
        text = " ".join(anchor.css("::text").getall()).strip()
        if text and _NEXT_TEXT.search(text):
            return response.urljoin(anchor.attrib["href"].strip())
    return None


class ListingSpider(SourceSpider):
    """Reads listing pages with the source's link_selector; follows up to follow_pages more."""

    channel = "listing"
    source_label = "listing page"
    same_site_by_default = True

    async def start(self) -> AsyncIterator[Any]:
        for url in self.source.urls:
            yield self.source_request(url, self.parse_listing, page=1)

    def parse_listing(self, response: Response, page: int) -> Iterator[scrapy.Request]:
        if not isinstance(response, TextResponse):
            self.source_error(response.url, f"not an HTML page (got {content_type_of(response)})")
            return
        selector = self.source.link_selector or "a"
        hrefs = _hrefs(response.css(selector))
        if not hrefs:
            self.source_error(
                response.url,
                f"link_selector {selector!r} matched no links; check it against the page's HTML",
            )
        else:
            self.source_ok()
        for href in hrefs:
            request = self.article_request(response.urljoin(href), discovered_from=response.url)
            if request is not None:
                yield request
        if page <= self.source.follow_pages:
            following = next_page_url(response)
            if following is not None and following != response.url:
                yield self.source_request(following, self.parse_listing, page=page + 1)
