"""The benchmarks still run: each one with tiny sizes, its printed tables checked for shape and
sane values (never timings: speed is what the benchmarks print, not what tests assert).
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.services import postgres_url, private_database, redis_url

REPO = Path(__file__).resolve().parents[1]
SPLIT = re.compile(r"\s{2,}")
HEADER = re.compile(r"^== (sqlite|postgresql), migration (\w+): ([\d,]+) documents, ([\d,]+) candidates, ")
VIEWS = [
    "today (default view)", "today, status new", "7 days", "7 days, status new, lang ar",
    "all dates", "all dates, page 50", "published in a month", "queued in a month", "status new",
    "status accepted", "lang ar", "lang fa (rare)", "source src-07", "channel backfill",
    "narrative coercion", "min score 0.9", "new + ar + coercion", "sort by score",
    "sort by date, oldest first", "cli: dwatch queue", "cli: dwatch queue --status new --lang ar",
]
CALLS = [
    "queue_facets", "get_candidate (random ids)", "weekly_overview, all weeks",
    "weekly_overview, since 12 weeks", "iter_export, a selection of 500",
    "iter_export, the digest's day", "iter_export, accepted in a month",
]


def bench(script: str, *args: str, timeout: float = 240) -> str:
    proc = subprocess.run([sys.executable, str(REPO / "bench" / script), *args], cwd=REPO,
                          capture_output=True, text=True, timeout=timeout)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc.stdout


def tables(section: str) -> list[list[list[str]]]:
    """The tables of one printed section: each a list of rows of cells (header included)."""
    found: list[list[list[str]]] = []
    block: list[str] = []
    for line in [*section.splitlines(), ""]:
        if line.strip():
            block.append(line)
        elif block:
            if len(block) > 1 and set(block[1]) <= {"-", " "}:
                found.append([SPLIT.split(row.strip()) for row in [block[0], *block[2:]]])
            block = []
    return found


def sections(output: str) -> dict[str, tuple[re.Match[str], str]]:
    parts = re.split(r"(?m)^(?===)", output)
    found = {}
    for part in parts[1:]:
        match = HEADER.match(part)
        assert match, part[:300]
        found[match.group(1)] = (match, part)
    return found


def check_queue_section(match: re.Match[str], section: str) -> dict[str, tuple[int, int]]:
    """Asserts the shape and sense of one backend's tables; (shown, matching) per view."""
    documents, candidates = (int(match.group(i).replace(",", "")) for i in (3, 4))
    assert documents == 2000
    assert 300 < candidates < 700     # 25 % flagged, minus verbatim copies
    views, calls = tables(section)
    assert views[0][:4] == ["queue view (page of 100)", "shown", "matching", "list p50"]
    assert [row[0] for row in views[1:]] == VIEWS
    counted: dict[str, tuple[int, int]] = {}
    for row in views[1:]:
        label, shown, matching = row[0], int(row[1]), int(row[2])
        timings = [float(cell) for cell in row[3:9]]
        assert all(t > 0 for t in timings), row
        assert int(row[9]) >= 1
        limit = 200 if label.startswith("cli:") else 100
        if label == "all dates, page 50":
            assert shown == max(0, min(100, matching - 4900))
        else:
            assert shown == min(limit, matching), row
        assert matching <= candidates
        counted[label] = (shown, matching)
    assert counted["all dates"][1] == counted["sort by score"][1] == candidates
    assert 0 < counted["status new"][1] < candidates
    assert counted["today (default view)"][1] > 0   # the newest day of the store is "today"
    assert counted["7 days"][1] >= counted["today (default view)"][1]
    assert counted["new + ar + coercion"][1] <= min(counted["status new"][1], counted["lang ar"][1])
    assert calls[0] == ["other call", "result", "p50 ms", "p95 ms", "n"]
    assert [row[0] for row in calls[1:]] == CALLS
    results = {row[0]: row[1] for row in calls[1:]}
    assert re.fullmatch(r"([1-9]|10) langs, \d\d sources, 4 channels, 8 narratives",
                        results["queue_facets"]), results["queue_facets"]
    assert results["get_candidate (random ids)"] == "1 candidate"
    assert results["iter_export, a selection of 500"] == f"{min(500, candidates)} rows"
    day = counted["today (default view)"][1]
    assert results["iter_export, the digest's day"] == f"{day} rows"
    assert all(float(row[2]) > 0 and float(row[3]) >= float(row[2]) for row in calls[1:])
    return counted


