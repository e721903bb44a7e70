"""The gdelt method: `dwatch backfill --via gdelt` against a GDELT-format DOC API on 127.0.0.1.

The fake API answers ``mode=artlist&format=json`` requests like GDELT's DOC 2.0 API: the rows of
its data set whose ``seendate`` falls between ``startdatetime`` and ``enddatetime``, at most
``maxrecords`` (250) of them, "{}" when none, and its refusals as text with HTTP 200 ("Your
search contained a keyword that was too short"). Its busy week holds 263 rows: the week's
answer and its first half are capped at 250 and split, and only the quarter slices reach the
stories the cap hid. (The busy week is padded with tracking-parameter variants of two
stories, as GDELT lists syndicated and tagged copies, so only its distinct pages are fetched.)

The article pages are on a second local server, reached as 127.0.0.1 (a configured source's
host) and as localhost (no configured source: attributed to "gdelt"). Some pages are dated
outside the window although GDELT saw them inside it: they are stored, never queued.
"""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from extract import canonicalize_url
from store import make_engine, make_session_factory, queue
from store.models import BackfillJobModel, BackfillUnitModel, Document
from store.records import QueueQuery
from tests.backfill.servers import (
    OTHER_STORY,
    FixtureServer,
    Reply,
    ServedRequest,
    article_html,
    html_reply,
    run_backfill_cli,
    start_backfill_cli,
    write_config,
)

pytestmark = pytest.mark.slow

API_PATH = "/api/v2/doc/doc"
QUERY = '"islamic state" defector'
SHORT_QUERY = "IS"          # GDELT refuses keywords this short
DELAY = 0.5                 # backfill.gdelt_delay of these tests
W1 = ("20150101000000", "20150107235959")
W2 = ("20150108000000", "20150114235959")      # the busy week: 263 rows
W2A = ("20150108000000", "20150111115959")     # its first half: 261 rows, split again
W2B = ("20150111120000", "20150114235959")
W2A1 = ("20150108000000", "20150109175959")
W2A2 = ("20150109180000", "20150111115959")
W3 = ("20150115000000", "20150121235959")
SLICES = (W1, W2, W2A, W2B, W2A1, W2A2, W3)
ARGS = ("--since", "2015-01-01", "--until", "2015-01-21", "--via", "gdelt")


@dataclass(frozen=True)
class Row:
    path: str
    seen: datetime
    title: str
    host: str = "127.0.0.1"          # "localhost": a host no configured source owns


def quarter_hours(start: datetime, count: int) -> list[datetime]:
    return [start + timedelta(minutes=15 * i) for i in range(count)]


def data_set() -> list[Row]:
    rows = [
        Row("/2015/01/05/raqqa-defector", datetime(2015, 1, 5, 10, tzinfo=UTC), "Why I left Raqqa"),
        Row("/2015/01/06/council-budget", datetime(2015, 1, 6, 9, 15, tzinfo=UTC), "Council budget approved"),
        # an old story GDELT saw again in the window: its page date decides
        Row("/2014/11/02/old-account", datetime(2015, 1, 3, 8, tzinfo=UTC), "An old account of defection"),
    ]
    rows += [Row(f"/2015/01/09/mosul-defector?utm_source=gdelt&utm_content={i}", seen, "From Mosul")
             for i, seen in enumerate(quarter_hours(datetime(2015, 1, 8, tzinfo=UTC), 150))]
    rows += [Row(f"/2015/01/10/aleppo-defector?utm_source=gdelt&utm_content={i}", seen, "Out of Aleppo")
             for i, seen in enumerate(quarter_hours(datetime(2015, 1, 9, 18, tzinfo=UTC), 110))]
    rows += [
        # after the 250th row of the week and of its first half: found only by the quarter slice
        Row("/2015/01/11/hasakah-defector", datetime(2015, 1, 11, 10, tzinfo=UTC), "A Hasakah defector",
            host="localhost"),
        Row("/2015/01/12/testimonies", datetime(2015, 1, 12, 7, 30, tzinfo=UTC), "Why they left"),
        Row("/undated/deserter", datetime(2015, 1, 13, 22, 45, tzinfo=UTC), "A deserter speaks"),
        Row("/2015/01/19/returnee", datetime(2015, 1, 19, 16, tzinfo=UTC), "A returnee's story"),
        Row("/2014/12/30/year-review", datetime(2015, 1, 20, 12, tzinfo=UTC), "The year in review"),
    ]
    return rows


