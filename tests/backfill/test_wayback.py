"""The Wayback method against a local CDX server and a local replay server, through `dwatch backfill`.

The CDX server answers in the documented output=json format (wayback-cdx-server/README.md in
github.com/internetarchive/wayback): a header row, capture rows sorted by urlkey and time, and
with showResumeKey an empty row and the resumption key when a page is full. It applies the
query's prefix, from/to, filters, collapse=urlkey and limit itself, as the real one does, so the
test sees what the crawler asked for. Some answers are 429s with Retry-After (delta-seconds and
HTTP-date). The replay server, on another host name (localhost), serves /web/<ts>id_/<url>.
"""

from __future__ import annotations

import json
import re
import signal
import sqlite3
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from email.utils import formatdate
from pathlib import Path
from urllib.parse import quote_plus, urlsplit

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from store import make_engine, make_session_factory, queue
from store.models import BackfillUnitModel, Document
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

SINCE, UNTIL = "2014-01-01", "2015-12-31"
FIELDS = ["urlkey", "timestamp", "original", "mimetype", "statuscode", "digest", "length"]
SITE = "news.example.org"

STORIES = {
    "raqqa-clerk": [
        "For nine months Hassan worked as a clerk at an Islamic State court in Raqqa, typing the sentences "
        "handed down for smoking, for a missed prayer, for a careless word at a checkpoint.",
        "He says he joined the group in 2013 because it paid a salary when nothing else did. \"I told myself "
        "I was only writing,\" he said. \"But I saw the families waiting outside.\"",
        "In the spring he paid a smuggler two thousand dollars to take him across the border to Turkey. He "
        "defected with his wife and two children at night, walking for six hours through the fields.",
        "Now living in Gaziantep, the former member of the Islamic State says he wants others to know that "
        "the group lies about the life it offers.",
    ],
    "deir-ezzor-fighter": [
        "Abu Khaled fought for the Islamic State for almost a year before he deserted from his unit near "
        "Deir ez-Zor and escaped to the Turkish border.",
        "\"We were told we would fight the regime,\" the former fighter said. \"Instead our emir sent us "
        "against other rebels, against men from our own villages.\"",
        "He describes commanders who kept the fuel money for themselves and foreign fighters who received "
        "houses and cars while local recruits were sent to the front as cannon fodder.",
        "He hid for two weeks with relatives, then paid smugglers to take him north. He now lives in hiding "
        "in southern Turkey.",
    ],
    "returning-wife": [
        "Umm Yusuf travelled to Mosul in 2014 to join the Islamic State with her husband, a fighter from "
        "Tunisia. Two years later she escaped the city with her three children.",
        "\"After my husband was killed, they wanted me to remarry within weeks,\" she said. \"I realised the "
        "state they had promised was a prison with a flag on it.\"",
        "She says she became disillusioned long before she fled, when the group's religious police beat her "
        "neighbour in the street. She left the group at night, paying a driver to take her to the front "
        "line.",
        "Now held in a camp in northern Syria, the former member says she regrets joining and wants to go "
        "home to face trial.",
    ],
    "old-defector": [
        "Omar joined the Islamic State in Aleppo and served as a guard at one of its prisons before he "
        "defected and fled to Turkey.",
        "\"I saw them torture men who had done nothing,\" the former member said. \"I could not stay. I left "
        "the group and I will spend my life warning young men against it.\"",
        "He says many of the fighters he knew wanted to desert but were too afraid of the group's security "
        "service, which executed deserters in the town square.",
        "He paid smugglers to cross the border and now works in a bakery in Istanbul.",
    ],
}


