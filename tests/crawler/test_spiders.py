"""Spider callbacks fed responses built from bytes: what each spider requests, and why not.

No network and no reactor: a spider is built from an unconfigured crawler (Scrapy's
get_crawler) with its source in the DWATCH_SOURCE setting, and its callbacks are called
with HtmlResponse / XmlResponse / TextResponse objects.
"""

from __future__ import annotations

import asyncio
import gzip
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import pytest
from scrapy import Request
from scrapy.http import HtmlResponse, Response, TextResponse, XmlResponse
from scrapy.spidermiddlewares.httperror import HttpError
from scrapy.utils.test import get_crawler
from twisted.internet.error import ConnectionRefusedError, DNSLookupError
from twisted.python.failure import Failure

from config import SourceConfig
from crawler import runstats
from crawler.errors import AlreadySeen, RefusedUrl
from crawler.items import Discovery, FetchedPage
from crawler.spiders import FeedSpider, ListingSpider, SitemapSpider, SourceSpider

FIXTURES = Path(__file__).resolve().parent / "fixtures"
S = TypeVar("S", bound=SourceSpider)

FEED_URL = "https://news.example.org/feeds/world.rss"
RSS = b"""<?xml version="1.0" encoding="utf-8"?>
<rss version="2.0"><channel><title>World</title><link>https://news.example.org/</link>
<item><title>Older story</title><link>https://news.example.org/2026/11/older.html</link>
  <guid isPermaLink="false">world-1</guid><pubDate>Tue, 10 Nov 2026 08:00:00 +0000</pubDate></item>
<item><title>A former fighter speaks</title>
  <link>https://news.example.org/2026/11/former-fighter.html?utm_source=rss&amp;utm_medium=feed#top</link>
  <guid isPermaLink="false">world-2</guid><pubDate>Wed, 18 Nov 2026 09:30:00 +0100</pubDate></item>
<item><title>Same story, tracking link</title>
  <link>https://news.example.org/2026/11/former-fighter.html?fbclid=abc</link>
  <guid isPermaLink="false">world-3</guid><pubDate>Wed, 18 Nov 2026 08:00:00 +0000</pubDate></item>
<item><title>Wire copy on the agency's site</title><link>https://wire.example.com/story/123</link>
  <guid isPermaLink="false">world-4</guid><pubDate>Mon, 16 Nov 2026 12:00:00 +0000</pubDate></item>
</channel></rss>
"""


def make_spider(cls: type[S], *, kind: str, urls: list[str], **fields: Any) -> S:
    source = SourceConfig(id="test-source", name="Test source", kind=kind, urls=urls, **fields)
    crawler = get_crawler(cls, {"DWATCH_SOURCE": source, "DWATCH_MAX_ARTICLES": 50})
    return cls.from_crawler(crawler)


def stats(spider: SourceSpider) -> dict[str, Any]:
    return dict(spider.crawler.stats.get_stats())


def start_requests(spider: SourceSpider) -> list[Request]:
    async def collect() -> list[Request]:
        return [request async for request in spider.start()]

    return asyncio.run(collect())


def response(cls: type[Response], url: str, body: bytes, content_type: str, **request_kw: Any) -> Any:
    return cls(url, body=body, headers={"Content-Type": content_type},
               request=Request(url, **request_kw))


# ------------------------------------------------------------------ feeds


def test_feed_entries_become_article_requests_newest_first_with_their_entry() -> None:
    spider = make_spider(FeedSpider, kind="feed", urls=[FEED_URL])
    [feed_request] = start_requests(spider)
    assert feed_request.url == FEED_URL
    assert feed_request.callback == spider.parse_feed
    assert feed_request.errback == spider.source_failed

    requests = list(spider.parse_feed(response(XmlResponse, FEED_URL, RSS, "application/rss+xml")))

    # world-3 is the same canonical article as world-2 (tracking parameters): requested once
    assert [r.url for r in requests] == [
        "https://news.example.org/2026/11/former-fighter.html?utm_source=rss&utm_medium=feed#top",
        "https://wire.example.com/story/123",   # feeds may link to other sites
        "https://news.example.org/2026/11/older.html",
    ]
    first = requests[0]
    assert first.cb_kwargs == {
        "discovery": Discovery(
            source_id="test-source",
            channel="feed",
            discovered_from=FEED_URL,
            entry_id="world-2",
            entry_title="A former fighter speaks",
            entry_published=datetime(2026, 11, 18, 8, 30, tzinfo=UTC),
        )
    }
    assert first.callback == spider.parse_article
    assert first.errback == spider.article_failed
    assert first.meta["dwatch_role"] == "article"
    assert 404 in first.meta["handle_httpstatus_list"] and 503 in first.meta["handle_httpstatus_list"]
    assert 301 not in first.meta["handle_httpstatus_list"]   # redirects are still followed
    assert stats(spider)[runstats.DISCOVERED] == 3
    assert stats(spider)[runstats.SOURCE_OK] == 1
    assert runstats.ERRORS not in stats(spider)


