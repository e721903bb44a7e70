"""RetryAfterMiddleware on Scrapy's own objects: get_crawler, Request/Response, the middleware manager.

Time is a fake clock here (the sleeps the middleware asks for advance it), so the waits are
exact and the tests do not wait. The last test shows the same behaviour in a real daily crawl
(a subprocess) against local servers.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import UTC, datetime
from email.utils import format_datetime
from pathlib import Path

import pytest
from scrapy import Request, Spider
from scrapy.core.downloader.middleware import DownloaderMiddlewareManager
from scrapy.crawler import Crawler
from scrapy.downloadermiddlewares.retry import RetryMiddleware
from scrapy.exceptions import IgnoreRequest, NotConfigured
from scrapy.http import HtmlResponse, Response
from scrapy.utils.test import get_crawler

from config import CrawlSettings
from crawler.retry_after import (
    RATE_LIMITED,
    RATE_LIMITED_GAVE_UP,
    RETRIES_META,
    HostPauses,
    RetryAfterMiddleware,
    retry_after_seconds,
)
from crawler.settings import scrapy_settings

CDX = "http://cdx.example.org/cdx/search/cdx?url=a.example/&output=json"
OTHER = "http://news.example.net/2014/01/story.html"


class FakeTime:
    """A monotonic clock that only moves when the middleware sleeps."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.sleeps: list[tuple[str, float]] = []
        self.current = ""

    def clock(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append((self.current, seconds))
        self.now += seconds
        await asyncio.sleep(0)

    def slept(self, label: str) -> float:
        return round(sum(s for who, s in self.sleeps if who == label), 6)


class DummySpider(Spider):
    name = "dummy"


@pytest.fixture
def time() -> FakeTime:
    return FakeTime()


@pytest.fixture
def crawler() -> Iterator[Crawler]:
    yield get_crawler(DummySpider, {"RETRY_ENABLED": True})


def middleware(crawler: Crawler, time: FakeTime, **kwargs: object) -> RetryAfterMiddleware:
    return RetryAfterMiddleware(crawler, pauses=HostPauses(time.clock), sleep=time.sleep, **kwargs)  # type: ignore[arg-type]


def answer(request: Request, status: int, **headers: str) -> Response:
    return Response(request.url, status=status, headers=headers, request=request)


def wait_for(mw: RetryAfterMiddleware, request: Request, time: FakeTime, label: str) -> None:
    time.current = label
    assert asyncio.run(mw.process_request(request)) is None     # None: go on and download it


# ------------------------------------------------------------------ Retry-After values


def test_retry_after_delta_seconds_and_http_dates() -> None:
    assert retry_after_seconds("120") == 120.0
    assert retry_after_seconds(" 0 ") == 0.0
    date = "Wed, 21 Oct 2015 07:28:00 GMT"
    # counted from the response's Date header (the server's clock), not ours
    assert retry_after_seconds("Wed, 21 Oct 2015 07:30:30 GMT", date=date) == 150.0
    assert retry_after_seconds("Wed, 21 Oct 2015 07:30:30 GMT",
                               now=datetime(2015, 10, 21, 7, 30, tzinfo=UTC)) == 30.0
    # without a readable Date header: from now; a date in the past: no wait
    assert retry_after_seconds("Wed, 21 Oct 2015 07:30:30 GMT", date="yesterday",
                               now=datetime(2015, 10, 21, 7, 30, 20, tzinfo=UTC)) == 10.0
    assert retry_after_seconds("Wed, 21 Oct 2015 07:28:00 GMT",
                               now=datetime(2016, 1, 1, tzinfo=UTC)) == 0.0


@pytest.mark.parametrize("value", [None, "", "soon", "-5", "1.5", "Someday, 99 Foo 2015"])
def test_unreadable_retry_after_is_none(value: str | None) -> None:
    assert retry_after_seconds(value) is None


# ------------------------------------------------------------------ waiting and retrying


def test_429_with_retry_after_pauses_the_host_then_retries(crawler: Crawler, time: FakeTime) -> None:
    mw = middleware(crawler, time)
    request = Request(CDX, cb_kwargs={"unit": "wayback:src:a.example/:"}, meta={"dwatch_role": "source"})
    retry = mw.process_response(request, answer(request, 429, **{"Retry-After": "7"}))

    assert isinstance(retry, Request)
    assert (retry.url, retry.cb_kwargs, retry.meta["dwatch_role"]) == (CDX, request.cb_kwargs, "source")
    assert retry.meta[RETRIES_META] == 1 and retry.dont_filter
    assert mw.pauses.remaining("cdx.example.org") == 7.0

    wait_for(mw, Request(OTHER), time, "other host")        # another host is not held
    wait_for(mw, retry, time, "retry")                      # the retry waits the 7 seconds out
    assert (time.slept("other host"), time.slept("retry")) == (0.0, 7.0)
    assert all(s <= 1.0 for _, s in time.sleeps)            # in short steps: a stop is noticed
    wait_for(mw, retry, time, "again")                      # the pause is over
    assert time.slept("again") == 0.0

    stats = crawler.stats.get_stats()
    assert (stats[RATE_LIMITED], stats["retry_after/count"], stats["retry_after/wait_seconds"]) == (1, 1, 7)
    assert stats["retry_after/reason_count/429"] == 1


def test_every_request_to_a_paused_host_waits(crawler: Crawler, time: FakeTime) -> None:
    mw = middleware(crawler, time)
    first = Request("http://web.archive.example/web/20140101000000id_/http://a.example/1")
    mw.process_response(first, answer(first, 429, **{"Retry-After": "3"}))
    sibling = Request("http://web.archive.example/web/20140102000000id_/http://a.example/2")
    wait_for(mw, sibling, time, "sibling")
    assert time.slept("sibling") == 3.0


def test_http_date_counts_from_the_servers_date_header(crawler: Crawler, time: FakeTime) -> None:
    mw = middleware(crawler, time)
    request = Request(CDX)
    served = datetime(2015, 10, 21, 7, 28, tzinfo=UTC)
    response = answer(request, 503, **{"Retry-After": "Wed, 21 Oct 2015 07:28:04 GMT",
                                       "Date": format_datetime(served, usegmt=True)})
    assert isinstance(mw.process_response(request, response), Request)
    wait_for(mw, request, time, "retry")
    assert time.slept("retry") == 4.0
    assert crawler.stats.get_value("retry_after/reason_count/503") == 1


def test_no_retry_after_backoff_doubles_and_waits_are_capped(crawler: Crawler, time: FakeTime) -> None:
    mw = middleware(crawler, time, backoff=2.0, max_wait=60.0, max_times=5)
    request = Request(CDX)
    waits = []
    for _ in range(4):
        retry = mw.process_response(request, answer(request, 429))
        assert isinstance(retry, Request)
        waits.append(mw.pauses.remaining("cdx.example.org"))
        time.now += waits[-1]
        request = retry
    assert waits == [2.0, 4.0, 8.0, 16.0]
    assert mw.wait_seconds(answer(request, 429, **{"Retry-After": "3600"}), 0) == (
        60.0, "Retry-After: 3600, capped at DWATCH_RETRY_AFTER_MAX_WAIT=60")
    assert mw.wait_seconds(answer(request, 429, **{"Retry-After": "later"}), 1) == (
        4.0, "unreadable Retry-After 'later', backoff 4 s")


def test_retries_are_bounded_then_the_429_reaches_the_spider(crawler: Crawler, time: FakeTime) -> None:
    mw = middleware(crawler, time, max_times=2)
    request = Request(CDX)
    seen: list[int] = []
    result: Request | Response = request
    while isinstance(result, Request):
        request = result
        seen.append(int(request.meta.get(RETRIES_META, 0)))
        result = mw.process_response(request, answer(request, 429, **{"Retry-After": "1"}))
    assert seen == [0, 1, 2]                          # the first request and two retries
    assert result.status == 429
    stats = crawler.stats.get_stats()
    assert (stats[RATE_LIMITED], stats["retry_after/count"], stats[RATE_LIMITED_GAVE_UP]) == (3, 2, 1)
    assert stats["retry_after/max_reached"] == 1


def test_other_statuses_and_dont_retry_pass_through(crawler: Crawler, time: FakeTime) -> None:
    mw = middleware(crawler, time)
    request = Request(CDX)
    for status in (200, 404, 500):
        response = answer(request, status, **{"Retry-After": "5"})
        assert mw.process_response(request, response) is response
    opted_out = Request(CDX, meta={"dont_retry": True})
    response = answer(opted_out, 429, **{"Retry-After": "5"})
    assert mw.process_response(opted_out, response) is response
    assert mw.pauses.remaining("cdx.example.org") == 0.0
    assert crawler.stats.get_value(RATE_LIMITED) is None


def test_a_stopping_crawl_stops_waiting(crawler: Crawler, time: FakeTime) -> None:
    mw = middleware(crawler, time)
    request = Request(CDX)
    mw.process_response(request, answer(request, 429, **{"Retry-After": "30"}))
    mw._started()                      # the engine_started signal
    crawler.crawling = False           # what Crawler.stop_async does first
    with pytest.raises(IgnoreRequest, match="crawl stopped while cdx.example.org asked to wait 30 s more"):
        asyncio.run(mw.process_request(request))


def test_pauses_are_shared_by_the_crawlers_of_a_process(time: FakeTime) -> None:
    pauses = HostPauses(time.clock)
    one = RetryAfterMiddleware(get_crawler(DummySpider), pauses=pauses, sleep=time.sleep)
    two = RetryAfterMiddleware(get_crawler(DummySpider), pauses=pauses, sleep=time.sleep)
    request = Request(CDX)
    one.process_response(request, answer(request, 429, **{"Retry-After": "5"}))
    pauses.pause("cdx.example.org", 2)                 # a shorter pause does not shorten it
    wait_for(two, Request(CDX + "&resumeKey=x"), time, "other crawler")
    assert time.slept("other crawler") == 5.0


def test_from_crawler_reads_the_settings() -> None:
    mw = RetryAfterMiddleware.from_crawler(get_crawler(DummySpider, {
        "DWATCH_RETRY_AFTER_TIMES": 4, "DWATCH_RETRY_AFTER_MAX_WAIT": 90, "DWATCH_RETRY_BACKOFF": 1.5,
        "DWATCH_RETRY_AFTER_CODES": [429]}))
    assert (mw.max_times, mw.max_wait, mw.backoff, mw.codes) == (4, 90.0, 1.5, frozenset({429}))
    with pytest.raises(NotConfigured):
        RetryAfterMiddleware.from_crawler(get_crawler(DummySpider, {"RETRY_ENABLED": False}))
    with pytest.raises(ValueError, match="none may be negative"):
        RetryAfterMiddleware(get_crawler(DummySpider), max_wait=-1)


# ------------------------------------------------------------------ in the project's Scrapy settings


def project_crawler() -> Crawler:
    settings = scrapy_settings(CrawlSettings(obey_robots=False, allow_private_addresses=True))
    crawler = get_crawler(DummySpider, settings)
    crawler.spider = DummySpider.from_crawler(crawler)      # as Crawler.crawl does
    return crawler


def test_project_settings_hand_429_and_503_to_it_not_to_scrapys_retry() -> None:
    crawler = project_crawler()
    middlewares = crawler.settings.getdict("DOWNLOADER_MIDDLEWARES")
    assert middlewares["crawler.retry_after.RetryAfterMiddleware"] == 560
    codes = {int(c) for c in crawler.settings.getlist("RETRY_HTTP_CODES")}
    assert codes == {500, 502, 504, 522, 524, 408}
    scrapy_retry = RetryMiddleware.from_crawler(crawler)
    request = Request(CDX)
    for status in (429, 503):
        response = answer(request, status)
        assert scrapy_retry.process_response(request, response) is response   # not retried at once
    assert isinstance(scrapy_retry.process_response(request, answer(request, 502)), Request)


def test_through_scrapys_middleware_chain(time: FakeTime) -> None:
    crawler = project_crawler()
    manager = DownloaderMiddlewareManager.from_crawler(crawler)
    ours = [mw for mw in manager.middlewares if isinstance(mw, RetryAfterMiddleware)]
    assert len(ours) == 1
    ours[0].pauses, ours[0]._sleep = HostPauses(time.clock), time.sleep
    downloads: list[tuple[str, float]] = []

    async def download(request: Request) -> Response:
        downloads.append((request.url, time.now))
        if len(downloads) == 1:
            return answer(request, 429, **{"Retry-After": "12"})
        return HtmlResponse(request.url, body=b"<html><body>[]</body></html>", request=request)

    first = asyncio.run(manager.download_async(download, Request(CDX)))
    assert isinstance(first, Request) and first.meta[RETRIES_META] == 1   # back to the scheduler
    time.current = "retry"
    second = asyncio.run(manager.download_async(download, first))
    assert isinstance(second, Response) and second.status == 200
    assert downloads == [(CDX, 1000.0), (CDX, 1012.0)]


# ------------------------------------------------------------------ in a real daily crawl

ARTICLE = """<!doctype html><html><head><title>{title}</title></head><body><article><h1>{title}</h1>
<p>{title}. The correspondent spent a week in the town and spoke with shopkeepers, teachers and
the families who returned after the fighting ended, about the schools, the water supply and the
prices in the market, which have doubled since the spring.</p>
<p>Most of them said the reconstruction is slow but steady, and that the new council has promised
to repair the bridge before the winter rains begin in the valley.</p></article></body></html>"""


def rss(items: list[tuple[str, str]]) -> str:
    entries = "".join(f"<item><title>{title}</title><link>{link}</link><guid>{link}</guid></item>"
                      for title, link in items)
    return f'<?xml version="1.0"?><rss version="2.0"><channel><title>t</title>{entries}</channel></rss>'


@pytest.mark.slow
def test_a_daily_crawl_waits_out_a_429_while_another_host_is_fetched(tmp_path: Path) -> None:
    from tests.backfill.servers import FixtureServer, Reply, ServedRequest, html_reply
    from tests.crawler.crawl_process import crawl, write_config

    answers = iter([Reply(429, {"Retry-After": "2", "Content-Type": "text/plain"}, b"slow down")])

    def busy(request: ServedRequest) -> Reply:
        return next(answers, html_reply(ARTICLE.format(title="The market reopens")))

    with FixtureServer({"/busy.html": busy}) as site, FixtureServer() as other:
        other_base = f"http://localhost:{other.port}"      # another host name: its own download slot
        items = [("The market reopens", site.url("/busy.html"))]
        for n in range(1, 4):
            path = f"/other-{n}.html"
            other.route(path, Reply(200, {"Content-Type": "text/html"},
                                    ARTICLE.format(title=f"Bridge repairs, part {n}").encode(), delay=0.5))
            items.append((f"Bridge repairs, part {n}", other_base + path))
        site.route("/feed.xml", Reply(200, {"Content-Type": "application/rss+xml"}, rss(items).encode()))
        config_dir = write_config(tmp_path / "config", [
            {"id": "wire", "name": "Wire", "kind": "feed", "urls": [site.url("/feed.xml")]}],
            crawl={"concurrent_requests_per_domain": 1})
        outcome = crawl(config_dir, tmp_path / "data")

    assert outcome.returncode == 0, outcome.stderr[-3000:]
    assert outcome.source("wire")["fetched"] == 4
    assert outcome.counters("wire")["rate_limited"] == 1
    busy_times = [r.at for r in site.log if r.path == "/busy.html"]
    assert len(busy_times) == 2                                # the 429, then one retry
    first, retry = busy_times
    assert retry - first >= 2.0                                # Retry-After: 2 honoured
    during = [r.path for r in other.log if first < r.at < retry and r.path.startswith("/other-")]
    assert len(during) >= 2, [(r.path, r.at - first) for r in other.log]   # the other host went on
