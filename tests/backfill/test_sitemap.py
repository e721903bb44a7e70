"""The sitemap method: an index, a Google News sitemap, a lastmod-only one and an undated one.

Written after the shapes of ../shared/fixtures/sitemaps (a sitemaps.org index with lastmod, a
WordPress Google News sitemap with news:publication_date and news:title, a newspaper urlset
with only lastmod); the last test reads two of those real files in place.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, date, datetime
from pathlib import Path

import pytest
from sqlalchemy import select

from store import make_engine, make_session_factory, queue
from store.models import BackfillArticleModel, BackfillJobModel, Document
from store.records import QueueQuery
from tests.backfill.servers import (
    OTHER_STORY,
    FixtureServer,
    article_html,
    html_reply,
    run_backfill_cli,
    write_config,
    xml_reply,
)

pytestmark = pytest.mark.slow

SINCE, UNTIL = "2014-01-01", "2015-12-31"
NS = ('xmlns="http://www.sitemaps.org/schemas/sitemap/0.9" '
      'xmlns:news="http://www.google.com/schemas/sitemap-news/0.9"')


def sitemap_index(children: list[tuple[str, str | None]]) -> str:
    items = "".join(
        f"<sitemap><loc>{loc}</loc>{f'<lastmod>{mod}</lastmod>' if mod else ''}</sitemap>"
        for loc, mod in children
    )
    return f'<?xml version="1.0" encoding="UTF-8"?>\n<sitemapindex {NS}>{items}</sitemapindex>'


def news_sitemap(entries: list[tuple[str, str, str]]) -> str:
    items = "".join(
        f"<url><loc>{loc}</loc><news:news><news:publication><news:name>The Test Gazette</news:name>"
        f"<news:language>en</news:language></news:publication>"
        f"<news:publication_date>{when}</news:publication_date><news:title>{title}</news:title>"
        f"</news:news></url>"
        for loc, when, title in entries
    )
    return f'<?xml version="1.0" encoding="UTF-8"?>\n<urlset {NS}>{items}</urlset>'


def lastmod_sitemap(entries: list[tuple[str, str | None]]) -> str:
    items = "".join(
        f"<url><loc>{loc}</loc>{f'<lastmod>{mod}</lastmod>' if mod else ''}"
        "<changefreq>daily</changefreq></url>"
        for loc, mod in entries
    )
    return f'<?xml version="1.0" encoding="UTF-8"?>\n<urlset {NS}>{items}</urlset>'


@pytest.fixture
def gazette() -> Iterator[FixtureServer]:
    """A news site whose sitemaps list articles from 2012 to 2017."""
    with FixtureServer() as server:
        u = server.url
        server.route("/sitemap_index.xml", xml_reply(sitemap_index([
            (u("/sitemaps/news.xml"), "2016-02-01T10:00:00+00:00"),
            (u("/sitemaps/articles-2015.xml"), "2017-01-01"),
            (u("/sitemaps/articles-2012.xml"), "2012-12-31T23:00:00+00:00"),   # before the window
            (u("/sitemaps/undated.xml"), None),
        ])))
        server.route("/sitemaps/news.xml", xml_reply(news_sitemap([
            (u("/news/2014/03/defector-raqqa"), "2014-03-10T08:00:00+01:00", "Why I left Raqqa"),
            (u("/news/2016/02/later-story"), "2016-02-01T09:00:00+00:00", "Too late"),
            (u("/news/2013/05/earlier-story"), "2013-05-01", "Too early"),
            (u("/news/2015/12/new-year-eve"), "2015-12-31T23:00:00Z", "The last evening"),
            # 00:30 on 1 January 2014 in UTC+2 is 31 December 2013 in UTC: outside
            (u("/news/2014/01/just-before"), "2014-01-01T00:30:00+02:00", "Just before"),
        ])))
        server.route("/sitemaps/articles-2015.xml", xml_reply(lastmod_sitemap([
            (u("/2015/07/road-repairs"), "2015-07-04T12:00:00+01:00"),
            (u("/2015/11/second-defector"), "2015-11-20"),
            (u("/2017/01/anniversary"), "2017-01-01T08:00:00+00:00"),
        ])))
        server.route("/sitemaps/articles-2012.xml", xml_reply(lastmod_sitemap([
            (u("/2012/06/never-read"), "2012-06-01")])))
        server.route("/sitemaps/undated.xml", xml_reply(lastmod_sitemap([
            (u("/undated/mosul-defector"), None),
            (u("/undated/old-defector"), None),
            (u("/undated/no-date-defector"), None),
        ])))
        pages = {
            "/news/2014/03/defector-raqqa": article_html(
                "Why I left Raqqa", "2014-03-10T08:00:00+01:00", lead="In March, "),
            "/news/2016/02/later-story": article_html("Too late", "2016-02-01", lead="Later, "),
            "/news/2013/05/earlier-story": article_html("Too early", "2013-05-01", lead="Earlier, "),
            "/news/2015/12/new-year-eve": article_html(
                "The last evening", "2015-12-31T23:00:00+00:00", lead="On new year's eve, "),
            "/news/2014/01/just-before": article_html("Just before", "2013-12-31", lead="Just before, "),
            "/2015/07/road-repairs": article_html("Road repairs", "2015-07-04", paragraphs=OTHER_STORY),
            "/2015/11/second-defector": article_html(
                "A second defector speaks", "2015-11-20", lead="In November, "),
            "/2017/01/anniversary": article_html("Anniversary", "2017-01-01", lead="Years on, "),
            "/2012/06/never-read": article_html("Never read", "2012-06-01", lead="Long ago, "),
            "/undated/mosul-defector": article_html(
                "A defector from Mosul", "2014-09-09T10:00:00+00:00", lead="In Mosul, "),
            "/undated/old-defector": article_html(
                "An old account of defection", "2013-02-02T10:00:00+00:00", lead="Back then, "),
            "/undated/no-date-defector": article_html(
                "A defector, undated", None, lead="Nobody knows when. "),
        }
        for path, page in pages.items():
            server.route(path, html_reply(page))
        yield server


def test_exactly_the_articles_in_the_window_are_fetched_and_queued(
    gazette: FixtureServer, tmp_path: Path
) -> None:
    u = gazette.url
    config = write_config(tmp_path / "config", [
        {"id": "gazette", "name": "The Test Gazette", "kind": "sitemap", "urls": [u("/sitemap_index.xml")]}])

    outcome = run_backfill_cli(config, tmp_path / "data", "--since", SINCE, "--until", UNTIL,
                               "--via", "sitemap")

    assert outcome.returncode == 0, outcome.stderr[-3000:]
    requested = [p for p in gazette.paths() if p != "/robots.txt"]   # robots.txt: Scrapy's own politeness
    assert sorted(requested) == sorted([
        "/sitemap_index.xml", "/sitemaps/news.xml", "/sitemaps/articles-2015.xml", "/sitemaps/undated.xml",
        # Google News dates in the window (the edge day included)
        "/news/2014/03/defector-raqqa", "/news/2015/12/new-year-eve",
        # lastmod in the window
        "/2015/07/road-repairs", "/2015/11/second-defector",
        # no listing date: fetched, the page's own date decides
        "/undated/mosul-defector", "/undated/old-defector", "/undated/no-date-defector",
    ])
    assert outcome.stdout.splitlines()[:4] == [
        "source   method   discovered  in range  out of range  already stored  fetched  flagged  errors",
        "-------  -------  ----------  --------  ------------  --------------  -------  -------  ------",
        "gazette  sitemap  11          7         5             0               7        5        0",
        "total             11          7         5             0               7        5        0",
    ]
    assert re.fullmatch(r"backfill run 1 \(job 1\) 2014-01-01\.\.2015-12-31 via sitemap: ok",
                        outcome.stdout.splitlines()[4])
    assert "backfill [####################]   7/7 fetched · 5 out of range · 5 flagged" in outcome.stderr

    engine = make_engine(f"sqlite:///{tmp_path / 'data' / 'dwatch.sqlite3'}")
    try:
        with make_session_factory(engine)() as session:
            queued = queue.list_candidates(session, QueueQuery(limit=None))
            assert sorted(c.url for c in queued) == sorted(u(p) for p in (
                "/news/2014/03/defector-raqqa", "/news/2015/12/new-year-eve", "/2015/11/second-defector",
                "/undated/mosul-defector", "/undated/no-date-defector"))
            assert {(c.source_id, c.channel) for c in queued} == {("gazette", "backfill")}
            raqqa = next(c for c in queued if c.url.endswith("/defector-raqqa"))
            detail = queue.get_candidate(session, raqqa.id)
            assert detail is not None
            provenance = {k: detail.provenance[k] for k in (
                "source_id", "channel", "method", "discovered_from", "entry_title", "entry_published",
                "requested_url", "canonical_url", "http_status")}
            assert provenance == {
                "source_id": "gazette", "channel": "backfill", "method": "sitemap",
                "discovered_from": u("/sitemaps/news.xml"), "entry_title": "Why I left Raqqa",
                "entry_published": "2014-03-10T07:00:00+00:00",
                "requested_url": u("/news/2014/03/defector-raqqa"),
                "canonical_url": u("/news/2014/03/defector-raqqa"), "http_status": 200,
            }

            old = session.scalars(
                select(Document).where(Document.canonical_url == u("/undated/old-defector"))).one()
            assert (old.outcome, old.reason, old.detail) == (
                "skipped", "out_of_range", "published 2013-02-02, outside 2014-01-01..2015-12-31")
            assert (old.title, old.published, old.flagged) == (
                "An old account of defection", datetime(2013, 2, 2, tzinfo=UTC), False)
            assert old.verdict is not None and old.verdict["flagged"] is True     # the verdict is kept
            assert old.text is not None and old.text.startswith("Back then, Abu Khaled spent two years")
            assert (old.channel, old.method) == ("backfill", "sitemap")
            repairs = session.scalars(
                select(Document).where(Document.canonical_url == u("/2015/07/road-repairs"))).one()
            assert repairs.reason == "prefiltered"      # fetched, not a defector story

            articles = dict(session.execute(
                select(BackfillArticleModel.canonical_url, BackfillArticleModel.status)).all())
            assert {url.removeprefix(gazette.base_url): status for url, status in articles.items()} == {
                "/news/2014/03/defector-raqqa": "fetched", "/news/2016/02/later-story": "out_of_range",
                "/news/2013/05/earlier-story": "out_of_range", "/news/2015/12/new-year-eve": "fetched",
                "/news/2014/01/just-before": "out_of_range", "/2015/07/road-repairs": "fetched",
                "/2015/11/second-defector": "fetched", "/2017/01/anniversary": "out_of_range",
                "/undated/mosul-defector": "fetched", "/undated/old-defector": "out_of_range",
                "/undated/no-date-defector": "fetched",
            }
            job = session.scalars(select(BackfillJobModel)).one()
            assert (job.status, job.since, job.until, job.sources, job.methods) == (
                "done", date(2014, 1, 1), date(2015, 12, 31), ["gazette"], ["sitemap"])
    finally:
        engine.dispose()


def _lastmod_days(text: str) -> list[date]:
    """Every <url>'s lastmod as a UTC day (an independent reading of the real file)."""
    days = []
    for block in re.findall(r"<url>(.*?)</url>", text, flags=re.DOTALL):
        stamp = re.search(r"<lastmod>([^<]+)</lastmod>", block)
        assert stamp is not None
        days.append(datetime.fromisoformat(stamp[1]).astimezone(UTC).date())
    return days


