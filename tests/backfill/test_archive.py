"""The archive method: ?page=N lists, /YYYY/MM/ archives and next links, followed back to `since`."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import select

from store import make_engine, make_session_factory, queue
from store.models import BackfillArticleModel, Document
from store.records import QueueQuery
from tests.backfill.servers import (
    FixtureServer,
    article_html,
    html_reply,
    run_backfill_cli,
    write_config,
)

pytestmark = pytest.mark.slow


def listing(
    items: list[tuple[str, str, str | None]], *, older: str | None = None, rel_next: bool = False
) -> str:
    """A listing page: (href, title, ISO date or None) per item, and a link to older items."""
    lis = "".join(
        f'<li class="story"><a href="{href}">{title}</a>'
        + (f' <time datetime="{when}">{when[:10]}</time>' if when else "") + "</li>"
        for href, title, when in items
    )
    head = f'<link rel="next" href="{older}">' if older and rel_next else ""
    nav = f'<p class="pager"><a href="{older}">Older stories »</a></p>' if older and not rel_next else ""
    return (f"<!doctype html><html><head><title>Stories</title>{head}</head><body>"
            f'<nav><a href="/">Home</a> <a href="/about">About</a></nav>'
            f'<ul class="stories">{lis}</ul>{nav}</body></html>')


@pytest.fixture
def site() -> Iterator[FixtureServer]:
    with FixtureServer() as server:
        route = server.route
        # ---- ?page=N, newest first
        route("/news?page=1", html_reply(listing([
            ("/stories/too-new-1", "Too new", "2016-03-01T10:00:00+00:00"),
            ("/stories/too-new-2", "Too new too", "2016-01-10"),
        ])))
        route("/news?page=2", html_reply(listing([
            ("/stories/defector-november", "A defector in November", "2015-11-02T08:00:00Z"),
            ("/stories/2015/06/15/defector-june", "A defector in June", None),     # dated by its URL
        ])))
        route("/news?page=3", html_reply(listing([
            ("/stories/defector-august", "A defector in August", "2014-08-01"),
            ("/stories/december-2013", "Before the window", "2013-12-20"),
        ])))
        route("/news?page=4", html_reply(listing([
            ("/stories/october-2013", "Older", "2013-10-01"),
            ("/stories/september-2013", "Older", "2013-09-01"),
        ])))
        route("/news?page=5", html_reply(listing([("/stories/august-2013", "Oldest", "2013-08-01")])))
        # ---- /YYYY/MM/ archives, March paginated, February with an undated item
        route("/archive/2014/03/", html_reply(listing(
            [("/a/march-defector", "March defector", "2014-03-20")], older="/archive/2014/03/page/2/")))
        route("/archive/2014/03/page/2/", html_reply(listing(
            [("/a/march-early", "Early March", "2014-03-02")])))
        route("/archive/2014/02/", html_reply(listing([("/a/february-undated", "Undated", None)])))
        route("/archive/2014/01/", html_reply(listing(
            [("/a/january-defector", "January defector", "2014-01-15")])))
        route("/archive/2013/12/", html_reply(listing([("/a/december", "December", "2013-12-15")])))
        route("/archive/2014/04/", html_reply(listing([("/a/april", "April", "2014-04-15")])))
        # ---- a plain listing followed through rel=next
        route("/blog/", html_reply(listing(
            [("/blog/2014/02/10/post-defector", "Post", None)], older="/blog/older-1", rel_next=True)))
        route("/blog/older-1", html_reply(listing(
            [("/blog/2014/01/05/post-january", "Post", None)], older="/blog/older-2", rel_next=True)))
        route("/blog/older-2", html_reply(listing(
            [("/blog/2013/11/30/post-november", "Post", None)], older="/blog/older-3", rel_next=True)))
        route("/blog/older-3", html_reply(listing([("/blog/2013/10/01/post-october", "Post", None)])))
        articles = {
            "/stories/defector-november": "2015-11-02", "/stories/2015/06/15/defector-june": "2015-06-15",
            "/stories/defector-august": "2014-08-01", "/a/march-defector": "2014-03-20",
            "/a/march-early": "2014-03-02", "/a/january-defector": "2014-01-15",
            "/a/february-undated": "2013-11-05",            # its page says it is older than the window
            "/blog/2014/02/10/post-defector": "2014-02-10", "/blog/2014/01/05/post-january": "2014-01-05",
        }
        for path, day in articles.items():
            route(path, html_reply(article_html(f"Story {path}", day, lead=f"{path}: ")))
        yield server


def test_archive_pages_are_followed_until_their_items_fall_before_since(
    site: FixtureServer, tmp_path: Path
) -> None:
    u = site.url
    config = write_config(tmp_path / "config", [
        {"id": "bulletin", "name": "Bulletin", "kind": "listing", "urls": [u("/news?page=1")],
         "link_selector": "ul.stories li", "archive_urls": [u("/news?page={page}")]},
        {"id": "monthly", "name": "Monthly", "kind": "listing", "urls": [u("/archive/")],
         "link_selector": "ul.stories li", "archive_urls": [u("/archive/{yyyy}/{mm}/")]},
        {"id": "blog", "name": "Blog", "kind": "listing", "urls": [u("/blog/")],
         "link_selector": "ul.stories li"},
    ], crawl={"concurrent_requests_per_domain": 1})

    common = ("--via", "archive")
    bulletin = run_backfill_cli(config, tmp_path / "data", "--since", "2014-01-01", "--until", "2015-12-31",
                                "--source", "bulletin", "--source", "blog", *common)
    assert bulletin.returncode == 0, bulletin.stderr[-3000:]
    monthly = run_backfill_cli(config, tmp_path / "data", "--since", "2014-01-01", "--until", "2014-03-31",
                               "--source", "monthly", *common)
    assert monthly.returncode == 0, monthly.stderr[-3000:]

    requested = [p for p in site.paths() if p != "/robots.txt"]
    assert len(requested) == len(set(requested))
    assert sorted(requested) == sorted([
        # ?page=N: page 4 holds only items older than 2014-01-01, so page 5 is never asked for
        "/news?page=1", "/news?page=2", "/news?page=3", "/news?page=4",
        "/stories/defector-november", "/stories/2015/06/15/defector-june", "/stories/defector-august",
        # rel=next: older-2 holds only 2013 posts (dated by their URLs): older-3 is not read
        "/blog/", "/blog/older-1", "/blog/older-2",
        "/blog/2014/02/10/post-defector", "/blog/2014/01/05/post-january",
        # one archive page per month of the window, March through its "Older" link
        "/archive/2014/03/", "/archive/2014/03/page/2/", "/archive/2014/02/", "/archive/2014/01/",
        "/a/march-defector", "/a/march-early", "/a/january-defector",
        "/a/february-undated",     # no date on the listing: fetched, its page decides
    ])
    assert bulletin.stdout.splitlines()[2:5] == [
        "blog      archive  3           2         1             0               2        2        0",
        "bulletin  archive  8           3         5             0               3        3        0",
        "total              11          5         6             0               5        5        0",
    ]
    assert monthly.stdout.splitlines()[2] == (
        "monthly  archive  4           4         1             0               4        3        0")

    engine = make_engine(f"sqlite:///{tmp_path / 'data' / 'dwatch.sqlite3'}")
    try:
        with make_session_factory(engine)() as session:
            queued = queue.list_candidates(session, QueueQuery(limit=None))
            assert sorted(c.url.removeprefix(site.base_url) for c in queued) == sorted([
                "/stories/defector-november", "/stories/2015/06/15/defector-june", "/stories/defector-august",
                "/blog/2014/02/10/post-defector", "/blog/2014/01/05/post-january",
                "/a/march-defector", "/a/march-early", "/a/january-defector",
            ])
            details = [queue.get_candidate(session, c.id) for c in queued]
            assert {(d.provenance["channel"], d.provenance["method"]) for d in details if d} == {
                ("backfill", "archive")}
            november = next(d for d in details if d and d.url.endswith("/defector-november"))
            assert (november.provenance["discovered_from"], november.provenance["entry_title"],
                    november.provenance["entry_published"]) == (
                u("/news?page=2"), "A defector in November", "2015-11-02T08:00:00+00:00")
            undated = session.scalars(
                select(Document).where(Document.canonical_url == u("/a/february-undated"))).one()
            assert undated.detail == "published 2013-11-05, outside 2014-01-01..2014-03-31"
            not_fetched = session.scalars(select(BackfillArticleModel.canonical_url).where(
                BackfillArticleModel.status == "out_of_range")).all()
            assert sorted(url.removeprefix(site.base_url) for url in not_fetched) == sorted([
                "/stories/too-new-1", "/stories/too-new-2", "/stories/december-2013", "/stories/october-2013",
                "/stories/september-2013", "/blog/2013/11/30/post-november", "/a/february-undated",
            ])
    finally:
        engine.dispose()
