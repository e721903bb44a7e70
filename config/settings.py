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
    # adaptive polling of feeds and sitemaps (crawler/polling.py): each document's interval
    # halves when it changed and grows 1.5x when it did not, within these bounds
    min_poll_minutes: Annotated[float, Field(ge=0, le=525600)] = 30
    max_poll_minutes: Annotated[float, Field(ge=0, le=525600)] = 1440
    force_poll: bool = False   # fetch every feed/sitemap now, due or not (`dwatch crawl --force`)

    @model_validator(mode="after")
    def _check_poll_bounds(self) -> CrawlSettings:
        if self.min_poll_minutes > self.max_poll_minutes:
            raise ValueError(
                f"min_poll_minutes ({self.min_poll_minutes:g}) is above max_poll_minutes "
                f"({self.max_poll_minutes:g}); set min_poll_minutes <= max_poll_minutes"
            )
        return self


def _check_http_url(url: str) -> str:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ValueError(f"{url!r} is not an absolute http(s) URL")
    return url


class BackfillSettings(_Strict):
    """settings.yaml `backfill:`: the services `dwatch backfill` asks and how politely."""

    wayback_cdx_url: str = "https://web.archive.org/cdx/search/cdx"
    wayback_replay_url: str = "https://web.archive.org/web/"
    wayback_delay: Annotated[float, Field(ge=0, le=600)] = 1.0      # seconds between CDX/replay requests
    wayback_page_size: Annotated[int, Field(ge=1, le=150000)] = 500  # CDX rows per request
    gdelt_url: str = "https://api.gdeltproject.org/api/v2/doc/doc"
    gdelt_queries: list[str] = Field(default_factory=list)
    gdelt_slice_days: Annotated[int, Field(ge=1, le=366)] = 7
    gdelt_delay: Annotated[float, Field(ge=0, le=600)] = 5.0
    ccnews_files: list[str] = Field(default_factory=list)          # CC-NEWS WARC paths or http(s) URLs
    ccnews_chunk_bytes: Annotated[int, Field(ge=1024)] = 16 * 1024 * 1024   # Range request size
    max_articles: Annotated[int, Field(ge=1)] = 5000                # per source and method

    @field_validator("wayback_cdx_url", "wayback_replay_url", "gdelt_url")
    @classmethod
    def _check_service_url(cls, value: str) -> str:
        return _check_http_url(value)

    @field_validator("gdelt_queries")
    @classmethod
    def _check_queries(cls, value: list[str]) -> list[str]:
        for query in value:
            if not query.strip():
                raise ValueError("an empty GDELT query; give keywords such as '\"islamic state\" defector'")
        return value


KEY_PREFIX = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}$")
REDIS_SCHEMES = ("redis", "rediss", "unix")


class FrontierSettings(_Strict):
    """settings.yaml `frontier:`: the crawl frontier shared by `dwatch worker` processes (Redis).

    Without `redis_url` (or DWATCH_REDIS_URL) there is no shared frontier: the scheduler runs
    `dwatch crawl` processes as before and `dwatch worker` refuses to start.
    """

    redis_url: str | None = None                                  # e.g. redis://127.0.0.1:6379/0
    key_prefix: str = "dwatch"                                    # every Redis key starts "<prefix>:"
    lease_seconds: Annotated[int, Field(ge=2, le=86400)] = 300    # a silent worker's requests go back
    idle_seconds: Annotated[float, Field(ge=0, le=86400)] = 30    # `dwatch worker --exit-when-idle`

    @field_validator("redis_url")
    @classmethod
    def _check_redis_url(cls, value: str | None) -> str | None:
        if value is None:
            return None
        parts = urlsplit(value)
        if parts.scheme not in REDIS_SCHEMES or not (parts.netloc or parts.path):
            raise ValueError(
                f"{masked_url(value)!r} is not a Redis URL; use redis://host:6379/0 "
                "(rediss:// for TLS, unix:///path/to/redis.sock)"
            )
        return value

    @field_validator("key_prefix")
    @classmethod
    def _check_prefix(cls, value: str) -> str:
        if not KEY_PREFIX.match(value):
            raise ValueError("use letters, digits, '_', '.', ':' or '-' (at most 64), e.g. 'dwatch'")
        return value