def test_deny_and_allow_patterns_filter_feed_links() -> None:
    spider = make_spider(
        FeedSpider, kind="feed", urls=[FEED_URL],
        allow_patterns=[r"^https://news\.example\.org/2026/"], deny_patterns=[r"/older\.html$"],
    )
    requests = list(spider.parse_feed(response(XmlResponse, FEED_URL, RSS, "application/rss+xml")))
    assert [r.url for r in requests] == [
        "https://news.example.org/2026/11/former-fighter.html?utm_source=rss&utm_medium=feed#top"
    ]
    assert stats(spider)[runstats.FILTERED] == 2


def test_a_feed_url_that_serves_html_is_a_source_error_with_its_content_type() -> None:
    spider = make_spider(FeedSpider, kind="feed", urls=[FEED_URL])
    page = b"<!DOCTYPE html><html><head><title>World news</title></head><body><p>Hello</p></body></html>"
    requests = list(spider.parse_feed(response(HtmlResponse, FEED_URL, page, "text/html; charset=utf-8")))
    assert requests == []
    got = stats(spider)
    assert got[runstats.ERRORS] == 1
    assert got[runstats.FIRST_ERROR].startswith(f"feed {FEED_URL}: not a feed (got text/html)")
    assert runstats.SOURCE_OK not in got


def test_a_truncated_feed_is_a_malformed_feed_error() -> None:
    spider = make_spider(FeedSpider, kind="feed", urls=[FEED_URL])
    truncated = b'<?xml version="1.0"?><rss version="2.0"><channel><title>World</title><item><title>A'
    list(spider.parse_feed(response(XmlResponse, FEED_URL, truncated, "application/rss+xml")))
    first_error = stats(spider)[runstats.FIRST_ERROR]
    assert first_error.startswith(f"feed {FEED_URL}: malformed feed: ")
    assert len(first_error) > len(f"feed {FEED_URL}: malformed feed: ")   # the parser's reason


def test_an_unreachable_or_missing_feed_is_a_source_error_with_the_reason() -> None:
    spider = make_spider(FeedSpider, kind="feed", urls=[FEED_URL])
    request = Request(FEED_URL)
    refused = Failure(ConnectionRefusedError("111: Connection refused."))
    refused.request = request  # type: ignore[attr-defined]
    spider.source_failed(refused)
    missing = HtmlResponse(FEED_URL, status=404, body=b"gone", request=request)
    not_found = Failure(HttpError(missing, "Ignoring non-200 response"))
    not_found.request = request  # type: ignore[attr-defined]
    spider.source_failed(not_found)
    got = stats(spider)
    assert got[runstats.ERRORS] == 2
    assert got[runstats.FIRST_ERROR] == (
        f"feed {FEED_URL}: cannot fetch: ConnectionRefusedError: "
        "Connection was refused by other side: 111: Connection refused.."
    )


# ------------------------------------------------------------------ article outcomes

DISCOVERY = Discovery("test-source", "feed", FEED_URL, "world-2", "A former fighter speaks",
                      datetime(2026, 11, 18, 8, 30, tzinfo=UTC))
ARTICLE = "https://news.example.org/2026/11/former-fighter.html"


