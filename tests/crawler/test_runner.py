"""run_crawl's checks before any crawling, the run status rule and the Scrapy settings (in-process:
these paths never start Twisted's reactor)."""

from __future__ import annotations

from pathlib import Path

import pytest

from config import CrawlSettings, load_settings
from crawler import CrawlError, run_crawl
from crawler.runner import _run_status, select_sources
from crawler.settings import scrapy_settings
from store import SourceRunStats
from tests.crawler.crawl_process import write_config


def _feed(source_id: str, *, enabled: bool = True) -> dict[str, object]:
    return {"id": source_id, "name": source_id, "kind": "feed",
            "urls": [f"https://{source_id}.example.org/feed.xml"], "enabled": enabled}


@pytest.fixture
def config_dir(tmp_path: Path) -> Path:
    return write_config(tmp_path / "config", [_feed("alpha"), _feed("beta", enabled=False), _feed("gamma")])


def test_unknown_source_ids_are_refused_with_the_known_ids(config_dir: Path, tmp_path: Path) -> None:
    settings = load_settings(config_dir, env={"DWATCH_DATA_DIR": str(tmp_path / "data")})
    with pytest.raises(CrawlError) as error:
        run_crawl(settings, ["alpha", "nope", "typo"])
    assert str(error.value) == "unknown source id(s): nope, typo; known ids: alpha, beta, gamma"
    assert not (tmp_path / "data").exists()    # refused before touching the store


def test_sources_default_to_the_enabled_ones_and_named_ones_run_even_if_disabled(
    config_dir: Path, tmp_path: Path
) -> None:
    settings = load_settings(config_dir, env={"DWATCH_DATA_DIR": str(tmp_path / "data")})
    assert [s.id for s in select_sources(settings, None)] == ["alpha", "gamma"]
    assert [s.id for s in select_sources(settings, ["beta", "alpha", "beta"])] == ["beta", "alpha"]


def test_no_enabled_source_is_an_error(tmp_path: Path) -> None:
    config_dir = write_config(tmp_path / "config", [_feed("alpha", enabled=False)])
    settings = load_settings(config_dir, env={"DWATCH_DATA_DIR": str(tmp_path / "data")})
    with pytest.raises(CrawlError, match=r"no enabled source in .*sources\.yaml; add one or set 'enabled"):
        run_crawl(settings)


def test_a_broken_rules_file_stops_the_crawl_before_it_starts(tmp_path: Path) -> None:
    broken = tmp_path / "broken-rules.yaml"
    broken.write_text("version: 1\nscoring: [not, a, mapping]\n", encoding="utf-8")
    config_dir = write_config(tmp_path / "config", [_feed("alpha")], rules=broken)
    settings = load_settings(config_dir, env={"DWATCH_DATA_DIR": str(tmp_path / "data")})
    with pytest.raises(CrawlError, match=r"^cannot load the rules: .*rules\.yaml"):
        run_crawl(settings)


def test_the_run_fails_only_when_no_source_crawled_anything() -> None:
    ok = SourceRunStats(discovered=3, fetched=3)
    quiet = SourceRunStats()                                   # nothing new, no error
    broken = SourceRunStats(errors=1, first_error="feed x: HTTP 404 Not Found")
    partly = SourceRunStats(discovered=2, fetched=2, errors=1, first_error="article y: HTTP 404 Not Found")
    assert _run_status({"a": ok, "b": quiet}) == "ok"
    assert _run_status({"a": ok, "b": broken}) == "partial"
    assert _run_status({"a": partly}) == "partial"
    assert _run_status({"a": broken, "b": broken}) == "failed"
    assert _run_status({}) == "failed"


def test_scrapy_settings_are_polite_and_bounded() -> None:
    crawl = CrawlSettings(download_delay=3.0, download_timeout=20, download_maxsize=5_000_000,
                          concurrent_requests_per_domain=1, log_level="INFO")
    got = scrapy_settings(crawl)
    assert got["USER_AGENT"] == crawl.user_agent and "+https://" in got["USER_AGENT"]
    assert (got["ROBOTSTXT_OBEY"], got["AUTOTHROTTLE_ENABLED"], got["DOWNLOAD_DELAY"]) == (True, True, 3.0)
    assert (got["DOWNLOAD_TIMEOUT"], got["DOWNLOAD_MAXSIZE"]) == (20, 5_000_000)
    assert got["DOWNLOAD_WARNSIZE"] == 2_500_000
    assert got["CONCURRENT_REQUESTS_PER_DOMAIN"] == 1
    assert (got["RETRY_TIMES"], got["REDIRECT_MAX_TIMES"]) == (1, 5)
    assert (got["COOKIES_ENABLED"], got["TELNETCONSOLE_ENABLED"], got["REMOTE_CONTROL_ENABLED"]) == (
        False, False, False
    )
    assert got["LOG_LEVEL"] == "INFO" and got["LOG_INSTALL_ROOT_HANDLER"] is False
    assert got["REQUEST_FINGERPRINTER_CLASS"] == "crawler.fingerprint.CanonicalUrlFingerprinter"
    assert list(got["ITEM_PIPELINES"]) == [
        "crawler.pipelines.ArchivePipeline",
        "crawler.pipelines.AnalysePipeline",
        "crawler.pipelines.StorePipeline",
    ]
    assert got["DWATCH_ALLOW_PRIVATE_ADDRESSES"] is False
