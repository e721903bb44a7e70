"""`dwatch worker` processes sharing one frontier (Redis) crawl the local Scale Gazette (tests/scale/site.py).

The site: 200 articles behind three sources (a sitemap index, an RSS feed, a paginated listing),
40 first-person accounts of leaving IS, 8 verbatim copies, 8 near-copies, 144 local news. Fed
once, then:
  1. one worker (SQLite) stores every article once, queues each distinct account once, fetches
     each page once and leaves the frontier empty: the reference;
  2. four workers on PostgreSQL, one SIGKILLed mid-crawl holding leased requests: the others
     requeue and finish its work; the store ends exactly as the reference (every article one
     document, every expected candidate one candidate, no lost write, no deadlock within the
     timeout) and only requests the killed worker held were fetched twice;
  3. two workers on SQLite (WAL, busy timeout): the same store as the reference, each page once;
  4. SIGTERM stops a worker cleanly (run "interrupted", nothing of its held), and a new worker
     crawls the rest: each page fetched once over both;
  5. fed again (a small site): feeds and sitemaps not due are not fetched, the listing is, no
     stored article is fetched again, and an article that failed with a 500 (retried once through
     the queue) is requested again and stored.
"""

from __future__ import annotations

import os
import pickle
import re
import secrets
import signal
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import redis

from crawler.frontier import Frontier, FrontierKeys
from tests.scale.site import Site, SiteServer, build_site
from tests.scale.workers import (
    QueueState,
    WorkerProcess,
    feed,
    queue_state,
    start_worker,
    wait_until,
    worker_env,
    write_config,
)
from tests.services import redis_url

pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]

SOURCES = ("scale-sitemap", "scale-feed", "scale-listing")
WORKER_TIMEOUT = 300


@dataclass
class Crawl:
    state: QueueState
    hits: Counter[str]
    workers: list[WorkerProcess]
    codes: list[int]


def frontier_of(url: str, prefix: str) -> Frontier:
    return Frontier(redis.Redis.from_url(url), FrontierKeys(prefix), lease_seconds=5)


def leftovers(frontier: Frontier) -> dict[str, int]:
    """Whatever is still in the frontier but the dupefilters (which keep what was requested)."""
    keys = frontier.keys
    found = {key.decode(): 1 for key in frontier.client.scan_iter(match=f"{keys.prefix}:*")}
    return {key: n for key, n in found.items() if not key.endswith(":dupefilter")}


def no_deprecations(worker: WorkerProcess) -> None:
    assert "DeprecationWarning" not in worker.stderr, worker.stderr[-3000:]


def run_workers(site: Site, tmp: Path, database_url: str, frontier_url: str, prefix: str, count: int,
                *, delay: float = 0.0) -> Crawl:
    """Serve the site, feed it once, run `count` workers until they are idle."""
    with SiteServer(site) as server:
        server.delay = delay
        config_dir = write_config(tmp / "config", server.sources(), prefix=prefix)
        env = worker_env(tmp / "data", database_url, frontier_url)
        assert feed(config_dir, env) == 3
        workers = [start_worker(config_dir, env, tmp / f"worker-{i}") for i in range(count)]
        codes = [w.wait(WORKER_TIMEOUT) for w in workers]
        hits = server.article_hits()
    return Crawl(queue_state(database_url), hits, workers, codes)


def expected_state(site: Site) -> tuple[Counter[str], Counter[str]]:
    """(titles of the candidates, titles of the candidates with verbatim copies) the labels promise."""
    titles = Counter(site.titles[p] for p in site.accounts) + Counter(site.titles[p] for p in site.near)
    copies = Counter(site.titles[original] for original in site.verbatim.values())
    return titles, copies


@pytest.fixture(scope="module")
def site() -> Site:
    return build_site()


@pytest.fixture(scope="module")
def reference(site: Site, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Crawl, dict[str, int]]]:
    """One worker on SQLite: the crawl the others are compared with (and what it left in Redis)."""
    url = redis_url()
    prefix = f"dwt-ref-{os.getpid()}-{secrets.token_hex(3)}"
    tmp = tmp_path_factory.mktemp("one-worker")
    frontier = frontier_of(url, prefix)
    try:
        crawl = run_workers(site, tmp, f"sqlite:///{tmp / 'data' / 'dwatch.sqlite3'}", url, prefix, 1)
        yield crawl, leftovers(frontier)
    finally:
        keys = list(frontier.client.scan_iter(match=f"{prefix}:*"))
        if keys:
            frontier.client.delete(*keys)
        frontier.close()