def test_an_article_response_becomes_a_fetched_page_with_the_redirect_chain() -> None:
    spider = make_spider(FeedSpider, kind="feed", urls=[FEED_URL])
    body = b"<html><body><p>Story</p></body></html>"
    request = Request(ARTICLE, meta={"redirect_urls": [ARTICLE + "?utm_source=rss", ARTICLE + "?x=1"]},
                      headers={"User-Agent": "defector-watch-test"})
    page_response = HtmlResponse(ARTICLE, status=200, body=body, request=request,
                                 headers={"Content-Type": "text/html; charset=utf-8", "ETag": '"abc"'})
    before = datetime.now(UTC)
    page = spider.parse_article(page_response, DISCOVERY)
    assert isinstance(page, FetchedPage)
    assert page.discovery == DISCOVERY
    assert page.requested_url == ARTICLE + "?utm_source=rss"
    assert page.final_url == ARTICLE
    assert page.status == 200 and not page.failed
    assert page.body == body
    assert ("Content-Type", "text/html; charset=utf-8") in page.headers
    assert page.content_type == "text/html; charset=utf-8"
    assert ("User-Agent", "defector-watch-test") in page.request_headers
    assert before <= page.fetched_at <= datetime.now(UTC)
    assert page.fetched_at.tzinfo is UTC
    assert stats(spider)[runstats.FETCHED] == 1
    assert runstats.ERRORS not in stats(spider)


def test_a_404_article_is_a_failed_page_with_reason_http_error() -> None:
    spider = make_spider(FeedSpider, kind="feed", urls=[FEED_URL])
    gone = HtmlResponse(ARTICLE, status=404, body=b"<h1>Not Found</h1>", request=Request(ARTICLE))
    page = spider.parse_article(gone, DISCOVERY)
    assert (page.status, page.error_reason, page.error_detail) == (404, "http_error", "HTTP 404 Not Found")
    assert page.body == b"<h1>Not Found</h1>"   # kept: the error page is archived as evidence
    assert stats(spider)[runstats.FIRST_ERROR] == f"article {ARTICLE}: HTTP 404 Not Found"


def test_a_download_error_is_a_failed_page_with_reason_fetch_error() -> None:
    spider = make_spider(FeedSpider, kind="feed", urls=[FEED_URL])
    request = Request(ARTICLE, cb_kwargs={"discovery": DISCOVERY})
    failure = Failure(DNSLookupError("news.example.org"))
    failure.request = request  # type: ignore[attr-defined]
    page = spider.article_failed(failure)
    assert page is not None
    assert (page.status, page.body, page.error_reason) == (None, b"", "fetch_error")
    assert page.error_detail == "DNSLookupError: DNS lookup failed: news.example.org."
    assert (page.requested_url, page.final_url, page.discovery) == (ARTICLE, ARTICLE, DISCOVERY)
    assert stats(spider)[runstats.ERRORS] == 1


def test_a_refused_url_is_recorded_but_a_known_url_is_silently_skipped() -> None:
    spider = make_spider(FeedSpider, kind="feed", urls=[FEED_URL])
    request = Request("http://10.0.0.7/admin", cb_kwargs={"discovery": DISCOVERY})
    refused = Failure(RefusedUrl("refused http://10.0.0.7/admin: 10.0.0.7 is a private address"))
    refused.request = request  # type: ignore[attr-defined]
    page = spider.article_failed(refused)
    assert page is not None and page.error_reason == "fetch_error"
    assert page.error_detail == "RefusedUrl: refused http://10.0.0.7/admin: 10.0.0.7 is a private address"

    seen = Failure(AlreadySeen(f"{ARTICLE} is already stored"))
    seen.request = Request(ARTICLE, cb_kwargs={"discovery": DISCOVERY})  # type: ignore[attr-defined]
    assert spider.article_failed(seen) is None
    assert stats(spider)[runstats.ERRORS] == 1   # the refusal only


# ------------------------------------------------------------------ sitemaps

SITEMAP_INDEX = b"""<?xml version="1.0" encoding="UTF-8"?>
<sitemapindex xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">
  <sitemap><loc>https://news.example.org/sitemaps/2025-12.xml</loc><lastmod>2025-12-31</lastmod></sitemap>
  <sitemap><loc>https://news.example.org/sitemaps/news.xml</loc><lastmod>2026-11-23T14:05:00Z</lastmod></sitemap>
</sitemapindex>
"""
NEWS_SITEMAP = """<?xml version="1.0" encoding="UTF-8"?>
<urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9"
        xmlns:news="http://www.google.com/schemas/sitemap-news/0.9">
  <url><loc>https://news.example.org/2026/11/aussteiger.html</loc>
    <news:news>
      <news:publication>
        <news:name>Example News</news:name><news:language>de</news:language>
      </news:publication>
      <news:publication_date>2026-11-12T07:45:00+00:00</news:publication_date>
      <news:title>Ein Aussteiger erzählt</news:title></news:news></url>
  <url><loc>https://news.example.org/2026/11/wire-story.html</loc><lastmod>2026-11-19T06:10:00Z</lastmod></url>
</urlset>
""".encode()


