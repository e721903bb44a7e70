"""The shared frontier's parts, in this process: Redis leases, the lease tracker, settings, feeding, the CLI.

Redis-backed tests use the test Redis (tests/services.py) under a key prefix of their own.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest
import redis
import yaml
from click.testing import CliRunner
from scrapy import Request

from cli import main
from config import ConfigError, load_settings
from crawler import CrawlError
from crawler.frontier import Frontier, FrontierKeys, WorkerInfo, connect_frontier, feed_frontier
from crawler.leases import FINGERPRINTS_META, LEASE_META, LeaseTracker
from crawler.worker import worker_scrapy_settings
from tests.scale.workers import write_config


def info(worker_id: str, *sources: str) -> WorkerInfo:
    return WorkerInfo(worker_id, sources, "host-a", 4242, "2026-03-01T06:00:00+00:00", True)


def inflight(frontier: Frontier, source: str, worker: str) -> dict[bytes, bytes]:
    return dict(frontier.client.hgetall(frontier.keys.inflight(source, worker)))


def queued(frontier: Frontier, source: str) -> list[tuple[bytes, float]]:
    return [(data, score) for data, score in frontier.client.zrange(frontier.keys.requests(source), 0, -1,
                                                                     withscores=True)]


# ---------------------------------------------------------------- Redis: queue and leases


def test_pop_leases_the_best_request_to_the_worker_and_ack_ends_the_lease(frontier: Frontier) -> None:
    frontier.beat(info("w1", "src"))
    frontier.push("src", 0, b"ordinary")
    frontier.push("src", -5, b"urgent")           # score = -priority: priority 5 comes first
    assert frontier.pending("src") == 2
    assert frontier.pop("src", "w1", "t1") == b"urgent"
    assert queued(frontier, "src") == [(b"ordinary", 0.0)]
    assert inflight(frontier, "src", "w1") == {b"t1": b"-5 urgent"}
    assert (frontier.queued("src"), frontier.inflight("src"), frontier.pending("src")) == (1, 1, 2)
    frontier.ack("src", "w1", "t1")
    assert inflight(frontier, "src", "w1") == {}
    assert frontier.pop("src", "w1", "t2") == b"ordinary"
    assert frontier.pop("src", "w1", "t3") is None
    assert frontier.pending("src") == 1            # t2, still leased


def test_a_request_that_becomes_another_hands_its_lease_over_in_one_step(frontier: Frontier) -> None:
    frontier.beat(info("w1", "src"))
    frontier.push("src", 0, b"/a?utm_source=rss")
    assert frontier.pop("src", "w1", "t1") == b"/a?utm_source=rss"
    frontier.push("src", 0, b"/a (redirected)", handoff=("w1", "t1"))
    assert inflight(frontier, "src", "w1") == {}
    assert queued(frontier, "src") == [(b"/a (redirected)", 0.0)]


def test_requeue_gives_a_workers_leases_back_with_their_priorities(frontier: Frontier) -> None:
    for score, data in ((-3, b"a"), (0, b"b"), (2, b"c")):
        frontier.push("src", score, data)
    for token in ("t1", "t2", "t3"):
        frontier.pop("src", "w1", token)
    assert frontier.requeue("src", "w1") == 3
    assert queued(frontier, "src") == [(b"a", -3.0), (b"b", 0.0), (b"c", 2.0)]
    assert frontier.requeue("src", "w1") == 0


def test_a_worker_whose_heartbeat_expired_has_its_leases_reclaimed_once(
    frontier_url: str, prefix: str
) -> None:
    keys = FrontierKeys(prefix)
    dead = Frontier(redis.Redis.from_url(frontier_url), keys, lease_seconds=2)
    alive = Frontier(redis.Redis.from_url(frontier_url), keys, lease_seconds=30)
    try:
        dead.beat(info("dead", "src", "other"))
        alive.beat(info("alive", "src"))
        for data in (b"r1", b"r2", b"r3"):
            dead.push("src", 0, data)
        dead.push("other", 0, b"r4")
        dead.pop("src", "dead", "t1")
        dead.pop("src", "dead", "t2")
        dead.pop("other", "dead", "t3")
        alive.pop("src", "alive", "t4")
        assert alive.reclaim_dead() == {}                  # both heartbeats still live
        assert [(w.worker_id, w.sources, w.alive) for w in alive.workers()] == [
            ("alive", ("src",), True), ("dead", ("src", "other"), True)]
        time.sleep(2.3)                                    # "dead" stops beating: its key expires
        assert [w.alive for w in alive.workers()] == [True, False]
        assert alive.reclaim_dead() == {"dead": 3}
        assert alive.reclaim_dead() == {}                  # once: it left the registry
        assert [w.worker_id for w in alive.workers()] == ["alive"]
        assert sorted(d for d, _ in queued(alive, "src")) == [b"r1", b"r2"]
        assert queued(alive, "other") == [(b"r4", 0.0)]
        assert inflight(alive, "src", "alive") == {b"t4": b"0 r3"}    # a live worker keeps its lease
        assert alive.pending("src") == 3
    finally:
        dead.close()
        alive.close()


def test_retire_gives_everything_back_and_deregisters(frontier: Frontier) -> None:
    frontier.beat(info("w1", "a", "b"))
    frontier.push("a", 0, b"x")
    frontier.push("b", 0, b"y")
    frontier.pop("a", "w1", "t1")
    frontier.pop("b", "w1", "t2")
    assert frontier.retire("w1", ["a", "b"]) == 2
    assert frontier.workers() == []
    assert not frontier.client.exists(frontier.keys.heartbeat("w1"))
    assert (frontier.queued("a"), frontier.queued("b")) == (1, 1)


def test_start_documents_wait_once_until_a_worker_takes_them(frontier: Frontier) -> None:
    urls = ["https://example.org/feed.xml", "https://example.org/news.xml"]
    assert frontier.push_seeds("src", urls) == 2
    assert frontier.push_seeds("src", [*urls, urls[0]]) == 0     # still waiting: not fed twice
    assert frontier.queued("src") == 2
    assert frontier.pop_seeds("src", 16) == urls
    assert frontier.pop_seeds("src", 16) == []


def test_forget_lets_the_dupefilter_admit_a_request_again(frontier: Frontier) -> None:
    frontier.client.sadd(frontier.keys.dupefilter("src"), "aa", "bb")
    frontier.forget("src", ["aa"])
    assert frontier.client.smembers(frontier.keys.dupefilter("src")) == {b"bb"}


def test_an_unreachable_redis_is_a_crawl_error_that_says_how_to_fix_it(tmp_path: Path) -> None:
    config_dir = write_config(tmp_path / "config", [], prefix="p")
    settings = load_settings(config_dir, env={"DWATCH_REDIS_URL": "redis://:secret@127.0.0.1:1/0"})
    with pytest.raises(CrawlError) as error:
        connect_frontier(settings.frontier)
    assert str(error.value).startswith("cannot reach Redis at redis://:***@127.0.0.1:1/0: ")
    assert "start it (`make services` runs one on 127.0.0.1) or point DWATCH_REDIS_URL" in str(error.value)
    assert "secret" not in str(error.value)


# ---------------------------------------------------------------- the lease tracker


def leased(token: str, *fingerprints: str) -> Request:
    meta = {LEASE_META: token, FINGERPRINTS_META: list(fingerprints)}
    return Request("https://example.org/feed.xml", meta=meta)


def test_a_lease_ends_only_when_all_its_output_has_arrived() -> None:
    finished: list[tuple[str, list[str]]] = []
    tracker = LeaseTracker(lambda token, forget: finished.append((token, forget)))
    feed_request = leased("t1")
    page, article = object(), Request("https://example.org/a")
    tracker.expect(feed_request, article)
    tracker.expect(feed_request, page)
    tracker.complete(feed_request)
    assert finished == [] and len(tracker) == 1
    tracker.settle(article)          # queued in Redis
    assert finished == []
    tracker.settle(object())         # someone else's output: ignored
    tracker.settle(page)             # left the pipelines
    assert finished == [("t1", [])] and len(tracker) == 0


def test_output_may_arrive_before_the_callback_is_complete_and_forget_carries_the_fingerprints() -> None:
    finished: list[tuple[str, list[str]]] = []
    done: list[str] = []
    tracker = LeaseTracker(lambda token, forget: finished.append((token, forget)))
    article = leased("t2", "fp-0", "fp-1")
    page = object()
    tracker.expect(article, page)
    tracker.after(article, lambda: done.append("poll recorded"))
    tracker.settle(page, forget=True)      # stored as a failure worth another try
    assert finished == [] and done == []
    tracker.complete(article)
    assert done == ["poll recorded"]
    assert finished == [("t2", ["fp-0", "fp-1"])]


def test_requests_without_a_lease_are_not_tracked() -> None:
    finished: list[tuple[str, list[str]]] = []
    done: list[str] = []
    tracker = LeaseTracker(lambda token, forget: finished.append((token, forget)))
    plain = Request("https://example.org/robots.txt")
    tracker.expect(plain, object())
    tracker.complete(plain)
    tracker.after(plain, lambda: done.append("at once"))
    assert finished == [] and done == ["at once"] and len(tracker) == 0


# ---------------------------------------------------------------- settings and Scrapy wiring


def test_frontier_settings_from_yaml_then_env(tmp_path: Path) -> None:
    config_dir = write_config(tmp_path / "config", [], prefix="team-a", lease_seconds=60, idle_seconds=10)
    settings = load_settings(config_dir, env={})
    assert settings.frontier.model_dump() == {"redis_url": None, "key_prefix": "team-a", "lease_seconds": 60,
                                              "idle_seconds": 10.0}
    settings = load_settings(config_dir, env={"DWATCH_REDIS_URL": "redis://:pw@10.0.0.5:6379/2"})
    assert settings.frontier.redis_url == "redis://:pw@10.0.0.5:6379/2"
    assert settings.masked()["frontier"]["redis_url"] == "redis://:***@10.0.0.5:6379/2"


@pytest.mark.parametrize(("frontier", "message"), [
    ({"redis_url": "redis://:pw@h:6379/0"},
     "frontier, field 'redis_url': secrets are never read from YAML; remove the password and set "
     "DWATCH_REDIS_URL (e.g. redis://:PASSWORD@host:6379/0) instead."),
    ({"redis_url": "http://h:6379"},
     "frontier, field 'redis_url': 'http://h:6379' is not a Redis URL; use redis://host:6379/0 (rediss:// "
     "for TLS, unix:///path/to/redis.sock) (got 'http://h:6379')"),
    ({"lease_seconds": 1},
     "frontier, field 'lease_seconds': Input should be greater than or equal to 2 (got 1)"),
    ({"key_prefix": "a b"},
     "frontier, field 'key_prefix': use letters, digits, '_', '.', ':' or '-' (at most 64), e.g. 'dwatch' "
     "(got 'a b')"),
    ({"lease": 5}, "frontier, field 'lease': unknown field (a typo?)"),
])
def test_bad_frontier_settings_name_the_file_line_and_field(tmp_path: Path, frontier: dict[str, object],
                                                           message: str) -> None:
    config_dir = write_config(tmp_path / "config", [], prefix="p")
    (config_dir / "settings.yaml").write_text(yaml.safe_dump({"frontier": frontier}), encoding="utf-8")
    with pytest.raises(ConfigError) as error:
        load_settings(config_dir, env={})
    assert f"{config_dir / 'settings.yaml'}:2: {message}" in str(error.value)


def test_a_bad_redis_url_in_the_environment_is_named(tmp_path: Path) -> None:
    config_dir = write_config(tmp_path / "config", [], prefix="p")
    expected = r"^environment DWATCH_REDIS_URL: 'localhost:6379' is not a Redis URL; use redis://host"
    with pytest.raises(ConfigError, match=expected):
        load_settings(config_dir, env={"DWATCH_REDIS_URL": "localhost:6379"})


def test_the_workers_scrapy_settings_put_the_frontier_in_the_crawl(tmp_path: Path) -> None:
    settings = load_settings(write_config(tmp_path / "config", [], prefix="p"), env={})
    scrapy = worker_scrapy_settings(settings)
    assert scrapy["SCHEDULER"] == "crawler.leases.FrontierScheduler"
    assert scrapy["SCHEDULER_QUEUE_CLASS"] == "crawler.leases.LeasedPriorityQueue"
    assert scrapy["DUPEFILTER_CLASS"] == "crawler.leases.SourceDupeFilter"
    assert scrapy["SCHEDULER_PERSIST"] is True
    assert scrapy["SPIDER_MIDDLEWARES"] == {"crawler.leases.LeaseMiddleware": 1}
    assert "crawler.middlewares.IncrementalMiddleware" not in scrapy["DOWNLOADER_MIDDLEWARES"]
    assert scrapy["DOWNLOADER_MIDDLEWARES"]["crawler.leases.FrontierIncrementalMiddleware"] == 30
    assert scrapy["ITEM_PIPELINES"] == {"crawler.pipelines.ArchivePipeline": 100,
                                        "crawler.pipelines.AnalysePipeline": 200,
                                        "crawler.pipelines.StorePipeline": 300}
    assert "REDIS_URL" not in scrapy            # the client comes from the worker: no password in settings


# ---------------------------------------------------------------- feeding and the CLI


def sources() -> list[dict[str, object]]:
    return [
        {"id": "alpha", "name": "Alpha", "kind": "feed", "urls": ["https://alpha.example.org/rss",
                                                                  "https://alpha.example.org/atom"]},
        {"id": "beta", "name": "Beta", "kind": "sitemap", "urls": ["https://beta.example.org/robots.txt"]},
        {"id": "gamma", "name": "Gamma", "kind": "feed", "urls": ["https://gamma.example.org/rss"],
         "enabled": False},
    ]


def test_feed_pushes_the_start_documents_of_the_enabled_sources(
    frontier: Frontier, frontier_url: str, prefix: str, tmp_path: Path
) -> None:
    config_dir = write_config(tmp_path / "config", sources(), prefix=prefix)
    env = {"DWATCH_REDIS_URL": frontier_url, "DWATCH_DATA_DIR": str(tmp_path / "data")}
    settings = load_settings(config_dir, env=env)
    assert feed_frontier(settings) == 3
    assert frontier.pop_seeds("alpha", 10) == ["https://alpha.example.org/atom", "https://alpha.example.org/rss"]
    assert frontier.pop_seeds("beta", 10) == ["https://beta.example.org/robots.txt"]
    assert frontier.pop_seeds("gamma", 10) == []
    assert feed_frontier(settings, ["gamma"]) == 1          # named: fed even though disabled
    with pytest.raises(CrawlError, match=r"^unknown source id\(s\): nope; known ids: alpha, beta, gamma$"):
        feed_frontier(settings, ["nope"])


def test_dwatch_feed_and_worker_on_the_command_line(
    frontier: Frontier, frontier_url: str, prefix: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config_dir = write_config(tmp_path / "config", sources(), prefix=prefix)
    monkeypatch.setenv("DWATCH_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.delenv("DWATCH_REDIS_URL", raising=False)
    runner = CliRunner()
    refused = runner.invoke(main, ["worker", "--config", str(config_dir)])
    assert refused.exit_code == 2
    assert refused.output == ("Error: no shared frontier: set frontier.redis_url in settings.yaml or "
                              "DWATCH_REDIS_URL (e.g. redis://127.0.0.1:6379/0); `dwatch crawl` crawls "
                              "without one\n")
    monkeypatch.setenv("DWATCH_REDIS_URL", frontier_url)
    fed = runner.invoke(main, ["feed", "--config", str(config_dir), "--source", "beta"])
    assert (fed.exit_code, fed.output) == (0, "fed 1 start document(s) to the shared frontier\n")
    assert frontier.pop_seeds("beta", 10) == ["https://beta.example.org/robots.txt"]
    unknown = runner.invoke(main, ["worker", "--config", str(config_dir), "--source", "nope"])
    assert unknown.exit_code == 2
    assert unknown.output == "Error: unknown source id(s): nope; known ids: alpha, beta, gamma\n"