PAGES = {
    "/2015/01/05/raqqa-defector": article_html("Why I left Raqqa", "2015-01-05T09:00:00+00:00",
                                               lead="In Raqqa, "),
    "/2015/01/06/council-budget": article_html("Council budget approved", "2015-01-06",
                                               paragraphs=OTHER_STORY),
    "/2014/11/02/old-account": article_html("An old account of defection", "2014-11-02", lead="Back then, "),
    "/2015/01/09/mosul-defector": article_html("A defector from Mosul", "2015-01-09", lead="In Mosul, "),
    "/2015/01/10/aleppo-defector": article_html("Out of Aleppo", "2015-01-10", lead="In Aleppo, "),
    "/2015/01/11/hasakah-defector": article_html("A Hasakah defector", "2015-01-11", lead="In Hasakah, "),
    "/2015/01/12/testimonies": article_html("Why they left", "2015-01-12", lead="In the camps, "),
    "/undated/deserter": article_html("A deserter speaks", None, lead="Nobody knows when. "),
    "/2015/01/19/returnee": article_html("A returnee's story", "2015-01-19", lead="Back home, "),
    "/2014/12/30/year-review": article_html("The year in review", "2014-12-30", lead="Last year, "),
}
IN_RANGE_DEFECTORS = {   # path -> source id: what must reach the queue
    "/2015/01/05/raqqa-defector": "gazette", "/2015/01/09/mosul-defector": "gazette",
    "/2015/01/10/aleppo-defector": "gazette", "/2015/01/11/hasakah-defector": "gdelt",
    "/2015/01/12/testimonies": "gazette", "/undated/deserter": "gazette", "/2015/01/19/returnee": "gazette",
}


class FakeGdelt:
    """The DOC API over `data_set()`; `script[(start, end)]`: replies given first, one per request."""

    def __init__(self, site: FixtureServer) -> None:
        self.site = site
        self.rows = data_set()
        self.script: dict[tuple[str, str], list[Reply]] = {}

    def __call__(self, request: ServedRequest) -> Reply:
        params = {k: request.param(k) for k in ("mode", "format", "maxrecords")}
        if params != {"mode": "artlist", "format": "json", "maxrecords": "250"}:
            return Reply(400, {"Content-Type": "text/plain"}, f"unexpected parameters {params}".encode())
        query = request.param("query") or ""
        start, end = request.param("startdatetime") or "", request.param("enddatetime") or ""
        if len(query) < 3:
            refusal = b"Your search contained a keyword that was too short."
            return Reply(200, {"Content-Type": "text/html"}, refusal)
        scripted = self.script.get((start, end))
        if scripted:
            return scripted.pop(0)
        found = [r for r in self.rows if start <= f"{r.seen:%Y%m%d%H%M%S}" <= end][:250]
        articles = [{
            "url": f"http://{r.host}:{self.site.port}{r.path}", "url_mobile": "", "title": r.title,
            "seendate": f"{r.seen:%Y%m%dT%H%M%SZ}", "socialimage": "", "domain": r.host,
            "language": "English", "sourcecountry": "United Kingdom",
        } for r in found]
        body = json.dumps({"articles": articles}) if articles else "{}"
        return Reply(200, {"Content-Type": "application/json; charset=utf-8"}, body.encode())


@pytest.fixture
def servers() -> Iterator[tuple[FixtureServer, FixtureServer, FakeGdelt]]:
    with FixtureServer() as site, FixtureServer() as api:
        for path, page in PAGES.items():
            site.route(path, html_reply(page))
        fake = FakeGdelt(site)
        api.route(API_PATH, fake)
        yield api, site, fake


def asked(api: FixtureServer) -> list[tuple[str | None, str, str]]:
    """(query, startdatetime, enddatetime) of every DOC API request, in order."""
    return [(r.param("query"), r.param("startdatetime") or "", r.param("enddatetime") or "")
            for r in api.log if r.path == API_PATH]


def times_of(api: FixtureServer, span: tuple[str, str]) -> list[float]:
    return [r.at for r in api.log if r.path == API_PATH and r.param("query") == QUERY
            and (r.param("startdatetime"), r.param("enddatetime")) == span]


def page_hits(site: FixtureServer) -> dict[str, int]:
    return {path: site.hits(path) for path in PAGES if site.hits(path)}


