"""A synthetic store of N articles for bench/queue_latency.py, built fast and reused.

    spec = StoreSpec(rows=1_000_000)
    built = ensure_store("sqlite:////tmp/dwatch-bench/queue-1000000.sqlite3", spec)

The schema is the real one (``store.upgrade_database``). The rows come from a seeded random
generator, so SQLite and PostgreSQL get the same store, and are written in bulk (SQLite:
``executemany`` in one transaction per batch; PostgreSQL: ``COPY``), never through
``record_page``: a million pages through the real ingest would take hours, and the benchmark
times reading, not writing.

What a store holds (shares of ``rows`` documents): 3 % failed fetches, 9 % skipped pages,
88 % extracted; ``flagged`` of all documents are flagged, of which 4 % are verbatim copies of
an earlier candidate (linked, not queued) and the rest candidates, 8 % of them near-copies that
join an earlier candidate's story. 60 sources in 10 languages (uneven sizes), channels
feed/sitemap/listing plus 8 % backfill; publication dates mostly the day before fetching, 10 %
undated, 5 % years older (backfills). ``days`` days of crawling end at the midnight (UTC) before it is built;
candidates of the last days are mostly ``new``, older ones mostly decided (with decisions).
minhash_bands stays empty: no queue query reads it.

A ``crawl_runs`` row of kind ``bench-store`` records the spec; ``ensure_store`` reuses a
store whose spec matches and refuses to touch a database holding anything else.
"""

from __future__ import annotations

import json
import logging
import random
import sqlite3
import time
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, inspect, select, text
from sqlalchemy.engine import make_url

from store import make_engine, upgrade_database
from store.models import Base, CrawlRun

__all__ = ["MARKER_KIND", "BuiltStore", "StoreError", "StoreSpec", "ensure_store"]

logger = logging.getLogger(__name__)

MARKER_KIND = "bench-store"
FORMAT = 1            # bump when the generated rows change, so old stores are rebuilt
BATCH = 10_000        # documents per batch

LANGS = (("en", 24), ("ar", 15), ("fr", 6), ("de", 3), ("tr", 3), ("ru", 3), ("id", 2),
         ("es", 2), ("fa", 1), ("ur", 1))
KINDS = ("feed", "sitemap", "listing")
METHODS = ("sitemap", "archive", "wayback", "ccnews", "gdelt")
NARRATIVES = (("disillusionment", 30), ("coercion", 15), ("family", 15), ("repentance", 10),
              ("escape", 12), ("return", 8), ("trial", 6), ("recruitment", 4))
TERMS = ("defected", "deserted", "fled the Islamic State", "former fighter", "left ISIS",
         "escaped from Raqqa", "returnee", "renounced")
OLD_STATUSES = (("new", 8), ("accepted", 14), ("rejected", 68), ("duplicate", 4),
                ("needs_translation", 4), ("unflagged", 2))
RECENT_STATUSES = (("new", 90), ("accepted", 3), ("rejected", 5), ("needs_translation", 2))
RESEARCHERS = ("amira", "jonas", "lea", "omar", "sofia")
WORDS = ("the", "of", "and", "to", "in", "a", "he", "said", "that", "was", "group", "fighters",
         "city", "after", "years", "former", "Islamic", "State", "left", "family", "camp",
         "border", "court", "interview", "returned", "told", "police", "village", "months",
         "security", "officials", "war", "Syria", "Iraq", "recruited", "escaped", "prison",
         "brother", "mother", "journalists", "report", "authorities", "defector", "life")


class StoreError(Exception):
    """The database given cannot hold a benchmark store (it holds other data, or is unreachable)."""


@dataclass(frozen=True)
class StoreSpec:
    rows: int = 1_000_000       # documents
    flagged: float = 0.25       # share of documents flagged
    days: int = 1095            # days of crawling the documents spread over
    seed: int = 7

    def matches(self, recorded: Any) -> bool:
        return isinstance(recorded, dict) and recorded == {**asdict(self), "format": FORMAT}


