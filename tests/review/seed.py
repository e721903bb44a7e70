"""A review store seeded the way a crawl fills it, for the web UI's tests (in-process and browser).

    seeded = seed_store(tmp_path / "data")
    seeded.id("kobani")            # the candidate id of a page, by name
    seeded.pages["hostile"].url     # what was fetched, when, from where

Every page is a team-written HTML file under tests/review/site/ (dates are filled in relative
to today, so "today's queue" always has rows). Each one is fetched "as Scrapy would": its
response is written to the WARC archive, analysed with ``extract.analyse_page`` and the real
rules (config/rules.yaml), turned into a ``PageRecord`` by the crawler's own
``crawler.recording`` functions and stored with ``store.queue.record_page``, in the order of
``PAGES`` (so the verbatim copy and the near-copy find the original already queued).

A page fetched ``fetched_days_ago`` days ago was queued then too: the crawl of that day would
have queued it, so the candidate's ``queued_at`` is set to its fetch time.

Run ``python -m tests.review.seed DATA_DIR`` to seed a directory for a server started by hand
(prints the candidate ids as JSON).
"""

from __future__ import annotations

import json
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path

from config import DEFAULT_CONFIG_DIR, Settings
from crawler.items import Discovery, FetchedPage
from crawler.recording import page_record, provenance_of
from extract import PageAnalysis, analyse_page, load_rules
from store import ArchiveRef, SourceRunStats, WarcArchive, open_session, queue, upgrade_database
from store.models import Candidate
from store.records import Channel

__all__ = ["HOSTILE_MARKERS", "PAGES", "SITE", "SeedPage", "Seeded", "SeededPage", "seed_store"]

SITE = Path(__file__).resolve().parent / "site"
CONTENT_TYPE = "text/html; charset=utf-8"

# What the hostile article tries to run or load: none of it may execute or appear unescaped.
# Every script it carries sets window.dwatchXss (a browser test checks it stays undefined).
HOSTILE_MARKERS = (
    "<script>window.dwatchXss=1</script>",     # in its title (extracted text)
    "<script>window.dwatchXss=7</script>",     # in its body text
    "<img src=x onerror=window.dwatchXss=6>",  # in its body text
    "javascript:window.dwatchXss=10",          # a javascript: URL written in its body text
)


@dataclass(frozen=True)
class SeedPage:
    """One page of the seeded crawl."""

    name: str
    file: str                         # under tests/review/site/
    url: str
    source_id: str
    channel: Channel
    discovered_from: str
    published_days_ago: int | None    # None: the page carries no date
    fetched_days_ago: int = 0
    entry_id: str | None = None
    entry_title: str | None = None
    flagged: bool = True              # what the real rules must say (checked while seeding)
    decisions: tuple[tuple[str, str, str], ...] = ()   # (decision, by, note), oldest first