def test_a_sitemap_index_requests_its_child_sitemaps_newest_first() -> None:
    index_url = "https://news.example.org/sitemap_index.xml"
    spider = make_spider(SitemapSpider, kind="sitemap", urls=[index_url])
    [first] = start_requests(spider)
    assert first.cb_kwargs == {"depth": 0}
    index = response(XmlResponse, index_url, SITEMAP_INDEX, "application/xml")
    requests = list(spider.parse_sitemap(index, 0))
    assert [(r.url, r.cb_kwargs, r.callback) for r in requests] == [
        ("https://news.example.org/sitemaps/news.xml", {"depth": 1}, spider.parse_sitemap),
        ("https://news.example.org/sitemaps/2025-12.xml", {"depth": 1}, spider.parse_sitemap),
    ]
    assert all(r.meta["dwatch_role"] == "source" for r in requests)
    assert runstats.DISCOVERED not in stats(spider)


def test_a_gzipped_google_news_sitemap_gives_articles_with_title_and_date() -> None:
    url = "https://news.example.org/sitemaps/news.xml.gz"
    spider = make_spider(SitemapSpider, kind="sitemap", urls=[url])
    body = gzip.compress(NEWS_SITEMAP)
    requests = list(spider.parse_sitemap(response(Response, url, body, "application/gzip"), 1))
    assert [r.url for r in requests] == [
        "https://news.example.org/2026/11/wire-story.html",     # lastmod 19 Nov
        "https://news.example.org/2026/11/aussteiger.html",     # published 12 Nov
    ]
    assert requests[1].cb_kwargs["discovery"] == Discovery(
        source_id="test-source", channel="sitemap", discovered_from=url, entry_id=None,
        entry_title="Ein Aussteiger erzählt",
        entry_published=datetime(2026, 11, 12, 7, 45, tzinfo=UTC),
    )
    # <lastmod> orders the crawl but is not a publication date
    assert requests[0].cb_kwargs["discovery"].entry_published is None


def test_robots_txt_sitemap_lines_become_sitemap_requests() -> None:
    robots_url = "https://news.example.org/robots.txt"
    spider = make_spider(SitemapSpider, kind="sitemap", urls=[robots_url])
    [first] = start_requests(spider)
    assert first.callback == spider.parse_robots
    robots = b"User-agent: *\nDisallow: /search\n\nSitemap: https://news.example.org/sitemap_index.xml\n" \
             b"sitemap: /sitemaps/news.xml\n"
    requests = list(spider.parse_robots(response(TextResponse, robots_url, robots, "text/plain")))
    assert [(r.url, r.cb_kwargs) for r in requests] == [
        ("https://news.example.org/sitemap_index.xml", {"depth": 0}),
        ("https://news.example.org/sitemaps/news.xml", {"depth": 0}),
    ]


def test_robots_without_sitemaps_and_a_non_sitemap_are_source_errors() -> None:
    spider = make_spider(SitemapSpider, kind="sitemap", urls=["https://news.example.org/robots.txt"])
    robots = response(TextResponse, "https://news.example.org/robots.txt", b"User-agent: *\nAllow: /\n",
                      "text/plain")
    assert list(spider.parse_robots(robots)) == []
    assert stats(spider)[runstats.FIRST_ERROR] == (
        "sitemap https://news.example.org/robots.txt: robots.txt lists no 'Sitemap:' line"
    )
    page = response(HtmlResponse, "https://news.example.org/sitemap.xml",
                    b"<html><body><p>Oops, this is a page</p></body></html>", "text/html")
    assert list(spider.parse_sitemap(page, 0)) == []
    assert stats(spider)[runstats.ERRORS] == 2


# ------------------------------------------------------------------ listings

LISTING_URL = "https://institute.example.org/publications/"


def listing_spider(**fields: Any) -> ListingSpider:
    fields.setdefault("link_selector", "article.card h3.title a")
    return make_spider(ListingSpider, kind="listing", urls=[LISTING_URL], **fields)