def test_slices_split_at_the_cap_and_exactly_the_in_range_articles_are_queued_then_resumed(
    servers: tuple[FixtureServer, FixtureServer, FakeGdelt], tmp_path: Path
) -> None:
    api, site, fake = servers
    config = write_config(
        tmp_path / "config",
        [{"id": "gazette", "name": "The Test Gazette", "kind": "feed", "urls": [site.url("/feed.xml")]}],
        backfill={"gdelt_url": api.url(API_PATH), "gdelt_queries": [QUERY, SHORT_QUERY],
                  "gdelt_slice_days": 7, "gdelt_delay": DELAY},
    )
    fake.script = {
        W1: [Reply(200, {"Content-Type": "text/plain"}, b"Too many requests. Please slow down.")],
        W3: [Reply(429, {"Retry-After": "1", "Content-Type": "text/plain"}, b"Too Many Requests")],
        W2A2: [Reply(500, {"Content-Type": "text/plain"}, b"busy")] * 2,      # fails this run
    }

    first = run_backfill_cli(config, tmp_path / "data", *ARGS)

    assert first.returncode == 0, first.stderr[-3000:]
    requests = asked(api)
    # each query's first slice is asked alone; the refused query is not asked again
    assert set(requests[:2]) == {(QUERY, *W1), (SHORT_QUERY, *W1)}
    assert sorted(requests) == sorted([
        (QUERY, *W1), (QUERY, *W1),               # GDELT's slow-down notice, then the answer
        (QUERY, *W2), (QUERY, *W2A), (QUERY, *W2A1), (QUERY, *W2A2), (QUERY, *W2A2), (QUERY, *W2B),
        (QUERY, *W3), (QUERY, *W3),               # 429 with Retry-After: 1, then the answer
        (SHORT_QUERY, *W1),
    ])
    # politeness: one API request at a time, gdelt_delay apart (measured on arrival, where a busy
    # crawler process may send one a little late, so the spacing is checked overall)
    arrivals = [r.at for r in api.log if r.path == API_PATH]
    gaps = sorted(b - a for a, b in zip(arrivals, arrivals[1:], strict=False))
    assert gaps[len(gaps) // 2] >= DELAY - 0.05
    assert arrivals[-1] - arrivals[0] >= (len(arrivals) - 1) * DELAY - 0.2
    for span in (W1, W3):
        notice, retry = times_of(api, span)
        assert retry - notice >= 1.0
    refused = "GDELT rejected the query 'IS': 'Your search contained a keyword that was too short.'"
    assert refused in first.stderr

    # every distinct page once; the variants of a story are one page, the quarter slice that failed
    # held the only row of the Hasakah story
    assert page_hits(site) == {path: 1 for path in PAGES if path != "/2015/01/11/hasakah-defector"}

    database = f"sqlite:///{tmp_path / 'data' / 'dwatch.sqlite3'}"
    engine = make_engine(database)
    try:
        with make_session_factory(engine)() as session:
            queued = queue.list_candidates(session, QueueQuery(limit=None))
            expected = {p: s for p, s in IN_RANGE_DEFECTORS.items() if p != "/2015/01/11/hasakah-defector"}
            assert {c.canonical_url: c.source_id for c in queued} == {
                site.url(p): s for p, s in expected.items()}
            assert {c.channel for c in queued} == {"backfill"}
            raqqa = next(c for c in queued if c.url.endswith("/raqqa-defector"))
            detail = queue.get_candidate(session, raqqa.id)
            assert detail is not None
            assert {k: detail.provenance[k] for k in (
                "source_id", "channel", "method", "discovered_from", "entry_title", "entry_published",
                "requested_url", "canonical_url", "http_status")} == {
                "source_id": "gazette", "channel": "backfill", "method": "gdelt",
                "discovered_from": api.url(API_PATH) + "?query=%22islamic+state%22+defector&mode=artlist"
                "&format=json&maxrecords=250&startdatetime=20150101000000&enddatetime=20150107235959",
                "entry_title": "Why I left Raqqa", "entry_published": None,
                "requested_url": site.url("/2015/01/05/raqqa-defector"),
                "canonical_url": site.url("/2015/01/05/raqqa-defector"), "http_status": 200,
            }
            mosul = next(c for c in queued if "/mosul-defector" in c.url)   # the first copy listed is fetched
            assert mosul.url == site.url("/2015/01/09/mosul-defector?utm_source=gdelt&utm_content=0")
            assert mosul.canonical_url == site.url("/2015/01/09/mosul-defector")

            documents = {d.canonical_url.removeprefix(site.base_url): d
                         for d in session.scalars(select(Document))}
            for path, published in (("/2014/11/02/old-account", "2014-11-02"),
                                    ("/2014/12/30/year-review", "2014-12-30")):
                old = documents[path]
                assert (old.outcome, old.reason, old.detail) == (
                    "skipped", "out_of_range", f"published {published}, outside 2015-01-01..2015-01-21")
                assert (old.channel, old.method, old.flagged) == ("backfill", "gdelt", False)
                assert old.verdict is not None and old.verdict["flagged"] is True
            assert documents["/2015/01/06/council-budget"].reason == "prefiltered"
            assert len(documents) == len(PAGES) - 1

            units = {u.unit: (u.status, u.found) for u in session.scalars(select(BackfillUnitModel))}
            done = {unit: found for unit, (status, found) in units.items() if status == "done"}
            assert done == {
                f"gdelt:{QUERY}:{W1[0]}:{W1[1]}": 3,
                f"gdelt:{QUERY}:{W2A1[0]}:{W2A1[1]}": 150,
                f"gdelt:{QUERY}:{W2B[0]}:{W2B[1]}": 2,
                f"gdelt:{QUERY}:{W3[0]}:{W3[1]}": 2,
            }
            job = session.scalars(select(BackfillJobModel)).one()
            assert job.status == "failed"          # slices left to ask: the same command continues it
    finally:
        engine.dispose()

    # the same command again: only the unfinished slices are asked, no page is fetched twice
    api.clear_log()
    site.clear_log()
    second = run_backfill_cli(config, tmp_path / "data", *ARGS)

    assert second.returncode == 0, second.stderr[-3000:]
    assert sorted(asked(api)) == sorted([
        (QUERY, *W2), (QUERY, *W2A), (QUERY, *W2A2),     # the split slices whose halves were not all done
        (SHORT_QUERY, *W1),                               # still refused
    ])
    assert page_hits(site) == {"/2015/01/11/hasakah-defector": 1}
    engine = make_engine(database)
    try:
        with make_session_factory(engine)() as session:
            queued = queue.list_candidates(session, QueueQuery(limit=None))
            assert {c.canonical_url.replace("localhost", "127.0.0.1"): c.source_id for c in queued} == {
                site.url(p): s for p, s in IN_RANGE_DEFECTORS.items()}
            hasakah = next(c for c in queued if "/hasakah-defector" in c.url)
            assert hasakah.url == f"http://localhost:{site.port}/2015/01/11/hasakah-defector"
            detail = queue.get_candidate(session, hasakah.id)
            assert detail is not None
            assert (detail.provenance["method"], detail.provenance["discovered_from"]) == (
                "gdelt", api.url(API_PATH) + "?query=%22islamic+state%22+defector&mode=artlist&format=json"
                f"&maxrecords=250&startdatetime={W2A2[0]}&enddatetime={W2A2[1]}")
            units = {u.unit: (u.status, u.found) for u in session.scalars(select(BackfillUnitModel))}
            assert {unit: found for unit, (status, found) in units.items()
                    if status == "done" and unit.startswith(f"gdelt:{QUERY}:")} == {
                f"gdelt:{QUERY}:{W1[0]}:{W1[1]}": 3,
                f"gdelt:{QUERY}:{W2[0]}:{W2[1]}": 250,
                f"gdelt:{QUERY}:{W2A[0]}:{W2A[1]}": 250,
                f"gdelt:{QUERY}:{W2A1[0]}:{W2A1[1]}": 150,
                f"gdelt:{QUERY}:{W2A2[0]}:{W2A2[1]}": 111,
                f"gdelt:{QUERY}:{W2B[0]}:{W2B[1]}": 2,
                f"gdelt:{QUERY}:{W3[0]}:{W3[1]}": 2,
            }
    finally:
        engine.dispose()


# ---------------------------------------------------------------- resume after SIGKILL


def _read(data_dir: Path, sql: str) -> list[tuple[str, ...]]:
    """Rows of `sql`, read with plain sqlite3 while a backfill writes ([] before the schema exists)."""
    path = data_dir / "dwatch.sqlite3"
    if not path.exists():
        return []
    connection = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=5)
    try:
        return list(connection.execute(sql))
    except sqlite3.OperationalError:
        return []
    finally:
        connection.close()


