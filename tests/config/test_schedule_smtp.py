"""settings.yaml `schedule:` and `smtp:` (then DWATCH_SMTP_*): loaded, validated, masked."""

from __future__ import annotations

from pathlib import Path

import pytest

from config import ConfigError, load_settings

SOURCES = """\
sources:
  - id: wire-me
    name: Wire
    kind: feed
    urls: ["https://news.example.org/rss.xml"]
  - id: institute
    name: Institute
    kind: feed
    urls: ["https://institute.example.org/feed.xml"]
  - id: blog
    name: Blog
    kind: feed
    urls: ["https://blog.example.org/feed.xml"]
"""


def load(tmp_path: Path, settings: str, env: dict[str, str] | None = None):  # type: ignore[no-untyped-def]
    (tmp_path / "sources.yaml").write_text(SOURCES, encoding="utf-8")
    (tmp_path / "settings.yaml").write_text(settings, encoding="utf-8")
    return load_settings(tmp_path, env={"DWATCH_DATA_DIR": str(tmp_path / "d"), **(env or {})})


def test_schedule_defaults(tmp_path: Path) -> None:
    schedule = load(tmp_path, "log_format: text\n").schedule
    assert schedule.default.every_minutes == 360
    assert schedule.default.jitter_seconds == 300
    assert schedule.groups == {}
    assert (schedule.misfire_grace_seconds, schedule.crawl_grace_seconds) == (3600, 120)
    assert (schedule.digest_at, schedule.heartbeat_seconds, schedule.timezone) == ("07:00", 10, "UTC")


def test_groups_and_default_split_the_sources(tmp_path: Path) -> None:
    settings = load(tmp_path, """\
schedule:
  default: {every_minutes: 60, jitter_seconds: 30}
  groups:
    wires: {cron: "0 */6 * * *", jitter_seconds: 120, sources: [wire-me]}
    slow: {every_seconds: 2.5, sources: [institute]}
  crawl_grace_seconds: 5
""")
    groups = settings.schedule.groups_for([s.id for s in settings.sources])
    assert {name: members for name, (_, members) in groups.items()} == {
        "wires": ["wire-me"], "slow": ["institute"], "default": ["blog"],
    }
    assert groups["wires"][0].cron == "0 */6 * * *"
    assert groups["slow"][0].interval_seconds == 2.5
    assert groups["default"][0].interval_seconds == 3600
    assert settings.schedule.crawl_grace_seconds == 5


@pytest.mark.parametrize(
    ("schedule", "message"),
    [
        ("  groups:\n    g: {cron: '0 */6 * *', sources: [blog]}\n",
         "settings.yaml:4: schedule, field 'groups.g.cron': '0 */6 * *' is not a 5-field cron"),
        ("  groups:\n    g: {every_minutes: 5, cron: '0 * * * *', sources: [blog]}\n",
         "give exactly one of cron, every_minutes or every_seconds (got cron, every_minutes)"),
        ("  groups:\n    a: {every_minutes: 5, sources: [blog]}\n"
         "    b: {every_minutes: 9, sources: [blog]}\n",
         "source 'blog' is in groups 'a' and 'b'; put each source in one group"),
        ("  groups:\n    g: {every_minutes: 5, sources: [nope]}\n",
         "schedule, group 'g': unknown source id(s) nope; known ids: blog, institute, wire-me"),
        ("  digest_at: '7am'\n", "'7am': use HH:MM on a 24-hour clock"),
        ("  timezone: Mars/Olympus\n", "'Mars/Olympus' is not an IANA time zone"),
        ("  every_minutes: 5\n", "field 'every_minutes': unknown field (a typo?)"),
    ],
)
def test_bad_schedule_names_file_line_and_field(tmp_path: Path, schedule: str, message: str) -> None:
    with pytest.raises(ConfigError) as err:
        load(tmp_path, "# schedule\nschedule:\n" + schedule)
    assert message in str(err.value)
    assert str(tmp_path / "settings.yaml") in str(err.value)


def test_no_smtp_by_default(tmp_path: Path) -> None:
    assert load(tmp_path, "").smtp is None


def test_smtp_from_yaml_then_env(tmp_path: Path) -> None:
    yaml_text = """\
smtp:
  host: mail.example.org
  sender: watch@example.org
  recipients: [desk@example.org]
"""
    settings = load(tmp_path, yaml_text)
    assert settings.smtp is not None
    assert (settings.smtp.host, settings.smtp.port, settings.smtp.starttls) == ("mail.example.org", 587, True)
    assert settings.smtp.recipients == ["desk@example.org"]
    env = {
        "DWATCH_SMTP_HOST": "127.0.0.1", "DWATCH_SMTP_PORT": "2525", "DWATCH_SMTP_USER": "bot",
        "DWATCH_SMTP_PASSWORD": "s3cret", "DWATCH_SMTP_FROM": "bot@example.org",
        "DWATCH_SMTP_TO": "a@example.org, b@example.org", "DWATCH_SMTP_STARTTLS": "false",
        "DWATCH_DATABASE_URL": "postgresql+psycopg://dw:dbpass@db/dw",
    }
    settings = load(tmp_path, yaml_text, env)
    assert settings.smtp is not None
    assert settings.smtp.model_dump() == {
        "host": "127.0.0.1", "port": 2525, "user": "bot", "password": "s3cret",
        "sender": "bot@example.org", "recipients": ["a@example.org", "b@example.org"], "starttls": False,
    }
    masked = settings.masked()
    assert masked["smtp"]["password"] == "***"
    assert masked["database_url"] == "postgresql+psycopg://dw:***@db/dw"
    assert "s3cret" not in repr(masked) and "dbpass" not in repr(masked)


def test_smtp_env_only_and_its_errors(tmp_path: Path) -> None:
    env = {"DWATCH_SMTP_HOST": "127.0.0.1", "DWATCH_SMTP_FROM": "bot@example.org",
           "DWATCH_SMTP_TO": "desk@example.org"}
    smtp = load(tmp_path, "", env).smtp
    assert smtp is not None and (smtp.host, smtp.password) == ("127.0.0.1", None)
    with pytest.raises(ConfigError, match="DWATCH_SMTP_STARTTLS='maybe': use true or false"):
        load(tmp_path, "", {**env, "DWATCH_SMTP_STARTTLS": "maybe"})
    with pytest.raises(ConfigError, match="environment DWATCH_SMTP_TO: smtp, field 'recipients': "
                                          "'desk' is not an e-mail address"):
        load(tmp_path, "", {**env, "DWATCH_SMTP_TO": "desk"})
    with pytest.raises(ConfigError, match="smtp, field 'sender': required field is missing"):
        load(tmp_path, "", {"DWATCH_SMTP_HOST": "127.0.0.1", "DWATCH_SMTP_TO": "desk@example.org"})


def test_smtp_password_in_yaml_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as err:
        load(tmp_path, "smtp:\n  host: h\n  password: hunter2\n")
    assert "settings.yaml:3: smtp, field 'password': secrets are never read from YAML" in str(err.value)
    assert "DWATCH_SMTP_PASSWORD" in str(err.value)