@dataclass(frozen=True)
class BuiltStore:
    url: str
    spec: StoreSpec
    documents: int
    candidates: int
    last_day: date              # the newest queued day: the benchmark's "today"
    built_seconds: float | None = None   # None: an existing store was reused
    counts: dict[str, int] = field(default_factory=dict)


def ensure_store(url: str, spec: StoreSpec, *, rebuild: bool = False, reset: bool = False) -> BuiltStore:
    """The store at ``url`` built from ``spec`` (reused when an earlier build matches).

    ``rebuild`` builds again even when it matches; ``reset`` allows dropping the tables of a
    database that holds something else (a throwaway test database).
    """
    engine = make_engine(url)
    try:
        with engine.connect() as connection:
            state = _state(connection, spec)
        if state == "match" and not rebuild:
            with engine.connect() as connection:
                return _describe(connection, url, spec, None)
        if state == "foreign" and not reset:
            raise StoreError(
                f"{make_url(url).render_as_string()} holds data that is not a benchmark store; "
                "point the benchmark at a throwaway database (it drops its tables) or pass --reset"
            )
        started = time.perf_counter()
        _drop(url, engine)
        upgrade_database(url)
        _load(url, spec)
        if engine.dialect.name == "postgresql":
            with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
                connection.exec_driver_sql("VACUUM ANALYZE")   # what autovacuum would do
        with engine.connect() as connection:
            return _describe(connection, url, spec, time.perf_counter() - started)
    finally:
        engine.dispose()


def _state(connection: Connection, spec: StoreSpec) -> str:
    tables = set(inspect(connection).get_table_names())
    if not tables - {"alembic_version"}:
        return "empty"
    if "crawl_runs" not in tables:
        return "foreign"
    markers = connection.execute(select(CrawlRun.sources).where(CrawlRun.kind == MARKER_KIND)).all()
    if not markers:
        return "foreign"
    recorded = markers[0][0][0] if markers[0][0] else None
    return "match" if spec.matches(recorded) else "other-bench"


def _drop(url: str, engine: Engine) -> None:
    if engine.dialect.name == "sqlite":
        engine.dispose()
        path = Path(str(make_url(url).database))
        for suffix in ("", "-wal", "-shm"):
            path.with_name(path.name + suffix).unlink(missing_ok=True)
        return
    with engine.begin() as connection:
        Base.metadata.drop_all(connection)
        connection.exec_driver_sql("DROP TABLE IF EXISTS alembic_version")


def _describe(connection: Connection, url: str, spec: StoreSpec, seconds: float | None) -> BuiltStore:
    def count(table: str) -> int:
        return int(connection.execute(text(f"SELECT count(*) FROM {table}")).scalar_one())

    counts = {t: count(t) for t in ("documents", "candidates", "stories", "candidate_narratives",
                                     "decisions", "crawl_runs")}
    last = connection.execute(text("SELECT max(queued_at) FROM candidates")).scalar_one()
    if isinstance(last, str):
        last = datetime.fromisoformat(last)
    last_day = last.date() if last is not None else datetime.now(UTC).date()
    return BuiltStore(url, spec, counts["documents"], counts["candidates"], last_day, seconds, counts)


# ---------------------------------------------------------------- generating rows


@dataclass
class _Tables:
    """One batch of rows per table, in the tables' column order (see COLUMNS)."""

    stories: list[tuple[Any, ...]] = field(default_factory=list)
    documents: list[tuple[Any, ...]] = field(default_factory=list)
    candidates: list[tuple[Any, ...]] = field(default_factory=list)
    candidate_narratives: list[tuple[Any, ...]] = field(default_factory=list)
    decisions: list[tuple[Any, ...]] = field(default_factory=list)