def requested_pages(site: FixtureServer) -> list[str]:
    """Canonical URLs of the article pages requested so far, in order (127.0.0.1 and localhost alike)."""
    return [canonicalize_url(f"http://{r.headers['host']}{r.target}") for r in site.log if r.path in PAGES]


def test_a_killed_gdelt_backfill_asks_only_the_slices_not_done_and_fetches_nothing_twice(
    servers: tuple[FixtureServer, FixtureServer, FakeGdelt], tmp_path: Path
) -> None:
    api, site, fake = servers
    config = write_config(
        tmp_path / "config",
        [{"id": "gazette", "name": "The Test Gazette", "kind": "feed", "urls": [site.url("/feed.xml")]}],
        backfill={"gdelt_url": api.url(API_PATH), "gdelt_queries": [QUERY], "gdelt_delay": 0.2},
    )
    data = tmp_path / "data"
    # the quarter slice W2A2 hangs: the process is killed while it waits for it, once the pages
    # it had requested are all stored (nothing else in flight)
    fake.script = {W2A2: [Reply(200, {"Content-Type": "application/json"}, b"{}", delay=60)]}
    process = start_backfill_cli(config, data, *ARGS)
    deadline = time.monotonic() + 120
    while True:
        assert process.poll() is None, process.communicate()[1][-3000:]
        assert time.monotonic() < deadline, "the backfill did not reach the hanging slice in 120 s"
        stored = {row[0] for row in _read(data, "SELECT canonical_url FROM documents")}
        if (QUERY, *W2A2) in asked(api) and stored and set(requested_pages(site)) <= stored:
            break
        time.sleep(0.1)
    os.kill(process.pid, signal.SIGKILL)
    process.communicate(timeout=30)
    units = dict(_read(data, "SELECT unit, status FROM backfill_units"))
    not_done = [span for span in SLICES if units.get(f"gdelt:{QUERY}:{span[0]}:{span[1]}") != "done"]
    assert {W2, W2A, W2A2} <= set(not_done) and W1 not in not_done
    first_run = requested_pages(site)
    api.clear_log()
    site.clear_log()

    outcome = run_backfill_cli(config, data, *ARGS)

    assert outcome.returncode == 0, outcome.stderr[-3000:]
    assert outcome.stdout.splitlines()[-1] == (
        "backfill run 2 (job 1, resumed) 2015-01-01..2015-01-21 via gdelt: ok")
    assert sorted(asked(api)) == sorted((QUERY, *span) for span in not_done)
    pages = first_run + requested_pages(site)
    assert sorted(pages) == sorted({*pages}) and len(pages) == len(PAGES)    # each page once in all
    assert first_run
    queued = dict(_read(data, "SELECT d.canonical_url, d.source_id FROM candidates c "
                              "JOIN documents d ON d.id = c.document_id"))
    assert {url.replace("localhost", "127.0.0.1"): source for url, source in queued.items()} == {
        site.url(p): s for p, s in IN_RANGE_DEFECTORS.items()}
    assert dict(_read(data, "SELECT unit, status FROM backfill_units")) == {
        f"gdelt:{QUERY}:{a}:{b}": "done" for a, b in SLICES}