def test_queue_latency_prints_every_query_on_sqlite_and_reuses_its_store(tmp_path: Path) -> None:
    args = ("--rows", "2000", "--days", "90", "--data-dir", str(tmp_path), "--repeat", "2")
    output = bench("queue_latency.py", *args)
    assert output.startswith("machine: ")
    found = sections(output)
    assert list(found) == ["sqlite"]
    match, section = found["sqlite"]
    assert "(built in " in match.string.splitlines()[0]
    counted = check_queue_section(match, section)
    views = tables(section)[0]
    plans = {row[0]: row[-1] for row in views[1:]}
    # the indexes chosen for the queue (migration 0005) are the ones SQLite reads it by
    assert plans["today (default view)"].startswith("candidates: search ix_candidates_queued_at")
    assert plans["all dates"].startswith("candidates: scan ix_candidates_pub_or_queued")
    assert plans["published in a month"].startswith("candidates: search ix_candidates_pub_or_queued")
    for label, index in [("status new", "status"), ("lang ar", "lang"), ("channel backfill", "channel"),
                         ("source src-07", "source_id")]:
        assert plans[label].startswith(f"candidates: search ix_candidates_{index}_pub_or_queued"), label
    assert "sort order by" not in " ".join(plans.values())   # no listing sorts a whole table
    assert "candidate_narratives: search" in plans["narrative coercion"]

    again = sections(bench("queue_latency.py", *args))["sqlite"]
    assert "(reused)" in again[1].splitlines()[0]
    assert check_queue_section(*again) == counted


def test_queue_latency_gives_postgresql_the_same_store_and_answers(tmp_path: Path) -> None:
    postgres_url()
    with private_database() as url:
        output = bench("queue_latency.py", "--rows", "2000", "--days", "90", "--data-dir",
                       str(tmp_path), "--repeat", "2", "--postgres", url)
    found = sections(output)
    assert list(found) == ["sqlite", "postgresql"]
    assert check_queue_section(*found["sqlite"]) == check_queue_section(*found["postgresql"])


def test_queue_latency_refuses_a_database_holding_other_data(tmp_path: Path) -> None:
    from store import make_engine, upgrade_database

    url = f"sqlite:///{tmp_path / 'queue-2000-0.25-90.sqlite3'}"   # where the bench keeps its store
    upgrade_database(url)
    engine = make_engine(url)
    with engine.begin() as connection:
        connection.exec_driver_sql(
            "INSERT INTO crawl_runs (kind, started_at, status, sources) "
            "VALUES ('crawl', '2026-01-01 00:00:00.000000', 'ok', '[]')")
    engine.dispose()
    proc = subprocess.run(
        [sys.executable, str(REPO / "bench" / "queue_latency.py"), "--rows", "2000", "--days", "90",
         "--data-dir", str(tmp_path)], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2
    assert "holds data that is not a benchmark store" in proc.stderr
    assert "--reset" in proc.stderr


@pytest.mark.slow
def test_workers_bench_stores_every_article_once_with_each_worker_count() -> None:
    postgres, redis = postgres_url(), redis_url()
    output = bench("workers.py", "--postgres", postgres, "--redis", redis, "--articles", "60",
                   "--sources", "2", "--workers", "1,2", timeout=600)
    lines = output.splitlines()
    assert lines[0].startswith("machine: ") and " cores " in lines[0]
    site = re.match(r"site: 60 articles on 2 sources .*: (\d+) candidates expected", lines[1])
    assert site, lines[1]
    (table,) = tables("\n".join(lines[2:]))
    assert table[0][:3] == ["run", "processes", "documents"]
    assert [row[0] for row in table[1:]] == [
        "dwatch crawl (no frontier)", "dwatch worker x1", "dwatch worker x2"]
    assert table[0][-2:] == ["crawler CPU s/page", "machine busy"]
    for row in table[1:]:
        assert row[2:5] == ["60", site.group(1), "0"], row   # documents, candidates, fetched twice
        assert float(row[6]) > 0 and float(row[8]) > 0
        assert 0 < int(row[9].rstrip("%")) <= 100