COLUMNS: dict[str, tuple[str, ...]] = {
    "stories": ("id", "first_document_id", "created_at"),
    "documents": (
        "id", "canonical_url", "requested_url", "final_url", "http_status", "outcome", "reason",
        "detail", "title", "author", "published", "sitename", "lang", "text", "text_sha256",
        "minhash", "flagged", "score", "verdict", "narratives", "rules_version", "extractor",
        "extractor_version", "duplicate_of_document_id", "story_id", "source_id", "channel",
        "method", "discovered_from", "entry_id", "entry_title", "entry_published", "fetched_at",
        "body_sha256", "archive_path", "archive_offset", "archive_length", "archive_record_id",
        "run_id", "created_at", "updated_at"),
    "candidates": ("id", "document_id", "text_sha256", "status", "score", "lang", "title",
                   "source_id", "channel", "published", "queued_at", "story_id"),
    "candidate_narratives": ("candidate_id", "narrative"),
    "decisions": ("id", "candidate_id", "decision", "status", "note", "decided_by", "decided_at"),
}
DECISION_OF = {"accepted": "accept", "rejected": "reject", "duplicate": "duplicate",
               "needs_translation": "translate"}


@dataclass(frozen=True)
class _Source:
    id: str
    lang: str
    kind: str
    host: str


def _weighted(rng: random.Random, pairs: Sequence[tuple[str, int]]) -> str:
    return rng.choices([p[0] for p in pairs], weights=[p[1] for p in pairs])[0]