def masked_url(url: str) -> str:
    """`url` with the password of its user-info replaced by ***."""
    return re.sub(r"(://[^:/@]*:)[^@]+@", r"\1***@", url)


ARCHIVE_PLACEHOLDERS = ("page", "yyyy", "mm", "dd")
_PLACEHOLDER = re.compile(r"\{([^{}]*)\}")
HOST = re.compile(r"^[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)*(:\d+)?$")


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
    # dwatch backfill (empty: the defaults crawler/backfill/ derives from kind and urls)
    sitemaps: list[str] = Field(default_factory=list)          # sitemap / sitemap index URLs
    archive_urls: list[str] = Field(default_factory=list)      # listing/archive page URL templates
    wayback_prefixes: list[str] = Field(default_factory=list)  # URL prefixes for the Wayback CDX query
    hosts: list[str] = Field(default_factory=list)             # hosts whose CC-NEWS/GDELT articles are ours

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

    @field_validator("sitemaps")
    @classmethod
    def _check_sitemaps(cls, value: list[str]) -> list[str]:
        for url in value:
            _check_http_url(url)
        return value

    @field_validator("archive_urls")
    @classmethod
    def _check_archive_urls(cls, value: list[str]) -> list[str]:
        for template in value:
            names = _PLACEHOLDER.findall(template)
            unknown = [n for n in names if n not in ARCHIVE_PLACEHOLDERS]
            if unknown:
                raise ValueError(
                    f"{template!r}: unknown placeholder {{{unknown[0]}}}; use {{page}} (?page=N pagination) "
                    "or {yyyy}, {mm}, {dd} (date archives)"
                )
            if "{page}" in template and any(f"{{{n}}}" in template for n in ("yyyy", "mm", "dd")):
                raise ValueError(f"{template!r}: use either {{page}} or date placeholders, not both")
            _check_http_url(_PLACEHOLDER.sub("1", template))
        return value

    @field_validator("wayback_prefixes")
    @classmethod
    def _check_prefixes(cls, value: list[str]) -> list[str]:
        for prefix in value:
            if not prefix.strip() or any(c.isspace() for c in prefix):
                raise ValueError(f"{prefix!r}: give a URL prefix such as 'example.com/news/'")
        return value

    @field_validator("hosts")
    @classmethod
    def _check_hosts(cls, value: list[str]) -> list[str]:
        for host in value:
            if not HOST.match(host):
                raise ValueError(f"{host!r} is not a lower-case host name such as 'www.example.com'")
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


HHMM = re.compile(r"^([01]\d|2[0-3]):[0-5]\d$")


class ScheduleGroup(_Strict):
    """When one group of sources is crawled: a cron expression or a fixed interval, plus jitter."""

    cron: str | None = None
    every_minutes: Annotated[float, Field(gt=0)] | None = None
    every_seconds: Annotated[float, Field(gt=0)] | None = None
    jitter_seconds: Annotated[int, Field(ge=0, le=86400)] = 0
    sources: list[str] = Field(default_factory=list)

    @field_validator("cron")
    @classmethod
    def _check_cron(cls, value: str | None) -> str | None:
        if value is not None:
            from apscheduler.triggers.cron import CronTrigger

            try:
                CronTrigger.from_crontab(value, timezone="UTC")
            except ValueError as exc:
                raise ValueError(
                    f"{value!r} is not a 5-field cron expression such as '0 */6 * * *': {exc}"
                ) from exc
        return value

    @model_validator(mode="after")
    def _one_timing(self) -> ScheduleGroup:
        given = [n for n in ("cron", "every_minutes", "every_seconds") if getattr(self, n) is not None]
        if len(given) != 1:
            raise ValueError(
                "give exactly one of cron, every_minutes or every_seconds"
                + (f" (got {', '.join(given)})" if given else "")
            )
        return self

    @property
    def interval_seconds(self) -> float | None:
        if self.every_seconds is not None:
            return self.every_seconds
        return self.every_minutes * 60 if self.every_minutes is not None else None