def test_one_worker_stores_each_article_once_and_queues_each_account_once(
    site: Site, reference: tuple[Crawl, dict[str, int]]
) -> None:
    crawl, left = reference
    (worker,) = crawl.workers
    assert crawl.codes == [0], worker.stderr[-3000:]
    no_deprecations(worker)
    assert re.search(r"^worker \S+: ok$", worker.stdout, re.MULTILINE), worker.stdout
    for source, count in (("scale-sitemap", 120), ("scale-feed", 40), ("scale-listing", 40)):
        # source  discovered  fetched  seen  extracted  flagged  errors
        row = rf"^{source}\s+{count}\s+{count}\s+0\s+\d+\s+\d+\s+0$"
        assert re.search(row, worker.stdout, re.MULTILINE), worker.stdout
    state = crawl.state
    assert sorted(state.documents) == site.articles
    flagged = set(site.accounts) | set(site.verbatim) | set(site.near)
    assert {path for path, (_, is_flagged) in state.documents.items() if is_flagged} == flagged
    # a few news pages cannot match the rules at all: stored as skipped ("prefiltered")
    assert Counter(outcome for outcome, _ in state.documents.values()) == {"extracted": 194, "skipped": 6}
    titles, copies = expected_state(site)
    assert sum(state.candidates.values()) == site.expected_candidates == 48
    assert Counter(key[0] for key in state.candidates.elements()) == titles
    assert {key[3] for key in state.candidates} == {"new"}
    assert state.copies == copies and sum(copies.values()) == 8
    assert crawl.hits == Counter(site.articles)           # every article fetched exactly once
    assert state.runs == [("worker", "ok")]
    assert left == {}                                      # nothing queued, leased or registered


def test_four_workers_on_postgresql_finish_a_killed_workers_requests(
    site: Site, reference: tuple[Crawl, dict[str, int]], postgres_db: str, frontier_url: str, prefix: str,
    frontier: Frontier, tmp_path: Path,
) -> None:
    with SiteServer(site) as server:
        server.delay = 0.2      # slow answers: the crawl is still running when the worker is killed
        config_dir = write_config(tmp_path / "config", server.sources(), prefix=prefix)
        env = worker_env(tmp_path / "data", postgres_db, frontier_url)
        assert feed(config_dir, env) == 3       # (also migrates the store, before the workers start)
        workers = [start_worker(config_dir, env, tmp_path / f"worker-{i}") for i in range(4)]
        victim, others = workers[0], workers[1:]
        held = kill_holding_leases(victim, frontier, server)
        codes = [w.wait(WORKER_TIMEOUT) for w in others]       # no deadlock: all end on their own
        hits = server.article_hits()

    assert codes == [0, 0, 0], [w.stderr[-2000:] for w in others]
    for worker in others:
        no_deprecations(worker)
    victim_id, held_paths = held
    reclaims = [m for w in others for m in re.finditer(
        rf"worker {re.escape(victim_id)} \(pid {victim.pid} on \S+\) stopped renewing its heartbeat; "
        r"(\d+) request\(s\) it held went back to the queue", w.stderr)]
    assert [int(m.group(1)) for m in reclaims] == [len(held_paths.requests)]   # requeued once, all of them
    state = queue_state(postgres_db)
    expected = reference[0].state
    assert state.documents == expected.documents          # 200 documents: no lost write
    assert state.candidates == expected.candidates        # every expected candidate exactly once
    assert state.copies == expected.copies
    assert sorted(state.runs) == [("worker", "ok")] * 3 + [("worker", "running")]   # the killed one's
    assert set(hits) == set(site.articles)
    twice = {path for path, n in hits.items() if n > 1}
    assert max(hits.values()) <= 2
    assert twice <= held_paths.articles, twice - held_paths.articles   # only what the killed worker held
    assert leftovers(frontier) == {}


@dataclass(frozen=True)
class Held:
    requests: list[str]       # every URL path the worker had leased when it was killed

    @property
    def articles(self) -> set[str]:
        return {path for path in self.requests if path.startswith("/news/")}


def kill_holding_leases(victim: WorkerProcess, frontier: Frontier, server: SiteServer) -> tuple[str, Held]:
    """Once 30 articles were fetched and `victim` holds leases: freeze it, read them, SIGKILL it."""
    wait_until(lambda: sum(server.article_hits().values()) >= 30, 120, "30 articles fetched")
    wait_until(lambda: any(i.pid == victim.pid for i in frontier.workers()), 60, "the worker registered")
    (worker_id,) = [info.worker_id for info in frontier.workers() if info.pid == victim.pid]
    for _ in range(500):
        victim.proc.send_signal(signal.SIGSTOP)     # frozen: what it holds cannot change while read
        held = [path for source in SOURCES for path in leased_paths(frontier, source, worker_id)]
        if held:
            victim.proc.send_signal(signal.SIGKILL)
            victim.wait(30)
            return worker_id, Held(sorted(held))
        victim.proc.send_signal(signal.SIGCONT)
        time.sleep(0.02)
    raise AssertionError("the worker to kill never held a leased request")


def leased_paths(frontier: Frontier, source_id: str, worker_id: str) -> list[str]:
    entries = frontier.client.hgetall(frontier.keys.inflight(source_id, worker_id))
    paths = []
    for value in entries.values():
        request = pickle.loads(value.split(b" ", 1)[1])
        paths.append("/" + request["url"].split("/", 3)[3])
    return paths


