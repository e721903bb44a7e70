"""Typed settings: YAML files in the config directory, then DWATCH_* environment variables."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

SOURCE_ID = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,63}$")
LANG_CODE = re.compile(r"^[a-z]{2,3}$")
DEFAULT_USER_AGENT = (
    "defector-watch/0.1 (+https://github.com/defector-watch/defector-watch; "
    "research crawler; contact: see URL)"
)


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class CrawlSettings(_Strict):
    """Politeness and limits for every crawl (Scrapy settings are built from these)."""

    user_agent: str = DEFAULT_USER_AGENT
    obey_robots: bool = True
    download_delay: Annotated[float, Field(ge=0, le=600)] = 2.0
    autothrottle: bool = True
    concurrent_requests_per_domain: Annotated[int, Field(ge=1, le=32)] = 2
    download_timeout: Annotated[int, Field(ge=1, le=600)] = 30
    download_maxsize: Annotated[int, Field(ge=1024)] = 10 * 1024 * 1024
    max_articles_per_source: Annotated[int, Field(ge=1)] = 200
    allow_private_addresses: bool = False
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "WARNING"


class SourceConfig(_Strict):
    """One configured source: where to discover articles and what to expect there."""

    id: str
    name: str
    kind: Literal["feed", "sitemap", "listing"]
    urls: Annotated[list[str], Field(min_length=1)]
    languages: list[str] = Field(default_factory=list)
    enabled: bool = True
    link_selector: str | None = None
    follow_pages: Annotated[int, Field(ge=0, le=100)] = 0
    allow_patterns: list[str] = Field(default_factory=list)
    deny_patterns: list[str] = Field(default_factory=list)
    max_articles: Annotated[int, Field(ge=1)] | None = None
    notes: str | None = None

    @field_validator("id")
    @classmethod
    def _check_id(cls, value: str) -> str:
        if not SOURCE_ID.match(value):
            raise ValueError(
                "use lower-case letters, digits, '-', '_' or '.', starting with a letter or digit"
            )
        return value

    @field_validator("urls")
    @classmethod
    def _check_urls(cls, value: list[str]) -> list[str]:
        for url in value:
            parts = urlsplit(url)
            if parts.scheme not in ("http", "https") or not parts.netloc:
                raise ValueError(f"{url!r} is not an absolute http(s) URL")
        return value

    @field_validator("languages")
    @classmethod
    def _check_languages(cls, value: list[str]) -> list[str]:
        for code in value:
            if not LANG_CODE.match(code):
                raise ValueError(f"{code!r} is not an ISO 639-1 code such as 'en' or 'ar'")
        return value

    @field_validator("allow_patterns", "deny_patterns")
    @classmethod
    def _check_patterns(cls, value: list[str]) -> list[str]:
        for pattern in value:
            try:
                re.compile(pattern)
            except re.error as exc:
                raise ValueError(f"{pattern!r} is not a valid regular expression: {exc}") from exc
        return value

    @model_validator(mode="after")
    def _check_kind_fields(self) -> SourceConfig:
        if self.kind == "listing" and not self.link_selector:
            raise ValueError("a listing source needs link_selector (a CSS selector for article links)")
        if self.kind != "listing" and (self.link_selector or self.follow_pages):
            raise ValueError("link_selector and follow_pages apply only to kind: listing")
        return self


class Settings(_Strict):
    """The effective configuration, passed explicitly to everything that needs it."""

    config_dir: Path
    data_dir: Path
    database_url: str
    archive_dir: Path
    rules_path: Path
    log_format: Literal["text", "json"] = "text"
    crawl: CrawlSettings = Field(default_factory=CrawlSettings)
    sources: list[SourceConfig] = Field(default_factory=list)

    def enabled_sources(self) -> list[SourceConfig]:
        return [s for s in self.sources if s.enabled]

    def source(self, source_id: str) -> SourceConfig | None:
        return next((s for s in self.sources if s.id == source_id), None)

    def masked(self) -> dict[str, Any]:
        """The settings as plain data with secrets (database passwords) masked."""
        data = self.model_dump(mode="json")
        data["database_url"] = re.sub(r"(://[^:/@]+:)[^@]+@", r"\1***@", self.database_url)
        return data