def test_plan_on_real_sitemaps_counts_per_source_and_fetches_no_article(
    shared_fixtures: Path, tmp_path: Path
) -> None:
    extension = shared_fixtures / "sitemaps" / "crawler-commons" / "sitemaps" / "extension"
    hebden = (extension / "hebdenbridgetimes-articles-sitemap.xml").read_bytes()
    news = (extension / "shinpaideshou-news-sitemap.xml").read_bytes()
    days = _lastmod_days(hebden.decode("utf-8"))
    inside = sum(1 for d in days if date(2015, 4, 28) <= d <= date(2015, 5, 1))
    assert (len(days), inside) == (74, 38)
    with FixtureServer({"/hebden.xml": xml_reply(hebden), "/news.xml": xml_reply(news)}) as server:
        config = write_config(tmp_path / "config", [
            {"id": "hebden", "name": "Hebden Bridge Times", "kind": "sitemap",
             "urls": [server.url("/hebden.xml")]},
            {"id": "shinpai", "name": "Shinpai", "kind": "sitemap", "urls": [server.url("/news.xml")]},
        ])
        outcome = run_backfill_cli(config, tmp_path / "data", "--since", "2015-04-28",
                                   "--until", "2015-05-01", "--via", "sitemap", "--plan")
        requested = sorted(p for p in server.paths() if p != "/robots.txt")
    assert outcome.returncode == 0, outcome.stderr[-3000:]
    assert requested == ["/hebden.xml", "/news.xml"]           # the sitemaps only: no article
    assert outcome.stdout.splitlines() == [
        "source   method   discovered  in range  out of range  already stored  to fetch",
        "-------  -------  ----------  --------  ------------  --------------  --------",
        f"hebden   sitemap  74          {inside}        {74 - inside}            0               {inside}",
        "shinpai  sitemap  3           0         3             0               0",
        f"total             77          {inside}        {77 - inside}            0               {inside}",
        "plan (nothing fetched) 2015-04-28..2015-05-01 via sitemap: ok",
    ]
    engine = make_engine(f"sqlite:///{tmp_path / 'data' / 'dwatch.sqlite3'}")
    try:
        with make_session_factory(engine)() as session:    # a plan records nothing
            assert session.scalars(select(BackfillJobModel)).all() == []
            assert session.scalars(select(Document)).all() == []
    finally:
        engine.dispose()