@dataclass(frozen=True)
class Capture:
    timestamp: str
    original: str
    title: str = ""
    published: str | None = None          # the page's own date
    story: str | None = None              # a key of STORIES; None: a story the rules do not flag
    mimetype: str = "text/html"
    status: str = "200"

    @property
    def urlkey(self) -> str:
        parts = urlsplit(self.original)
        host = (parts.hostname or "").removeprefix("www.")
        path = parts.path + (f"?{parts.query}" if parts.query else "")
        return ",".join(reversed(host.split("."))) + ")" + path.lower()

    @property
    def replay_path(self) -> str:
        return f"/web/{self.timestamp}id_/{self.original}"

    def page(self) -> str:
        paragraphs = STORIES[self.story] if self.story else OTHER_STORY
        return article_html(self.title, self.published, paragraphs=paragraphs)


# every capture the index holds under news.example.org/; sorted by urlkey the window's captures are
# OLD, RAQQA | DEIR, WIFE | LAST_DAY: three CDX pages of 2
RAQQA = Capture("20140312081500", f"http://{SITE}:80/2014/03/raqqa-clerk.html",
                "I typed their verdicts, then I ran", "2014-03-10T08:00:00+00:00", "raqqa-clerk")
DEIR = Capture("20140601000000", f"http://{SITE}/2014/05/deir-ezzor-fighter.html",
               "A former fighter on why he deserted", "2014-05-30T10:00:00+00:00", "deir-ezzor-fighter")
OLD = Capture("20140702000000", f"http://{SITE}/2013/11/old-defector.html",
              "How he quit the Islamic State", "2013-11-02T10:00:00+00:00", "old-defector")
WIFE = Capture("20150107230000", f"https://{SITE}/2015/01/returning-wife.html",
               "Why I left the caliphate", "2015-01-05T09:00:00+00:00", "returning-wife")
LAST_DAY = Capture("20151231235900", f"http://{SITE}/2015/12/road-repairs.html",
                   "Road repairs", "2015-12-31T18:00:00+00:00")
IN_RANGE = [RAQQA, DEIR, OLD, WIFE, LAST_DAY]
NEVER_FETCHED = [
    Capture("20131231235959", f"http://{SITE}/2013/12/before.html", "Before", "2013-12-30", "old-defector"),
    Capture("20140401000000", RAQQA.original, "A later capture", "2014-03-10", "raqqa-clerk"),  # collapsed
    Capture("20150601000000", f"http://{SITE}/2015/06/photo.jpg", mimetype="image/jpeg"),
    Capture("20150801000000", f"http://{SITE}/2015/08/gone.html", status="404"),
    Capture("20160101000000", f"http://{SITE}/2016/01/after.html", "After", "2016-01-01", "old-defector"),
    Capture("20140505050505", "http://other.example.org/2014/05/elsewhere.html", "Elsewhere", "2014-05-05",
            "old-defector"),
]


def resume_key(capture: Capture) -> str:
    """The resumption key as the CDX server prints it: URL-encoded ``<urlkey> <timestamp>!``."""
    return quote_plus(f"{capture.urlkey} {capture.timestamp}!")


PAGE2, PAGE3 = resume_key(RAQQA), resume_key(WIFE)     # the keys of the last rows of pages 1 and 2


@dataclass
class CdxCall:
    wall: float                     # time.time() when the request arrived
    at: float                       # time.monotonic() (the request log's clock)
    query: dict[str, list[str]]
    status: int
    retry_at: float | None = None   # a 429's Retry-After HTTP-date, as a POSIX time

    @property
    def resume_key(self) -> str:
        """The resumeKey sent, as the server printed it ("" for the first page)."""
        sent = self.query.get("resumeKey", [""])[0]
        return quote_plus(sent) if sent else ""


