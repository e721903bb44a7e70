"""Time the queue's queries (what the web UI and the CLI run) on a store of N articles.

    python bench/queue_latency.py [--rows 1000000] [--postgres URL] [--no-sqlite]
                                  [--repeat 15] [--compare-at 0004] [--plans]

Builds (once; later runs reuse it) a synthetic store of ``--rows`` documents on SQLite (a file
under --data-dir, /tmp by default) and, with ``--postgres``, in that PostgreSQL database (a
throwaway one: its tables are dropped; see bench/queue_store.py), then times the store.queue
functions the queue page, the candidate page, the overview, the exports and `dwatch queue`
call: median and 95th percentile of ``--repeat`` runs after one warm-up run, one session per
call as the web app uses. "Today" is the newest day of the store. The index column sums up the
database's EXPLAIN of the listing: how the candidates table is read and whether rows are sorted.
``--compare-at REV`` first times the store migrated down to REV (fewer indexes), then at head.
"""

from __future__ import annotations

import argparse
import math
import os
import platform
import random
import sqlite3
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import date, timedelta
from functools import partial
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from sqlalchemy import Engine, event, text  # noqa: E402
from sqlalchemy.engine import make_url  # noqa: E402
from sqlalchemy.orm import Session, sessionmaker  # noqa: E402

from bench.queue_plans import explain  # noqa: E402
from bench.queue_store import BuiltStore, StoreError, StoreSpec, ensure_store  # noqa: E402
from bench.tables import format_table  # noqa: E402
from store import (  # noqa: E402
    current_revision,
    downgrade_database,
    head_revision,
    make_engine,
    make_session_factory,
    queue,
    upgrade_database,
)
from store.records import QueueQuery  # noqa: E402

PAGE = 100   # the web UI's page size


@dataclass(frozen=True)
class Timing:
    median_ms: float
    p95_ms: float
    n: int


@dataclass(frozen=True)
class ViewRow:
    label: str
    shown: int
    matching: int
    listing: Timing
    count: Timing
    counts: Timing
    plan: str


@dataclass(frozen=True)
class CallRow:
    label: str
    result: str
    timing: Timing


@dataclass(frozen=True)
class Report:
    backend: str
    revision: str | None
    store: BuiltStore
    views: list[ViewRow]
    calls: list[CallRow]
    plans: dict[str, list[str]]
    load: tuple[float, float]    # the machine's 1-minute load average before and after


def views(today: date) -> list[tuple[str, QueueQuery]]:
    """The listings timed: the UI's date ranges, each filter, the sorts, a deep page, the CLI."""
    ui = QueueQuery(dates="queued", since=today, until=today, limit=PAGE)     # the default view
    week = replace(ui, since=today - timedelta(days=6))
    every = QueueQuery(limit=PAGE)                                           # range=all
    month = today - timedelta(days=60)
    return [
        ("today (default view)", ui),
        ("today, status new", replace(ui, status="new")),
        ("7 days", week),
        ("7 days, status new, lang ar", replace(week, status="new", lang="ar")),
        ("all dates", every),
        ("all dates, page 50", replace(every, offset=49 * PAGE)),
        ("published in a month", replace(every, since=month, until=month + timedelta(days=29))),
        ("queued in a month", replace(every, dates="queued", since=month,
                                      until=month + timedelta(days=29))),
        ("status new", replace(every, status="new")),
        ("status accepted", replace(every, status="accepted")),
        ("lang ar", replace(every, lang="ar")),
        ("lang fa (rare)", replace(every, lang="fa")),
        ("source src-07", replace(every, source_id="src-07")),
        ("channel backfill", replace(every, channel="backfill")),
        ("narrative coercion", replace(every, narrative="coercion")),
        ("min score 0.9", replace(every, min_score=0.9)),
        ("new + ar + coercion", replace(every, status="new", lang="ar", narrative="coercion")),
        ("sort by score", replace(every, sort="score")),
        ("sort by date, oldest first", replace(every, descending=False)),
        ("cli: dwatch queue", QueueQuery(limit=200)),
        ("cli: dwatch queue --status new --lang ar", QueueQuery(status="new", lang="ar", limit=200)),
    ]