def test_two_workers_on_sqlite_end_like_one(
    site: Site, reference: tuple[Crawl, dict[str, int]], frontier_url: str, prefix: str, frontier: Frontier,
    tmp_path: Path,
) -> None:
    database = f"sqlite:///{tmp_path / 'data' / 'dwatch.sqlite3'}"
    crawl = run_workers(site, tmp_path, database, frontier_url, prefix, 2, delay=0.02)
    assert crawl.codes == [0, 0], [w.stderr[-2000:] for w in crawl.workers]
    expected = reference[0].state
    assert crawl.state.documents == expected.documents
    assert crawl.state.candidates == expected.candidates
    assert crawl.state.copies == expected.copies
    assert crawl.state.runs == [("worker", "ok")] * 2
    assert crawl.hits == Counter(site.articles)
    assert "database is locked" not in "".join(w.stderr for w in crawl.workers)
    assert leftovers(frontier) == {}


def test_sigterm_stops_a_worker_cleanly_and_the_next_one_crawls_the_rest(
    site: Site, frontier_url: str, prefix: str, frontier: Frontier, tmp_path: Path
) -> None:
    database = f"sqlite:///{tmp_path / 'data' / 'dwatch.sqlite3'}"
    with SiteServer(site) as server:
        server.delay = 0.3
        config_dir = write_config(tmp_path / "config", server.sources(), prefix=prefix)
        env = worker_env(tmp_path / "data", database, frontier_url)
        feed(config_dir, env)
        first = start_worker(config_dir, env, tmp_path / "first")
        wait_until(lambda: sum(server.article_hits().values()) >= 20, 120, "20 articles fetched")
        first.proc.send_signal(signal.SIGTERM)
        assert first.wait(120) == 0, first.stderr[-3000:]
        stopped_at = sum(server.article_hits().values())
        # it held nothing back: what it was fetching it finished; the rest waits in the queue
        assert frontier.workers() == []
        assert sum(frontier.inflight(source) for source in SOURCES) == 0
        assert 0 < sum(frontier.queued(source) for source in SOURCES) <= len(site.pages) - stopped_at
        server.delay = 0
        second = start_worker(config_dir, env, tmp_path / "second")
        assert second.wait(WORKER_TIMEOUT) == 0, second.stderr[-3000:]
        hits = server.article_hits()
    assert re.search(r"^worker \S+: interrupted$", first.stdout, re.MULTILINE), first.stdout
    state = queue_state(database)
    assert state.runs == [("worker", "interrupted"), ("worker", "ok")]
    assert sorted(state.documents) == site.articles
    assert hits == Counter(site.articles)                  # over both workers: each page once
    assert leftovers(frontier) == {}


def test_a_second_feed_fetches_only_what_is_due_and_retries_a_failed_article(
    frontier_url: str, prefix: str, frontier: Frontier, tmp_path: Path
) -> None:
    small = build_site(12, accounts=3, verbatim=1, near=1)
    failing = small.sources["listing"][0]
    database = f"sqlite:///{tmp_path / 'data' / 'dwatch.sqlite3'}"
    with SiteServer(small) as server:
        server.fail[failing] = 500
        config_dir = write_config(tmp_path / "config", server.sources(), prefix=prefix)
        env = worker_env(tmp_path / "data", database, frontier_url)
        assert feed(config_dir, env) == 3
        first = start_worker(config_dir, env, tmp_path / "first")
        assert first.wait(WORKER_TIMEOUT) == 0, first.stderr[-3000:]
        after_first = Counter(server.log)
        failed = queue_state(database).documents[failing]
        del server.fail[failing]
        assert feed(config_dir, env) == 3
        second = start_worker(config_dir, env, tmp_path / "second")
        assert second.wait(WORKER_TIMEOUT) == 0, second.stderr[-3000:]
        total = Counter(server.log)

    assert failed == ("failed", False)
    assert after_first[failing] == 2                      # retried once (through the shared queue)
    others = [p for p in small.pages if p != failing]
    assert {p: after_first[p] for p in others} == dict.fromkeys(others, 1)
    second_round = total - after_first
    del second_round["/robots.txt"]      # each crawler that fetches asks for it once
    # the feed and the child sitemaps are not due yet; the index and the listing are read every time
    assert second_round == Counter({"/sitemap.xml": 1, "/list/1.html": 1, "/list/2.html": 1, failing: 1})
    state = queue_state(database)
    flagged = failing in {*small.accounts, *small.verbatim, *small.near}
    assert state.documents[failing] == ("extracted", flagged)
    assert sorted(state.documents) == small.articles
    assert state.runs == [("worker", "partial"), ("worker", "ok")]     # the 500 was an error of run 1
    assert sum(state.candidates.values()) == small.expected_candidates
    assert leftovers(frontier) == {}