@dataclass
class FakeCdx:
    """A CDX server over `captures`; `throttle`: resumeKey (as printed) -> 429s to give first.

    A 429's Retry-After is the given delta-seconds, or ``"date"``: an HTTP-date 3 s ahead.
    """

    captures: list[Capture]
    throttle: dict[str, list[str]] = field(default_factory=dict)
    hold: dict[str, threading.Event] = field(default_factory=dict)   # resumeKey -> answer once set
    calls: list[CdxCall] = field(default_factory=list)

    def __call__(self, request: ServedRequest) -> Reply:
        call = CdxCall(time.time(), time.monotonic(), request.query, 200)
        self.calls.append(call)
        key = call.resume_key
        if key in self.hold:
            self.hold[key].wait(timeout=60)
        pending = self.throttle.get(key)
        if pending:
            kind = pending.pop(0)
            call.status = 429
            if kind == "date":
                call.retry_at = float(int(time.time()) + 3)
                after = formatdate(call.retry_at, usegmt=True)
            else:
                after = kind
            return Reply(429, {"Retry-After": after, "Content-Type": "text/plain"}, b"Too Many Requests")
        return self.answer(request)

    def answer(self, request: ServedRequest) -> Reply:
        q = request.param
        asked = (q("output"), q("matchType"), q("collapse"), q("showResumeKey"))
        if asked != ("json", "prefix", "urlkey", "true"):
            return Reply(400, {"Content-Type": "text/plain"}, b"unexpected query " + request.target.encode())
        prefix = Capture("", "http://" + (q("url") or "")).urlkey
        since = (q("from") or "").ljust(14, "0")
        until = (q("to") or "").ljust(14, "9")
        rows = sorted(self.captures, key=lambda c: (c.urlkey, c.timestamp))
        rows = [c for c in rows if c.urlkey.startswith(prefix) and since <= c.timestamp <= until]
        for spec in request.query.get("filter", []):
            name, _, pattern = spec.partition(":")
            rows = [c for c in rows if re.fullmatch(pattern, {"statuscode": c.status,
                                                              "mimetype": c.mimetype}[name])]
        collapsed: list[Capture] = []
        for c in rows:
            if not collapsed or collapsed[-1].urlkey != c.urlkey:
                collapsed.append(c)
        key = q("resumeKey")
        if key:
            done = [resume_key(c) for c in collapsed].index(quote_plus(key)) + 1
            collapsed = collapsed[done:]
        limit = int(q("limit") or "1000")
        shown, rest = collapsed[:limit], collapsed[limit:]
        body: list[list[str]] = [FIELDS]
        body += [[c.urlkey, c.timestamp, c.original, c.mimetype, c.status, "DIGEST" + c.timestamp, "2048"]
                 for c in shown]
        if rest:
            body += [[], [resume_key(shown[-1])]]
        return Reply(200, {"Content-Type": "application/json"}, json.dumps(body).encode())


@dataclass
class Wayback:
    cdx: FakeCdx
    cdx_server: FixtureServer
    replay: FixtureServer

    @property
    def replay_base(self) -> str:
        return f"http://localhost:{self.replay.port}/web/"     # another host than the CDX server's

    def config(self, tmp_path: Path, **backfill: object) -> Path:
        return write_config(tmp_path / "config", [
            {"id": "ledger", "name": "Northern Ledger", "kind": "feed", "urls": [f"http://{SITE}/feed.xml"]}],
            backfill={"wayback_cdx_url": self.cdx_server.url("/cdx/search/cdx"),
                      "wayback_replay_url": self.replay_base, "wayback_page_size": 2,
                      "wayback_delay": 0.2, **backfill})

    def replayed(self) -> list[str]:
        return [p for p in self.replay.paths() if p.startswith("/web/")]


@pytest.fixture
def wayback() -> Iterator[Wayback]:
    cdx = FakeCdx(IN_RANGE + NEVER_FETCHED)
    with FixtureServer({"/cdx/search/cdx": cdx}) as cdx_server, FixtureServer() as replay:
        for capture in IN_RANGE + NEVER_FETCHED:
            replay.route(capture.replay_path, html_reply(capture.page()))
        yield Wayback(cdx, cdx_server, replay)


def session_for(tmp_path: Path) -> Iterator[Session]:
    engine = make_engine(f"sqlite:///{tmp_path / 'data' / 'dwatch.sqlite3'}")
    try:
        with make_session_factory(engine)() as session:
            yield session
    finally:
        engine.dispose()