def test_a_listing_page_yields_its_card_links_on_site_and_the_next_page() -> None:
    spider = listing_spider(follow_pages=1)
    [first] = start_requests(spider)
    assert first.cb_kwargs == {"page": 1}
    body = (FIXTURES / "listing-page-1.html").read_bytes()
    requests = list(spider.parse_listing(response(HtmlResponse, LISTING_URL, body, "text/html"), 1))
    articles = [r for r in requests if r.meta["dwatch_role"] == "article"]
    pages = [r for r in requests if r.meta["dwatch_role"] == "source"]
    # the nav link is not a card; the partner's link is off-site; the #summary link is the same article
    assert [r.url for r in articles] == [
        "https://institute.example.org/publications/2026/05/leaving-the-caliphate.html?utm_source=list",
        "https://institute.example.org/publications/2026/04/returnees.html",
    ]
    assert articles[1].cb_kwargs["discovery"] == Discovery(
        "test-source", "listing", LISTING_URL, None, None, None
    )
    assert [(r.url, r.cb_kwargs) for r in pages] == [
        ("https://institute.example.org/publications/page/2/", {"page": 2})
    ]
    assert stats(spider)[runstats.FILTERED] == 1


def test_pagination_stops_after_follow_pages_and_allow_patterns_replace_the_site_rule() -> None:
    spider = listing_spider(follow_pages=1, allow_patterns=[r"/publications/20\d\d/\d\d/[a-z-]+\.html$"])
    body = (FIXTURES / "listing-page-1.html").read_bytes()
    requests = list(spider.parse_listing(response(HtmlResponse, LISTING_URL, body, "text/html"), 2))
    assert [r.url for r in requests] == [   # page 2 of follow_pages=1: no further page
        "https://institute.example.org/publications/2026/04/returnees.html",
        "https://elsewhere.example.net/publications/2026/04/partner-study.html",
    ]
    last = (FIXTURES / "listing-last-page.html").read_bytes()
    no_selector_match = list(
        listing_spider(follow_pages=5).parse_listing(
            response(HtmlResponse, LISTING_URL + "page/3/", last, "text/html"), 3
        )
    )
    # no card matched the selector: a source error, but the "Next »" link is still followed
    assert [r.url for r in no_selector_match] == ["https://institute.example.org/publications/page/4/"]


def test_a_listing_selector_that_matches_nothing_is_reported() -> None:
    spider = listing_spider(link_selector="div.does-not-exist a")
    body = (FIXTURES / "listing-page-1.html").read_bytes()
    assert list(spider.parse_listing(response(HtmlResponse, LISTING_URL, body, "text/html"), 1)) == []
    assert stats(spider)[runstats.FIRST_ERROR] == (
        f"listing page {LISTING_URL}: link_selector 'div.does-not-exist a' matched no links; "
        "check it against the page's HTML"
    )


def test_a_listing_url_that_is_not_html_is_reported() -> None:
    spider = listing_spider()
    pdf = response(Response, LISTING_URL, b"%PDF-1.7 ...", "application/pdf")
    assert list(spider.parse_listing(pdf, 1)) == []
    assert stats(spider)[runstats.FIRST_ERROR] == (
        f"listing page {LISTING_URL}: not an HTML page (got application/pdf)"
    )


def test_a_spider_needs_its_source_setting() -> None:
    crawler = get_crawler(FeedSpider, {})
    with pytest.raises(ValueError, match="DWATCH_SOURCE must be a config.SourceConfig"):
        FeedSpider.from_crawler(crawler)


def test_a_filtered_non_2xx_article_response_is_an_http_error_too() -> None:
    spider = make_spider(FeedSpider, kind="feed", urls=[FEED_URL])
    odd = HtmlResponse(ARTICLE, status=300, body=b"<p>Multiple choices</p>",
                       request=Request(ARTICLE, cb_kwargs={"discovery": DISCOVERY}))
    failure = Failure(HttpError(odd, "Ignoring non-200 response"))
    failure.request = odd.request  # type: ignore[attr-defined]
    page = spider.article_failed(failure)
    assert page is not None
    assert (page.status, page.error_reason) == (300, "http_error")
    assert page.error_detail == "HTTP 300 Multiple Choices"
    assert stats(spider)[runstats.FETCHED] == 1