PAGES: tuple[SeedPage, ...] = (
    SeedPage("kobani", "en-kobani-cook.html", "https://ledger.example/world/kobani-cook",
             "northern-ledger", "feed", "https://ledger.example/feeds/world.rss", 18,
             entry_id="ledger-4711", entry_title="I cooked for the emirs, then I ran"),
    SeedPage("kobani_copy", "en-kobani-cook-copy.html",
             "https://syndicate.example/story/88213", "gulf-syndicate", "feed",
             "https://syndicate.example/rss.xml", 18, entry_id="gsn-88213",
             entry_title="I cooked for the emirs, then I ran"),
    SeedPage("kobani_near", "en-kobani-cook-near.html",
             "https://levant-observer.example/2024/karim-kitchen", "levant-observer", "listing",
             "https://levant-observer.example/middle-east/", 16),
    SeedPage("deserter", "en-deserter-rebels.html",
             "https://wire.example/news/deserter-other-rebels", "meridian-wire", "sitemap",
             "https://wire.example/sitemap-news.xml", 30, fetched_days_ago=3,
             entry_title="A deserter's account: We fought other rebels, never Assad",
             decisions=(("accept", "amal", "Clear first-person account; cite in chapter 3."),)),
    SeedPage("mother", "en-returnee-mother.html", "https://harbour.example/features/walked-out",
             "harbour-review", "listing", "https://harbour.example/features/", None,
             fetched_days_ago=9),
    SeedPage("french", "fr-revenant-lyon.html",
             "https://courrier-rhone.example/societe/ancien-jihadiste-fuite", "courrier-rhone",
             "feed", "https://courrier-rhone.example/rss/societe.xml", 2,
             entry_id="urn:courrier:20931", entry_title="Un ancien jihadiste raconte sa fuite"),
    SeedPage("arabic", "ar-mosul-defector.html", "https://rafidain.example/news/defector-mosul",
             "rafidain", "feed", "https://rafidain.example/atom.xml", 5,
             entry_id="tag:rafidain.example,2024:1207"),
    SeedPage("indonesian", "id-mantan-anggota.html",
             "https://warta.example/nasional/mantan-anggota-isis-malang", "warta-nusantara",
             "sitemap", "https://warta.example/sitemap.xml", 12,
             decisions=(("reject", "ben", "Looks like a returnee programme piece."),
                        ("accept", "amal", "It is his own account: accept."))),
    SeedPage("hostile", "en-hostile.html", "https://clickbait.example/ex-fighter-left",
             "clickbait-daily", "listing", "https://clickbait.example/latest/", 1),
    SeedPage("neg_north_korea", "neg-north-korea.html",
             "https://wire.example/news/north-korean-noodles", "meridian-wire", "sitemap",
             "https://wire.example/sitemap-news.xml", 4, flagged=False),
    SeedPage("neg_yazidi", "neg-yazidi-survivor.html",
             "https://harbour.example/features/yazidi-survivor", "harbour-review", "listing",
             "https://harbour.example/features/", 6, flagged=False),
)


@dataclass(frozen=True)
class SeededPage:
    """What the seeded crawl fetched and stored for one page."""

    name: str
    url: str
    source_id: str
    channel: Channel
    discovered_from: str
    entry_id: str | None
    entry_title: str | None
    fetched_at: datetime
    body: bytes                       # the response body, exactly as archived
    archive: ArchiveRef
    document_id: int
    candidate_id: int | None          # None for the negatives and the verbatim copy
    analysis: PageAnalysis

    @property
    def title(self) -> str | None:
        return self.analysis.article.title if self.analysis.article else None

    @property
    def published(self) -> datetime | None:
        return self.analysis.article.published if self.analysis.article else None

    @property
    def lang(self) -> str | None:
        return self.analysis.lang.lang if self.analysis.lang else None

    @property
    def narratives(self) -> tuple[str, ...]:
        return self.analysis.verdict.narratives if self.analysis.verdict else ()


@dataclass(frozen=True)
class Seeded:
    settings: Settings
    data_dir: Path
    today: date                       # the UTC day the dates are relative to
    pages: Mapping[str, SeededPage]
    run_id: int

    def id(self, name: str) -> int:
        """The candidate id of page ``name`` (KeyError for pages that are not candidates)."""
        candidate_id = self.pages[name].candidate_id
        if candidate_id is None:
            raise KeyError(f"seeded page {name!r} is not a queued candidate")
        return candidate_id

    @property
    def candidate_names(self) -> tuple[str, ...]:
        return tuple(name for name, page in self.pages.items() if page.candidate_id is not None)


def settings_for(data_dir: Path, database_url: str | None = None) -> Settings:
    """Settings of a store in ``data_dir``: its SQLite file, or the database at ``database_url``."""
    return Settings(
        config_dir=DEFAULT_CONFIG_DIR,
        data_dir=data_dir,
        database_url=database_url or f"sqlite:///{data_dir / 'dwatch.sqlite3'}",
        archive_dir=data_dir / "archive",
        rules_path=DEFAULT_CONFIG_DIR / "rules.yaml",
    )


def _body(page: SeedPage, today: date) -> bytes:
    html = (SITE / page.file).read_text(encoding="utf-8")
    if page.published_days_ago is not None:
        day = today - timedelta(days=page.published_days_ago)
        html = html.replace("@PUBLISHED@", f"{day.isoformat()}T08:00:00+00:00")
        html = html.replace("@PUBLISHED_DAY@", day.strftime("%d %B %Y"))
    return html.encode("utf-8")