def test_captures_in_the_window_are_fetched_queued_under_their_own_urls(
    wayback: Wayback, tmp_path: Path
) -> None:
    wayback.cdx.throttle = {PAGE2: ["2"], PAGE3: ["date"]}
    wayback.replay.delay = 0.4          # slow captures, so some are fetched while the CDX host waits

    outcome = run_backfill_cli(wayback.config(tmp_path), tmp_path / "data", "--since", SINCE,
                               "--until", UNTIL, "--via", "wayback")
    assert outcome.returncode == 0, outcome.stderr[-3000:]

    # the CDX query: the window, HTML captures with status 200, one per URL, 2 a page, by resumeKey
    calls = wayback.cdx.calls
    assert [(c.resume_key, c.status) for c in calls] == [
        ("", 200), (PAGE2, 429), (PAGE2, 200), (PAGE3, 429), (PAGE3, 200)]
    assert {k: v for k, v in calls[0].query.items() if k != "resumeKey"} == {
        "url": [f"{SITE}/"], "matchType": ["prefix"], "output": ["json"], "from": ["20140101"],
        "to": ["20151231235959"], "collapse": ["urlkey"], "filter": ["statuscode:200", "mimetype:text/html"],
        "showResumeKey": ["true"], "limit": ["2"]}

    # the 429s were waited out: Retry-After: 2 (seconds), then an HTTP-date 3 s ahead
    assert calls[2].at - calls[1].at >= 2.0
    assert calls[4].wall >= (calls[3].retry_at or 0)
    # ... while the replay host went on: captures of page 1 arrived during the first wait
    during = [r.target for r in wayback.replay.log if calls[1].at < r.at < calls[2].at]
    assert during, [(r.target, r.at - calls[1].at) for r in wayback.replay.log]

    # exactly the captures in the window were fetched, once each, wayback_delay apart
    assert sorted(wayback.replayed()) == sorted(c.replay_path for c in IN_RANGE)
    times = [r.at for r in wayback.replay.log if r.target.startswith("/web/")]
    assert all(b - a >= 0.15 for a, b in zip(times, times[1:], strict=False)), times

    assert outcome.stdout.splitlines()[:4] == [
        "source  method   discovered  in range  out of range  already stored  fetched  flagged  errors",
        "------  -------  ----------  --------  ------------  --------------  -------  -------  ------",
        "ledger  wayback  5           5         1             0               5        3        0",
        "total            5           5         1             0               5        3        0",
    ]

    for session in session_for(tmp_path):
        queued = queue.list_candidates(session, QueueQuery(limit=None))
        # the document is the article at its original URL; the capture is what was fetched
        assert sorted(c.canonical_url for c in queued) == sorted([
            f"http://{SITE}/2014/03/raqqa-clerk.html", f"http://{SITE}/2014/05/deir-ezzor-fighter.html",
            f"https://{SITE}/2015/01/returning-wife.html"])
        assert {(c.source_id, c.channel) for c in queued} == {("ledger", "backfill")}
        raqqa = next(c for c in queued if c.canonical_url.endswith("/raqqa-clerk.html"))
        capture_url = wayback.replay_base + f"{RAQQA.timestamp}id_/{RAQQA.original}"
        assert (raqqa.url, raqqa.title) == (capture_url, "I typed their verdicts, then I ran")
        detail = queue.get_candidate(session, raqqa.id)
        assert detail is not None
        provenance = {k: detail.provenance[k] for k in (
            "source_id", "channel", "method", "requested_url", "final_url", "canonical_url", "http_status")}
        assert provenance == {
            "source_id": "ledger", "channel": "backfill", "method": "wayback",
            "requested_url": capture_url, "final_url": capture_url,
            "canonical_url": f"http://{SITE}/2014/03/raqqa-clerk.html", "http_status": 200}
        assert detail.provenance["discovered_from"].startswith(wayback.cdx_server.url("/cdx/search/cdx?url="))
        assert detail.provenance["discovered_from"].endswith("&limit=2")     # found on the first page

        documents = {d.canonical_url: d for d in session.scalars(select(Document))}
        old = documents[f"http://{SITE}/2013/11/old-defector.html"]        # captured in 2014, written in 2013
        assert (old.outcome, old.reason, old.detail, old.flagged) == (
            "skipped", "out_of_range", "published 2013-11-02, outside 2014-01-01..2015-12-31", False)
        assert (old.channel, old.method, old.requested_url) == (
            "backfill", "wayback", wayback.replay_base + f"{OLD.timestamp}id_/{OLD.original}")
        road = documents[f"http://{SITE}/2015/12/road-repairs.html"]       # the last day is in the window
        assert (road.outcome, road.flagged, road.method) == ("skipped", False, "wayback")