class _Generator:
    """Yields the rows of ``spec`` in batches; ids and times grow together, as in a real crawl."""

    def __init__(self, spec: StoreSpec, end: datetime) -> None:
        self.spec = spec
        self.rng = random.Random(spec.seed)
        self.end = end
        self.start = end - timedelta(days=spec.days)
        langs = [lang for lang, n in LANGS for _ in range(n)]
        self.sources = [
            _Source(f"src-{k:02d}", langs[k], KINDS[k % 3], f"www.src-{k:02d}.example")
            for k in range(len(langs))
        ]
        self.source_weights = [1 / (k + 1) ** 0.8 for k in range(len(self.sources))]
        self.rng.shuffle(self.source_weights)
        self.texts = [self._text(self.rng.randint(300, 2200)) for _ in range(200)]
        self.minhashes = [json.dumps([self.rng.getrandbits(32) for _ in range(64)]) for _ in range(50)]
        self.p_flag = min(1.0, spec.flagged / 0.88)
        self.recent: list[tuple[int, int, str]] = []    # (document id, story id, text sha) of candidates
        self.candidate_id = self.story_id = self.decision_id = 0

    def _text(self, length: int) -> str:
        words: list[str] = []
        while sum(len(w) + 1 for w in words) < length:
            words.append(self.rng.choice(WORDS))
        return " ".join(words).capitalize() + "."

    def batches(self) -> Iterator[_Tables]:
        tables = _Tables()
        for doc_id in range(1, self.spec.rows + 1):
            self._document(doc_id, tables)
            if doc_id % BATCH == 0:
                yield tables
                tables = _Tables()
        if tables.documents:
            yield tables

    def _document(self, doc_id: int, out: _Tables) -> None:
        rng, spec = self.rng, self.spec
        fetched = self.start + timedelta(seconds=(doc_id - rng.random()) * spec.days * 86400 / spec.rows)
        source = rng.choices(self.sources, weights=self.source_weights)[0]
        channel, method = source.kind, None
        if rng.random() < 0.08:
            channel, method = "backfill", rng.choice(METHODS)
        roll = rng.random()
        published: datetime | None = fetched - timedelta(minutes=rng.randint(5, 2880))
        if roll < 0.10:
            published = None
        elif roll < 0.15:
            published = fetched - timedelta(days=rng.randint(60, 2000))
        url = f"https://{source.host}/{fetched:%Y/%m/%d}/story-{doc_id}"
        day = (fetched - self.start).days + 1
        lang = source.lang if rng.random() < 0.95 else "en"
        status, reason, outcome = 200, None, "extracted"
        roll = rng.random()
        if roll < 0.03:
            outcome, reason = "failed", "http_error"
            status = rng.choice((404, 403, 500))
        elif roll < 0.12:
            outcome, reason = "skipped", rng.choice(("too_short", "not_html", "wrong_language"))
        extracted = outcome == "extracted"
        flagged = extracted and rng.random() < self.p_flag
        text_sha = f"{rng.getrandbits(256):064x}" if extracted else None
        score = round(rng.uniform(0.5, 1.0) if flagged else rng.uniform(0.0, 0.45), 3) if extracted else None
        narratives = self._narratives() if flagged else []
        duplicate_of = story = None
        queue = False
        if flagged and self.recent and rng.random() < 0.04:
            duplicate_of, _, text_sha = rng.choice(self.recent[-2000:])
        elif flagged:
            queue = True
            if self.recent and rng.random() < 0.08:
                story = rng.choice(self.recent[-500:])[1]
            else:
                self.story_id += 1
                story = self.story_id
                out.stories.append((story, None, fetched))
        title = f"{rng.choice(WORDS).capitalize()} {rng.choice(WORDS)} story {doc_id}" if extracted else None
        out.documents.append((
            doc_id, url, url, url, status, outcome, reason, None, title,
            rng.choice(("", "Staff", "A. Writer", "Reuters")) or None if extracted else None,
            published if extracted else None, source.id.upper() if extracted else None,
            lang if extracted else None,
            rng.choice(self.texts) if extracted else None, text_sha,
            rng.choice(self.minhashes) if extracted else None, flagged, score,
            self._verdict(score, lang, narratives) if extracted else None,
            json.dumps(narratives) if narratives else None,
            "r15" if extracted else None, "trafilatura" if extracted else None,
            "2.3.1" if extracted else None, duplicate_of, story, source.id, channel, method,
            f"https://{source.host}/feed.xml", f"{source.host}/?p={doc_id}", title, published,
            fetched, f"{rng.getrandbits(256):064x}", f"dwatch-{fetched:%Y%m%d}-{day}.warc.gz",
            rng.randint(0, 500_000_000), rng.randint(2_000, 200_000),
            f"<urn:uuid:{rng.getrandbits(128):032x}>", day, fetched, fetched,
        ))
        if queue:
            assert story is not None and text_sha is not None
            self._candidate(doc_id, text_sha, score, lang, title, source, channel, published,
                            fetched + timedelta(seconds=rng.randint(1, 60)), story, narratives, out)

    def _candidate(self, doc_id: int, text_sha: str, score: float | None, lang: str,
                   title: str | None, source: _Source, channel: str, published: datetime | None,
                   queued: datetime, story: int, narratives: list[str], out: _Tables) -> None:
        rng = self.rng
        self.candidate_id += 1
        cid = self.candidate_id
        age = (self.end - queued).days
        status = _weighted(rng, RECENT_STATUSES if age < 3 else OLD_STATUSES)
        out.candidates.append((cid, doc_id, text_sha, status, score, lang, title, source.id,
                               channel, published, queued, story))
        out.candidate_narratives.extend((cid, n) for n in narratives)
        self.recent.append((doc_id, story, text_sha))
        if len(self.recent) > 4000:
            del self.recent[:2000]
        if status in DECISION_OF:
            decided = min(queued + timedelta(hours=rng.randint(1, 120)), self.end)
            if rng.random() < 0.1:
                self.decision_id += 1
                out.decisions.append((self.decision_id, cid, "translate", "needs_translation",
                                      None, rng.choice(RESEARCHERS), decided - timedelta(minutes=30)))
            self.decision_id += 1
            note = "checked against the original" if rng.random() < 0.2 else None
            out.decisions.append((self.decision_id, cid, DECISION_OF[status], status, note,
                                  rng.choice(RESEARCHERS), decided))

    def _narratives(self) -> list[str]:
        k = _weighted(self.rng, (("0", 10), ("1", 50), ("2", 30), ("3", 10)))
        tags = {_weighted(self.rng, NARRATIVES) for _ in range(int(k))}
        return sorted(tags)

    def _verdict(self, score: float | None, lang: str, narratives: list[str]) -> str:
        flagged = bool(narratives) or (score or 0) >= 0.5
        matches = [
            {"term": term, "rule": "defection", "start": start, "end": start + len(term), "text": term}
            for term, start in ((self.rng.choice(TERMS), self.rng.randint(0, 900)) for _ in range(3))
        ] if flagged else []
        return json.dumps({
            "flagged": flagged, "score": score, "lang": lang, "rules_version": "r15",
            "matches": matches, "contributions": [], "negatives": [], "narratives": narratives,
            "explanation": "defection term near an IS reference" if flagged else "",
        })


