from __future__ import annotations

from pathlib import Path

import pytest

from config import DEFAULT_CONFIG_DIR, ConfigError, load_settings, load_sources

GOOD = """\
sources:
  - id: wire-me
    name: Wire - Middle East
    kind: feed
    urls: ["https://news.example.org/me/rss.xml"]
    languages: [en, ar]
  - id: institute
    name: Institute publications
    kind: listing
    urls: ["https://institute.example.org/publications"]
    link_selector: "article.card a"
    follow_pages: 2
    enabled: false
"""


def write(tmp_path: Path, sources: str, settings: str | None = None) -> Path:
    (tmp_path / "sources.yaml").write_text(sources, encoding="utf-8")
    if settings is not None:
        (tmp_path / "settings.yaml").write_text(settings, encoding="utf-8")
    return tmp_path


def test_valid_config_loads_with_defaults(tmp_path: Path) -> None:
    settings = load_settings(write(tmp_path, GOOD), env={"DWATCH_DATA_DIR": str(tmp_path / "d")})
    assert [s.id for s in settings.sources] == ["wire-me", "institute"]
    assert [s.id for s in settings.enabled_sources()] == ["wire-me"]
    assert settings.sources[1].follow_pages == 2
    assert settings.data_dir == (tmp_path / "d").resolve()
    assert settings.database_url == f"sqlite:///{(tmp_path / 'd').resolve() / 'dwatch.sqlite3'}"
    assert settings.archive_dir == settings.data_dir / "archive"
    # no rules.yaml in the directory: the packaged rules apply
    assert settings.rules_path == DEFAULT_CONFIG_DIR / "rules.yaml"
    assert settings.crawl.obey_robots is True
    assert "contact" in settings.crawl.user_agent


def test_env_overrides_yaml(tmp_path: Path) -> None:
    write(tmp_path, GOOD, "data_dir: /srv/yaml-data\nlog_format: text\n")
    env = {
        "DWATCH_DATABASE_URL": "postgresql+psycopg://dw:secret@db/dw",
        "DWATCH_LOG_FORMAT": "json",
    }
    settings = load_settings(tmp_path, env=env)
    assert settings.data_dir == Path("/srv/yaml-data")
    assert settings.database_url.startswith("postgresql+psycopg://dw:secret@")
    assert settings.log_format == "json"
    assert settings.masked()["database_url"] == "postgresql+psycopg://dw:***@db/dw"


def test_typo_in_field_name_names_file_line_source_and_field(tmp_path: Path) -> None:
    bad = GOOD.replace("    languages: [en, ar]", "    langauges: [en, ar]")
    with pytest.raises(ConfigError) as info:
        load_settings(write(tmp_path, bad), env={})
    msg = str(info.value)
    assert f"{tmp_path / 'sources.yaml'}:6:" in msg
    assert "source 'wire-me'" in msg
    assert "field 'langauges'" in msg
    assert "unknown field" in msg
    assert "nothing was crawled" in msg


@pytest.mark.parametrize(
    ("old", "new", "line", "field", "hint"),
    [
        ("kind: feed", "kind: feeds", 4, "kind", "'feed', 'sitemap' or 'listing'"),
        ('"https://news.example.org/me/rss.xml"', '"news.example.org/rss"', 5, "urls",
         "not an absolute http(s) URL"),
        ("[en, ar]", "[english]", 6, "languages", "ISO 639-1"),
        ("follow_pages: 2", "follow_pages: many", 12, "follow_pages", "integer"),
        ("enabled: false", "enabled: sometimes", 13, "enabled", "boolean"),
    ],
)
def test_bad_values(tmp_path: Path, old: str, new: str, line: int, field: str, hint: str) -> None:
    assert old in GOOD
    with pytest.raises(ConfigError) as info:
        load_sources(write(tmp_path, GOOD.replace(old, new, 1)) / "sources.yaml")
    msg = str(info.value)
    assert f"sources.yaml:{line}:" in msg
    assert f"field '{field}'" in msg
    assert hint in msg


def test_listing_without_selector_and_duplicate_ids(tmp_path: Path) -> None:
    bad = GOOD.replace('    link_selector: "article.card a"\n', "").replace(
        "id: institute", "id: wire-me"
    )
    with pytest.raises(ConfigError) as info:
        load_sources(write(tmp_path, bad) / "sources.yaml")
    msg = str(info.value)
    assert "needs link_selector" in msg


def test_duplicate_ids(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="duplicate id"):
        load_sources(write(tmp_path, GOOD.replace("id: institute", "id: wire-me")) / "sources.yaml")


def test_broken_yaml_and_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"sources.yaml:\d+: not valid YAML"):
        load_sources(write(tmp_path, "sources:\n  - id: [unclosed\n") / "sources.yaml")
    with pytest.raises(ConfigError, match="file not found"):
        load_sources(tmp_path / "nope.yaml")


def test_unknown_setting_and_bad_crawl_value(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"settings.yaml:1: unknown setting 'datadir'"):
        load_settings(write(tmp_path, GOOD, "datadir: x\n"), env={})
    with pytest.raises(ConfigError, match=r"settings.yaml:2: crawl, field 'download_delay'"):
        load_settings(write(tmp_path, GOOD, "crawl:\n  download_delay: -1\n"), env={})


def test_shipped_default_sources_are_valid() -> None:
    settings = load_settings(DEFAULT_CONFIG_DIR, env={})
    langs = {lang for s in settings.sources for lang in s.languages}
    assert {"en", "ar", "fr", "de", "nl", "sv", "da", "no", "tr", "ru", "es", "it", "pt", "id"} <= langs
    kinds = {s.kind for s in settings.sources}
    assert kinds == {"feed", "sitemap", "listing"}
