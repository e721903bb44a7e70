"""Build Settings from the YAML files of a config directory and the environment."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

from pydantic import ValidationError

from config.errors import ConfigError
from config.settings import (
    BackfillSettings,
    CrawlSettings,
    FrontierSettings,
    ScheduleSettings,
    Settings,
    SmtpSettings,
    SourceConfig,
)
from config.yamlfile import LocatedYaml, read_yaml

DEFAULT_CONFIG_DIR = Path(__file__).resolve().parent

_SETTINGS_KEYS = {"data_dir", "log_format", "crawl", "rules_file", "schedule", "smtp", "backfill", "frontier"}
_SMTP_ENV = {
    "host": "DWATCH_SMTP_HOST",
    "port": "DWATCH_SMTP_PORT",
    "user": "DWATCH_SMTP_USER",
    "password": "DWATCH_SMTP_PASSWORD",
    "sender": "DWATCH_SMTP_FROM",
    "recipients": "DWATCH_SMTP_TO",
    "starttls": "DWATCH_SMTP_STARTTLS",
}
_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


def _describe(err: Mapping[str, Any]) -> str:
    msg = str(err.get("msg", "invalid value"))
    if err.get("type") == "extra_forbidden":
        return "unknown field (a typo?)"
    if err.get("type") == "missing":
        return "required field is missing"
    return msg.removeprefix("Value error, ")


def _format_errors(
    doc: LocatedYaml, exc: ValidationError, prefix: tuple[Any, ...], label: str
) -> list[str]:
    out = []
    for err in exc.errors():
        loc = tuple(err["loc"])
        field = ".".join(str(p) for p in loc) or "(whole entry)"
        line = doc.line_of((*prefix, *loc))
        where = f"{doc.path}:{line}" if line else str(doc.path)
        value = err.get("input")
        shown = f" (got {value!r})" if err.get("type") != "missing" and not isinstance(
            value, dict | list
        ) else ""
        out.append(f"{where}: {label}, field '{field}': {_describe(err)}{shown}")
    return out


def load_sources(path: Path) -> list[SourceConfig]:
    """Validate every source in `path`; one bad entry fails the whole file with all problems."""
    doc = read_yaml(path)
    data = doc.data
    if not isinstance(data, dict) or "sources" not in data:
        raise ConfigError(f"{path}: expected a top-level 'sources:' list of source entries.")
    unknown = set(data) - {"sources"}
    if unknown:
        raise ConfigError(
            f"{path}:{doc.line_of((sorted(unknown)[0],))}: unknown top-level key "
            f"{sorted(unknown)[0]!r}; only 'sources:' is allowed here."
        )
    entries = data["sources"] or []
    if not isinstance(entries, list):
        raise ConfigError(f"{path}:{doc.line_of(('sources',))}: 'sources' must be a list.")
    problems: list[str] = []
    sources: list[SourceConfig] = []
    seen: dict[str, int] = {}
    for index, entry in enumerate(entries):
        line = doc.line_of(("sources", index))
        if not isinstance(entry, dict):
            problems.append(f"{path}:{line}: source #{index + 1} must be a mapping of fields.")
            continue
        label = f"source {entry.get('id')!r}" if entry.get("id") else f"source #{index + 1}"
        try:
            source = SourceConfig.model_validate(entry)
        except ValidationError as exc:
            problems.extend(_format_errors(doc, exc, ("sources", index), label))
            continue
        if source.id in seen:
            problems.append(
                f"{path}:{line}: {label}, field 'id': duplicate id (first used on line "
                f"{seen[source.id]}); give each source its own id."
            )
            continue
        seen[source.id] = line or 0
        sources.append(source)
    if problems:
        raise ConfigError(
            "invalid source configuration; nothing was crawled:\n  " + "\n  ".join(problems)
        )
    return sources


def _settings_file(config_dir: Path) -> dict[str, Any]:
    doc = read_yaml(config_dir / "settings.yaml", required=False)
    data = doc.data or {}
    if not isinstance(data, dict):
        raise ConfigError(f"{doc.path}: expected a mapping of settings.")
    unknown = sorted(set(data) - _SETTINGS_KEYS)
    if unknown:
        raise ConfigError(
            f"{doc.path}:{doc.line_of((unknown[0],))}: unknown setting {unknown[0]!r}; "
            f"known settings: {', '.join(sorted(_SETTINGS_KEYS))}."
        )
    if "crawl" in data:
        try:
            data["crawl"] = CrawlSettings.model_validate(data["crawl"] or {})
        except ValidationError as exc:
            raise ConfigError(
                "invalid settings:\n  "
                + "\n  ".join(_format_errors(doc, exc, ("crawl",), "crawl"))
            ) from exc
    if "schedule" in data:
        try:
            data["schedule"] = ScheduleSettings.model_validate(data["schedule"] or {})
        except ValidationError as exc:
            raise ConfigError(
                "invalid settings:\n  "
                + "\n  ".join(_format_errors(doc, exc, ("schedule",), "schedule"))
            ) from exc
        data["schedule_line"] = doc.line_of(("schedule",))
    if "backfill" in data:
        try:
            data["backfill"] = BackfillSettings.model_validate(data["backfill"] or {})
        except ValidationError as exc:
            raise ConfigError(
                "invalid settings:\n  "
                + "\n  ".join(_format_errors(doc, exc, ("backfill",), "backfill"))
            ) from exc
    if "frontier" in data:
        data["frontier"] = _frontier_file_settings(doc, data["frontier"])
    smtp = data.get("smtp")
    if smtp is not None and not isinstance(smtp, dict):
        raise ConfigError(f"{doc.path}:{doc.line_of(('smtp',))}: 'smtp' must be a mapping of fields.")
    if isinstance(smtp, dict) and "password" in smtp:
        raise ConfigError(
            f"{doc.path}:{doc.line_of(('smtp', 'password'))}: smtp, field 'password': secrets are "
            "never read from YAML; remove it and set DWATCH_SMTP_PASSWORD instead."
        )
    data["smtp_doc"] = doc
    return data


def _frontier_file_settings(doc: LocatedYaml, raw: Any) -> FrontierSettings:
    """settings.yaml `frontier:`, validated; a Redis password there is refused (secrets: env only)."""
    if raw is not None and not isinstance(raw, dict):
        raise ConfigError(f"{doc.path}:{doc.line_of(('frontier',))}: 'frontier' must be a mapping of fields.")
    url = (raw or {}).get("redis_url")
    if isinstance(url, str) and urlsplit(url).password:
        raise ConfigError(
            f"{doc.path}:{doc.line_of(('frontier', 'redis_url'))}: frontier, field 'redis_url': secrets are "
            "never read from YAML; remove the password and set DWATCH_REDIS_URL "
            "(e.g. redis://:PASSWORD@host:6379/0) instead."
        )
    try:
        return FrontierSettings.model_validate(raw or {})
    except ValidationError as exc:
        raise ConfigError(
            "invalid settings:\n  " + "\n  ".join(_format_errors(doc, exc, ("frontier",), "frontier"))
        ) from exc


def _frontier_settings(file_settings: dict[str, Any], env: Mapping[str, str]) -> FrontierSettings:
    """settings.yaml `frontier:`, then DWATCH_REDIS_URL (which may carry a password)."""
    frontier: FrontierSettings = file_settings.get("frontier") or FrontierSettings()
    url = env.get("DWATCH_REDIS_URL")
    if not url:
        return frontier
    try:
        return FrontierSettings.model_validate({**frontier.model_dump(), "redis_url": url})
    except ValidationError as exc:
        raise ConfigError(
            f"environment DWATCH_REDIS_URL: {_describe(exc.errors()[0])}"
        ) from exc


def _smtp_settings(file_settings: dict[str, Any], env: Mapping[str, str]) -> SmtpSettings | None:
    """settings.yaml `smtp:` overlaid with DWATCH_SMTP_*; None when neither sets anything."""
    raw: dict[str, Any] = dict(file_settings.get("smtp") or {})
    from_env: set[str] = set()
    for field, name in _SMTP_ENV.items():
        value = env.get(name)
        if value is None or value == "":
            continue
        from_env.add(field)
        if field == "recipients":
            raw[field] = [part.strip() for part in value.split(",") if part.strip()]
        elif field == "starttls":
            if value.lower() not in _TRUE | _FALSE:
                raise ConfigError(f"{name}={value!r}: use true or false.")
            raw[field] = value.lower() in _TRUE
        else:
            raw[field] = value
    if not raw:
        return None
    try:
        return SmtpSettings.model_validate(raw)
    except ValidationError as exc:
        problems = []
        doc: LocatedYaml = file_settings["smtp_doc"]
        for err in exc.errors():
            field = ".".join(str(p) for p in err["loc"]) or "(whole entry)"
            top = str(err["loc"][0]) if err["loc"] else ""
            if top in from_env:
                where = f"environment {_SMTP_ENV[top]}"
            else:
                line = doc.line_of(("smtp", *err["loc"]))
                env_name = _SMTP_ENV.get(top, "DWATCH_SMTP_*")
                where = f"{doc.path}:{line}" if line else f"{doc.path} or {env_name}"
            value = err.get("input")
            hidden = err.get("type") == "missing" or isinstance(value, dict) or top == "password"
            shown = "" if hidden else f" (got {value!r})"
            problems.append(f"{where}: smtp, field '{field}': {_describe(err)}{shown}")
        raise ConfigError(
            "invalid SMTP settings (settings.yaml smtp: / DWATCH_SMTP_*):\n  " + "\n  ".join(problems)
        ) from exc


def _check_schedule(schedule: ScheduleSettings, sources: list[SourceConfig], where: str) -> None:
    known = {s.id for s in sources}
    for name, group in schedule.groups.items():
        unknown = [sid for sid in group.sources if sid not in known]
        if unknown:
            raise ConfigError(
                f"{where}: schedule, group {name!r}: unknown source id(s) {', '.join(unknown)}; "
                f"known ids: {', '.join(sorted(known)) or '(none)'}."
            )


def load_settings(
    config_dir: Path | None = None, env: Mapping[str, str] | None = None
) -> Settings:
    """The effective settings: YAML in `config_dir`, then DWATCH_* variables in `env`.

    Raises ConfigError naming the file, line, source and field of the first problem found.
    """
    env = os.environ if env is None else env
    if config_dir is None:
        config_dir = Path(env.get("DWATCH_CONFIG_DIR") or DEFAULT_CONFIG_DIR)
    config_dir = config_dir.resolve()
    if not config_dir.is_dir():
        raise ConfigError(f"{config_dir}: config directory not found (--config / DWATCH_CONFIG_DIR).")
    file_settings = _settings_file(config_dir)
    data_dir = Path(env.get("DWATCH_DATA_DIR") or file_settings.get("data_dir") or "data")
    data_dir = data_dir.expanduser().resolve()
    database_url = env.get("DWATCH_DATABASE_URL") or f"sqlite:///{data_dir / 'dwatch.sqlite3'}"
    rules_path = config_dir / str(file_settings.get("rules_file", "rules.yaml"))
    if not rules_path.is_file() and config_dir != DEFAULT_CONFIG_DIR:
        rules_path = DEFAULT_CONFIG_DIR / "rules.yaml"
    raw_format = env.get("DWATCH_LOG_FORMAT") or file_settings.get("log_format") or "text"
    log_format: Literal["text", "json"]
    if raw_format == "text":
        log_format = "text"
    elif raw_format == "json":
        log_format = "json"
    else:
        raise ConfigError(f"DWATCH_LOG_FORMAT={raw_format!r}: use 'text' or 'json'.")
    sources = load_sources(config_dir / "sources.yaml")
    schedule = file_settings.get("schedule") or ScheduleSettings()
    line = file_settings.get("schedule_line")
    _check_schedule(schedule, sources, f"{config_dir / 'settings.yaml'}:{line}" if line else str(config_dir))
    return Settings(
        config_dir=config_dir,
        data_dir=data_dir,
        database_url=database_url,
        archive_dir=data_dir / "archive",
        rules_path=rules_path,
        log_format=log_format,
        crawl=file_settings.get("crawl") or CrawlSettings(),
        sources=sources,
        schedule=schedule,
        smtp=_smtp_settings(file_settings, env),
        backfill=file_settings.get("backfill") or BackfillSettings(),
        frontier=_frontier_settings(file_settings, env),
    )