# ---------------------------------------------------------------- writing rows


def _load(url: str, spec: StoreSpec) -> None:
    # the crawl ends at midnight (UTC) before the build: the last day is a whole day
    end = datetime.combine(datetime.now(UTC).date(), datetime.min.time(), tzinfo=UTC)
    generator = _Generator(spec, end)
    marker = {**asdict(spec), "format": FORMAT}
    runs = [(day, "crawl", generator.start + timedelta(days=day - 1, hours=6),
             generator.start + timedelta(days=day - 1, hours=7), "ok", "[]")
            for day in range(1, spec.days + 2)]
    runs.append((spec.days + 2, MARKER_KIND, end, end, "done", json.dumps([marker])))
    writer = _SqliteWriter(url) if make_url(url).get_backend_name() == "sqlite" else _PostgresWriter(url)
    try:
        writer.write("crawl_runs", ("id", "kind", "started_at", "finished_at", "status", "sources"), runs)
        done = 0
        for tables in generator.batches():
            for name, columns in COLUMNS.items():
                writer.write(name, columns, getattr(tables, name))
            writer.commit()
            done += len(tables.documents)
            if done % 100_000 == 0:
                logger.info("%d of %d documents written", done, spec.rows)
        # a story's first document: its earliest member (the one that opened it)
        writer.execute("UPDATE stories SET first_document_id = (SELECT min(c.document_id) "
                       "FROM candidates c WHERE c.story_id = stories.id)")
        writer.finish()
    finally:
        writer.close()


class _SqliteWriter:
    def __init__(self, url: str) -> None:
        self.connection = sqlite3.connect(str(make_url(url).database))
        for pragma in ("synchronous = OFF", "cache_size = -512000", "foreign_keys = ON"):
            self.connection.execute(f"PRAGMA {pragma}")

    @staticmethod
    def _value(value: Any) -> Any:
        if isinstance(value, datetime):   # as SQLAlchemy stores a UtcDateTime on SQLite
            return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")
        return value

    def write(self, table: str, columns: Sequence[str], rows: list[tuple[Any, ...]]) -> None:
        marks = ", ".join("?" for _ in columns)
        self.connection.executemany(
            f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({marks})",
            ([self._value(v) for v in row] for row in rows),
        )

    def execute(self, sql: str) -> None:
        self.connection.execute(sql)

    def commit(self) -> None:
        self.connection.commit()

    def finish(self) -> None:
        self.connection.commit()

    def close(self) -> None:
        self.connection.close()


class _PostgresWriter:
    def __init__(self, url: str) -> None:
        self.engine = make_engine(url)
        self.connection = self.engine.raw_connection()

    def write(self, table: str, columns: Sequence[str], rows: list[tuple[Any, ...]]) -> None:
        cursor = self.connection.cursor()
        try:
            with cursor.copy(f"COPY {table} ({', '.join(columns)}) FROM STDIN") as copy:
                for row in rows:
                    copy.write_row(row)
        finally:
            cursor.close()

    def execute(self, sql: str) -> None:
        cursor = self.connection.cursor()
        try:
            cursor.execute(sql)
        finally:
            cursor.close()

    def commit(self) -> None:
        self.connection.commit()

    def finish(self) -> None:
        for table in ("crawl_runs", "stories", "documents", "candidates", "decisions"):
            self.execute(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                         f"(SELECT coalesce(max(id), 1) FROM {table}))")
        self.connection.commit()

    def close(self) -> None:
        self.connection.close()
        self.engine.dispose()