def test_plan_asks_the_api_and_counts_per_source_without_fetching_a_page(
    servers: tuple[FixtureServer, FixtureServer, FakeGdelt], tmp_path: Path
) -> None:
    api, site, _fake = servers
    config = write_config(
        tmp_path / "config",
        [{"id": "gazette", "name": "The Test Gazette", "kind": "feed", "urls": [site.url("/feed.xml")]}],
        backfill={"gdelt_url": api.url(API_PATH), "gdelt_queries": [QUERY], "gdelt_delay": 0},
    )

    outcome = run_backfill_cli(config, tmp_path / "data", *ARGS, "--plan")

    assert outcome.returncode == 0, outcome.stderr[-3000:]
    assert outcome.stdout.splitlines() == [
        "source   method  discovered  in range  out of range  already stored  to fetch",
        "-------  ------  ----------  --------  ------------  --------------  --------",
        "gazette  gdelt   9           9         0             0               9",
        "gdelt    gdelt   1           1         0             0               1",      # the localhost story
        "total            10          10        0             0               10",
        "plan (nothing fetched) 2015-01-01..2015-01-21 via gdelt: ok",
    ]
    assert sorted(asked(api)) == sorted((QUERY, *span) for span in SLICES)   # discovery runs, splits too
    assert site.log == []                                                    # no article is fetched
    assert not (tmp_path / "data" / "dwatch.sqlite3").exists() or _read(
        tmp_path / "data", "SELECT unit FROM backfill_units") == []           # nothing recorded