def _fetched_at(page: SeedPage, today: date, now: datetime, index: int) -> datetime:
    """Today: a few seconds apart before now (never before midnight); earlier days: mid-morning."""
    if page.fetched_days_ago == 0:
        start = datetime.combine(today, time.min, tzinfo=UTC)
        return max(start, now - timedelta(seconds=60 * (len(PAGES) - index)))
    day = today - timedelta(days=page.fetched_days_ago)
    return datetime.combine(day, time(9, index), tzinfo=UTC)


def seed_store(data_dir: Path, *, today: date | None = None, database_url: str | None = None) -> Seeded:
    """Crawl the team-written pages into a new store under ``data_dir`` (see the module doc).

    The database is the SQLite file in ``data_dir``, or the empty one at ``database_url``.
    """
    now = datetime.now(UTC)
    today = today or now.date()
    data_dir.mkdir(parents=True, exist_ok=True)
    settings = settings_for(data_dir, database_url)
    upgrade_database(settings.database_url)
    ruleset = load_rules(settings.rules_path)
    seeded: dict[str, SeededPage] = {}
    archive = WarcArchive(settings.archive_dir, fsync=False)
    with open_session(settings.database_url) as session, archive:
        run_id = queue.start_run(session, kind="crawl", sources=sorted({p.source_id for p in PAGES}))
        stats: dict[str, SourceRunStats] = {}
        for index, page in enumerate(PAGES):
            fetched = FetchedPage(
                discovery=Discovery(page.source_id, page.channel, page.discovered_from,
                                    page.entry_id, page.entry_title),
                requested_url=page.url,
                final_url=page.url,
                status=200,
                headers=(("Content-Type", CONTENT_TYPE), ("Server", "seed/1.0")),
                body=_body(page, today),
                fetched_at=_fetched_at(page, today, now, index),
            )
            fetched.archive = archive.write(fetched.fetch_record())
            fetched.analysis = analyse_page(fetched.body, page.url, CONTENT_TYPE, ruleset)
            record = page_record(
                provenance_of(fetched, rules_version=ruleset.version, run_id=run_id),
                fetched.analysis,
            )
            if record.flagged != page.flagged:
                raise AssertionError(
                    f"seed page {page.file}: the rules ({ruleset.version}) say flagged="
                    f"{record.flagged}, the seed expects {page.flagged}; fix the page or PAGES"
                )
            outcome = queue.record_page(session, record)
            if outcome.candidate_id is not None:
                candidate = session.get_one(Candidate, outcome.candidate_id)
                candidate.queued_at = fetched.fetched_at
                session.commit()
                for decision, by, note in page.decisions:
                    queue.record_decision(session, outcome.candidate_id, decision, note=note, by=by)
            counters = stats.setdefault(page.source_id, SourceRunStats())
            counters.discovered += 1
            counters.fetched += 1
            counters.extracted += record.outcome == "extracted"
            counters.flagged += record.flagged
            seeded[page.name] = SeededPage(
                name=page.name, url=page.url, source_id=page.source_id, channel=page.channel,
                discovered_from=page.discovered_from, entry_id=page.entry_id,
                entry_title=page.entry_title, fetched_at=fetched.fetched_at, body=fetched.body,
                archive=fetched.archive, document_id=outcome.document_id,
                candidate_id=outcome.candidate_id, analysis=fetched.analysis,
            )
        queue.finish_run(session, run_id, per_source=stats, status="ok")
    return Seeded(settings=settings, data_dir=data_dir, today=today, pages=seeded, run_id=run_id)


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print("usage: python -m tests.review.seed DATA_DIR", file=sys.stderr)
        return 2
    seeded = seed_store(Path(argv[0]))
    ids = {name: page.candidate_id for name, page in seeded.pages.items()}
    print(json.dumps({"data_dir": str(seeded.data_dir), "candidates": ids}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