def _stored(data_dir: Path) -> int:
    try:
        with sqlite3.connect(data_dir / "dwatch.sqlite3", timeout=5) as db:
            return int(db.execute("select count(*) from documents").fetchone()[0])
    except sqlite3.Error:
        return 0


def test_a_killed_backfill_resumes_without_asking_for_done_cdx_pages_again(
    wayback: Wayback, tmp_path: Path
) -> None:
    held = threading.Event()
    wayback.cdx.hold = {PAGE3: held}                    # the last CDX page hangs until the kill
    config, data = wayback.config(tmp_path), tmp_path / "data"
    args = ("--since", SINCE, "--until", UNTIL, "--via", "wayback")

    proc = start_backfill_cli(config, data, *args)
    try:
        deadline = time.monotonic() + 90
        # wait until pages 1 and 2 were read and their 4 captures stored (page 3 hangs)
        while time.monotonic() < deadline and not (len(wayback.cdx.calls) == 3 and _stored(data) == 4):
            time.sleep(0.2)
            assert proc.poll() is None, proc.communicate()[1][-3000:]
        assert (len(wayback.cdx.calls), _stored(data)) == (3, 4)
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
        held.set()
        proc.communicate()
    first_run = wayback.replayed()
    assert sorted(first_run) == sorted(c.replay_path for c in (RAQQA, DEIR, OLD, WIFE))

    wayback.cdx.calls.clear()
    outcome = run_backfill_cli(config, data, *args)
    assert outcome.returncode == 0, outcome.stderr[-3000:]
    assert "(job 1, resumed)" in outcome.stdout
    assert [c.resume_key for c in wayback.cdx.calls] == [PAGE3]   # pages 1 and 2 are not asked for again
    assert wayback.replayed()[len(first_run):] == [LAST_DAY.replay_path]   # nothing fetched twice
    for session in session_for(tmp_path):
        assert len(queue.list_candidates(session, QueueQuery(limit=None))) == 3
        units = dict(session.execute(
            select(BackfillUnitModel.unit, BackfillUnitModel.detail)).all())
        assert units == {      # each CDX page's unit leads to the next one
            f"wayback:ledger:{SITE}/:": PAGE2,
            f"wayback:ledger:{SITE}/:{PAGE2}": PAGE3,
            f"wayback:ledger:{SITE}/:{PAGE3}": None,
        }


def test_429s_are_retried_a_bounded_number_of_times(wayback: Wayback, tmp_path: Path) -> None:
    wayback.cdx.throttle = {"": ["1"] * 10}             # the first page is refused every time

    outcome = run_backfill_cli(wayback.config(tmp_path), tmp_path / "data", "--since", SINCE,
                               "--until", UNTIL, "--via", "wayback")

    calls = wayback.cdx.calls
    assert [c.status for c in calls] == [429] * 4         # the request and 3 retries, then it gives up
    assert all(b.at - a.at >= 1.0 for a, b in zip(calls, calls[1:], strict=False))
    assert wayback.replayed() == []
    assert outcome.returncode == 1, outcome.stdout            # nothing could be crawled
    assert "ledger  wayback  0           0         0             0               0        0        1" \
        in outcome.stdout
    for session in session_for(tmp_path):
        done = session.scalars(select(BackfillUnitModel.unit).where(
            BackfillUnitModel.status == "done")).all()
        assert done == []                                      # the page is asked for again next time