def calls(store: BuiltStore, sample: random.Random) -> list[tuple[str, Callable[[Session], str]]]:
    """The other calls timed: facets, one candidate, the overview, exports."""
    today = store.last_day
    picks = iter(sample.choices(range(1, store.candidates + 1), k=10_000))
    selection = tuple(sample.sample(range(1, store.candidates + 1), min(500, store.candidates)))

    def facets(session: Session) -> str:
        f = queue.queue_facets(session)
        return (f"{len(f.languages)} langs, {len(f.sources)} sources, {len(f.channels)} channels, "
                f"{len(f.narratives)} narratives")

    def candidate(session: Session) -> str:
        detail = queue.get_candidate(session, next(picks))
        assert detail is not None
        return "1 candidate"

    def overview(since: date | None) -> Callable[[Session], str]:
        def run(session: Session) -> str:   # as /overview asks: no until unless one is given
            return f"{len(queue.weekly_overview(session, since=since).weeks)} weeks"
        return run

    def export(query: QueueQuery) -> Callable[[Session], str]:
        def run(session: Session) -> str:
            return f"{sum(1 for _ in queue.iter_export(session, query))} rows"
        return run

    return [
        ("queue_facets", facets),
        ("get_candidate (random ids)", candidate),
        ("weekly_overview, all weeks", overview(None)),
        ("weekly_overview, since 12 weeks", overview(today - timedelta(weeks=12))),
        ("iter_export, a selection of 500", export(QueueQuery(ids=selection, limit=None))),
        ("iter_export, the digest's day", export(QueueQuery(dates="queued", since=today, until=today,
                                                            limit=None))),
        ("iter_export, accepted in a month", export(QueueQuery(
            status="accepted", since=today - timedelta(days=60), until=today - timedelta(days=31),
            limit=None))),
    ]


def time_call(
    factory: sessionmaker[Session], fn: Callable[[Session], Any], repeat: int
) -> tuple[Any, Timing]:
    """``fn``'s result and its timing: one warm-up, then up to ``repeat`` runs (fewer when slow)."""
    started = time.perf_counter()
    with factory() as session:
        result = fn(session)
    warm = time.perf_counter() - started
    n = repeat if warm < 0.2 else max(3, min(repeat, int(4.0 / warm)))
    samples = []
    for _ in range(n):
        started = time.perf_counter()
        with factory() as session:
            fn(session)
        samples.append((time.perf_counter() - started) * 1000)
    samples.sort()
    return result, Timing(statistics.median(samples), samples[math.ceil(0.95 * n) - 1], n)


@contextmanager
def captured(engine: Engine) -> Iterator[list[tuple[str, Any]]]:
    """The SQL statements (with parameters) run on ``engine`` inside the block."""
    seen: list[tuple[str, Any]] = []

    def record(conn: Any, cursor: Any, statement: str, parameters: Any, context: Any, many: bool) -> None:
        seen.append((statement, parameters))

    event.listen(engine, "before_cursor_execute", record)
    try:
        yield seen
    finally:
        event.remove(engine, "before_cursor_execute", record)


def run_backend(url: str, store: BuiltStore, repeat: int) -> Report:
    engine = make_engine(url)
    factory = make_session_factory(engine)
    plans: dict[str, list[str]] = {}
    rows: list[ViewRow] = []
    load_before = os.getloadavg()[0]
    try:
        for label, query in views(store.last_day):
            with captured(engine) as statements, factory() as session:
                queue.list_candidates(session, query)
            summary, full = explain(engine, statements[0])
            plans[label] = full
            listed, listing = time_call(factory, partial(queue.list_candidates, query=query), repeat)
            matching, count = time_call(factory, partial(queue.count_candidates, query=query), repeat)
            _, counts = time_call(factory, partial(queue.candidate_counts, query=query), repeat)
            rows.append(ViewRow(label, len(listed), matching, listing, count, counts, summary))
        other = [CallRow(label, *time_call(factory, fn, repeat))
                 for label, fn in calls(store, random.Random(1))]
    finally:
        engine.dispose()
    backend = make_url(url).get_backend_name()
    return Report(backend, current_revision(url), store, rows, other, plans,
                  (load_before, os.getloadavg()[0]))


# ---------------------------------------------------------------- printing


def _ms(t: Timing) -> list[str]:
    return [f"{t.median_ms:.1f}", f"{t.p95_ms:.1f}"]


def format_report(report: Report) -> str:
    store = report.store
    built = (f"built in {store.built_seconds:.0f} s" if store.built_seconds is not None
             else "reused")
    head = [
        f"== {report.backend}, migration {report.revision}: {store.documents:,} documents, "
        f"{store.candidates:,} candidates, {store.counts.get('decisions', 0):,} decisions, "
        f"{store.counts.get('candidate_narratives', 0):,} narrative tags; today = "
        f"{store.last_day.isoformat()} ({built}); load average {report.load[0]:.2f} before, "
        f"{report.load[1]:.2f} after",
        "",
    ]
    views_table = format_table(
        ["queue view (page of 100)", "shown", "matching", "list p50", "p95", "count p50", "p95",
         "counts p50", "p95", "n", "candidates read by / sort"],
        [[v.label, str(v.shown), str(v.matching), *_ms(v.listing), *_ms(v.count), *_ms(v.counts),
          str(v.listing.n), v.plan] for v in report.views],
        right={1, 2, 3, 4, 5, 6, 7, 8, 9},
    )
    calls_table = format_table(
        ["other call", "result", "p50 ms", "p95 ms", "n"],
        [[c.label, c.result, *_ms(c.timing), str(c.timing.n)] for c in report.calls],
        right={2, 3, 4},
    )
    return "\n".join([*head, views_table, "", calls_table, ""])