class ScheduleSettings(_Strict):
    """settings.yaml `schedule:`; a source in no group is crawled on `default`."""

    default: ScheduleGroup = Field(
        default_factory=lambda: ScheduleGroup(every_minutes=360, jitter_seconds=300)
    )
    groups: dict[str, ScheduleGroup] = Field(default_factory=dict)
    misfire_grace_seconds: Annotated[int, Field(ge=1)] = 3600
    crawl_grace_seconds: Annotated[float, Field(ge=0)] = 120
    digest_at: str | None = "07:00"
    timezone: str = "UTC"
    heartbeat_seconds: Annotated[float, Field(gt=0, le=3600)] = 10

    @field_validator("groups")
    @classmethod
    def _check_groups(cls, value: dict[str, ScheduleGroup]) -> dict[str, ScheduleGroup]:
        owner: dict[str, str] = {}
        for name, group in value.items():
            if not SOURCE_ID.match(name) or name == "default":
                raise ValueError(f"group name {name!r}: use lower-case letters, digits, '-', '_' or "
                                 "'.' (and not 'default', which names the default schedule)")
            if not group.sources:
                raise ValueError(f"group {name!r} lists no sources")
            for source_id in group.sources:
                if source_id in owner:
                    raise ValueError(
                        f"source {source_id!r} is in groups {owner[source_id]!r} and {name!r}; "
                        "put each source in one group"
                    )
                owner[source_id] = name
        return value

    @field_validator("default")
    @classmethod
    def _check_default(cls, value: ScheduleGroup) -> ScheduleGroup:
        if value.sources:
            raise ValueError("the default schedule takes every source that is in no group; "
                             "list sources only under groups")
        return value

    @field_validator("digest_at")
    @classmethod
    def _check_digest_at(cls, value: str | None) -> str | None:
        if value is not None and not HHMM.match(value):
            raise ValueError(f"{value!r}: use HH:MM on a 24-hour clock, e.g. '07:00' (or null: no digest)")
        return value

    @field_validator("timezone")
    @classmethod
    def _check_timezone(cls, value: str) -> str:
        from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"{value!r} is not an IANA time zone such as 'UTC' or 'Europe/Berlin'") from exc
        return value

    def groups_for(self, source_ids: list[str]) -> dict[str, tuple[ScheduleGroup, list[str]]]:
        """{group name: (its timing, its sources among `source_ids`)}; "default" takes the rest."""
        out: dict[str, tuple[ScheduleGroup, list[str]]] = {}
        grouped: set[str] = set()
        for name, group in self.groups.items():
            members = [s for s in group.sources if s in source_ids]
            grouped.update(group.sources)
            if members:
                out[name] = (group, members)
        rest = [s for s in source_ids if s not in grouped]
        if rest:
            out["default"] = (self.default, rest)
        return out


class SmtpSettings(_Strict):
    """Where the daily digest is mailed (settings.yaml `smtp:`, then DWATCH_SMTP_* variables)."""

    host: str
    port: Annotated[int, Field(ge=1, le=65535)] = 587
    user: str | None = None
    password: str | None = None
    sender: str
    recipients: Annotated[list[str], Field(min_length=1)]
    starttls: bool = True

    @field_validator("sender", "recipients")
    @classmethod
    def _check_addresses(cls, value: str | list[str]) -> str | list[str]:
        for address in [value] if isinstance(value, str) else value:
            if "@" not in address or address.strip() != address or " " in address:
                raise ValueError(f"{address!r} is not an e-mail address such as 'desk@example.org'")
        return value


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
    schedule: ScheduleSettings = Field(default_factory=ScheduleSettings)
    smtp: SmtpSettings | None = None
    backfill: BackfillSettings = Field(default_factory=BackfillSettings)
    frontier: FrontierSettings = Field(default_factory=FrontierSettings)

    def enabled_sources(self) -> list[SourceConfig]:
        return [s for s in self.sources if s.enabled]

    def source(self, source_id: str) -> SourceConfig | None:
        return next((s for s in self.sources if s.id == source_id), None)

    def masked(self) -> dict[str, Any]:
        """The settings as plain data with secrets (database and SMTP passwords) masked."""
        data = self.model_dump(mode="json")
        data["database_url"] = re.sub(r"(://[^:/@]+:)[^@]+@", r"\1***@", self.database_url)
        if self.frontier.redis_url is not None:
            data["frontier"]["redis_url"] = masked_url(self.frontier.redis_url)
        if data.get("smtp") and data["smtp"].get("password"):
            data["smtp"]["password"] = "***"
        return data