def format_comparison(before: Report, after: Report) -> str:
    rows = []
    for b, a in zip(before.views, after.views, strict=True):
        rows.append([b.label, f"{b.listing.median_ms:.1f}", f"{a.listing.median_ms:.1f}",
                     f"{b.count.median_ms:.1f}", f"{a.count.median_ms:.1f}", b.plan, a.plan])
    for b2, a2 in zip(before.calls, after.calls, strict=True):
        rows.append([b2.label, f"{b2.timing.median_ms:.1f}", f"{a2.timing.median_ms:.1f}", "", "",
                     "", ""])
    return "\n".join([
        f"== {after.backend}: median ms at migration {before.revision} (before) and "
        f"{after.revision} (after)", "",
        format_table(["query", "list before", "after", "count before", "after", "plan before", "plan after"],
                     rows, right={1, 2, 3, 4}), "",
    ])


def machine() -> str:
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    return (f"machine: {os.cpu_count()} cores, {platform.machine()}, Python {platform.python_version()}, "
            f"SQLite {sqlite3.sqlite_version}; load average {load} (shared machine: other work skews "
            "timings)")


def _postgres_version(url: str) -> str:
    engine = make_engine(url)
    try:
        with engine.connect() as connection:
            return str(connection.execute(text("SHOW server_version")).scalar_one())
    finally:
        engine.dispose()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000, help="documents in the store")
    parser.add_argument("--flagged", type=float, default=0.25, help="share of documents queued")
    parser.add_argument("--days", type=int, default=1095, help="days of crawling they span")
    parser.add_argument("--data-dir", type=Path, default=Path(tempfile.gettempdir()) / "dwatch-bench",
                        help="where the SQLite stores are kept (default: %(default)s)")
    parser.add_argument("--no-sqlite", action="store_true", help="time PostgreSQL only")
    parser.add_argument("--postgres", metavar="URL", default=os.environ.get("DWATCH_BENCH_POSTGRES_URL"),
                        help="a throwaway PostgreSQL database (postgresql+psycopg://...); "
                             "default $DWATCH_BENCH_POSTGRES_URL")
    parser.add_argument("--repeat", type=int, default=15, help="timed runs per query")
    parser.add_argument("--rebuild", action="store_true", help="build the stores again")
    parser.add_argument("--reset", action="store_true",
                        help="allow dropping the tables of a database that holds other data")
    parser.add_argument("--compare-at", metavar="REV",
                        help="time at this migration first (e.g. 0004), then at head")
    parser.add_argument("--plans", action="store_true", help="print each listing's full EXPLAIN")
    args = parser.parse_args(argv)
    if args.rows < 100 or not 0 < args.flagged <= 0.88 or args.days < 30 or args.repeat < 1:
        parser.error("--rows must be >= 100, --flagged in (0, 0.88], --days >= 30, --repeat >= 1")
    spec = StoreSpec(rows=args.rows, flagged=args.flagged, days=args.days)
    urls = [] if args.no_sqlite else [
        f"sqlite:///{args.data_dir / f'queue-{args.rows}-{args.flagged:g}-{args.days}.sqlite3'}"]
    if args.postgres:
        urls.append(args.postgres)
    if not urls:
        parser.error("nothing to time: --no-sqlite without --postgres")
    print(machine())
    for url in urls:
        if make_url(url).get_backend_name() == "postgresql":
            print(f"PostgreSQL {_postgres_version(url)} at {make_url(url).render_as_string()}")
        try:
            store = ensure_store(url, spec, rebuild=args.rebuild, reset=args.reset)
        except StoreError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
        if current_revision(url) != head_revision():
            upgrade_database(url)
        before = None
        if args.compare_at:
            downgrade_database(url, args.compare_at)
            _analyze(url)
            before = run_backend(url, store, args.repeat)
            print(format_report(before))
            upgrade_database(url)
            _analyze(url)
        report = run_backend(url, store, args.repeat)
        print(format_report(report))
        if before is not None:
            print(format_comparison(before, report))
        if args.plans:
            for label, lines in report.plans.items():
                print(f"-- {label}", *lines, "", sep="\n")
        sys.stdout.flush()
    return 0


def _analyze(url: str) -> None:
    """PostgreSQL: refresh statistics after indexes change (as autovacuum would, eventually)."""
    if make_url(url).get_backend_name() == "postgresql":
        engine = make_engine(url)
        try:
            with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
                connection.exec_driver_sql("ANALYZE candidates")
        finally:
            engine.dispose()


if __name__ == "__main__":
    sys.exit(main())
