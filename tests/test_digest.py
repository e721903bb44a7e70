"""The daily digest: content for a day with known candidates, escaping of hostile text, the Atom
feed read back with feedparser, and delivery to a real SMTP server (aiosmtpd) on 127.0.0.1."""

from __future__ import annotations

import asyncio
import email
import re
import threading
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from datetime import UTC, date, datetime, timedelta
from email.message import EmailMessage
from email.policy import default as default_policy
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import feedparser
import pytest
from click.testing import CliRunner
from sqlalchemy.orm import Session

from cli import main
from config import DEFAULT_CONFIG_DIR, Settings
from config.settings import SmtpSettings
from review import DigestError, write_digest
from review.feed import KEEP_DAYS
from store import open_session, queue, upgrade_database
from store.models import Candidate
from tests.store.pages import make_page, verdict

aiosmtpd_smtp = pytest.importorskip(
    "aiosmtpd.smtp", reason="aiosmtpd is missing: pip install -e '.[test]' to run the SMTP tests"
)

DAY = date(2024, 5, 1)
HOSTILE_TITLE = (
    "<script>alert('x')</script> [click me](javascript:alert(1)) **Ex-fighter** & co\x00"
    "\u202egnp.exe\n# not a heading"
)
HOSTILE_URL = 'https://evil.example/path?a=<b>&c="d"(e)'


# ---------------------------------------------------------------- store and settings


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    data = tmp_path / "data"
    data.mkdir()
    url = f"sqlite:///{data / 'dwatch.sqlite3'}"
    upgrade_database(url)
    return Settings(
        config_dir=DEFAULT_CONFIG_DIR, data_dir=data, database_url=url,
        archive_dir=data / "archive", rules_path=DEFAULT_CONFIG_DIR / "rules.yaml",
    )


def store_session(settings: Settings) -> AbstractContextManager[Session]:
    return open_session(settings.database_url)


def add_candidate(
    session: Session, url: str, *, title: str, queued: datetime, score: float = 0.8,
    lang: str = "en", source_id: str = "example-news", narratives: tuple[str, ...] = ("disillusionment",),
    explanation: str = "defection term near IS reference",
) -> int:
    """Queue one flagged page through the store API, then set when it was queued."""
    v = verdict(score)
    v.update(lang=lang, narratives=list(narratives), explanation=explanation)
    outcome = queue.record_page(session, make_page(
        url, title=title, score=score, lang=lang, source_id=source_id, verdict=v,
        narratives=narratives, published=datetime(2024, 4, 29, 9, tzinfo=UTC),
    ))
    assert outcome.candidate_id is not None
    session.get_one(Candidate, outcome.candidate_id).queued_at = queued
    session.commit()
    return outcome.candidate_id


def seed_day(settings: Settings) -> dict[str, int]:
    """Three candidates queued on DAY (one already accepted), and two that must not show."""
    with store_session(settings) as s:
        ids = {
            "top": add_candidate(s, "https://example.org/left", title="How I left the Islamic State",
                                 queued=datetime(2024, 5, 1, 6, 15, tzinfo=UTC), score=0.91,
                                 narratives=("disillusionment", "family")),
            "arabic": add_candidate(s, "https://example.net/ar/1", title="قصة منشق عن داعش",
                                    queued=datetime(2024, 5, 1, 23, 59, tzinfo=UTC), score=0.7,
                                    lang="ar", source_id="arab-news", narratives=()),
            "accepted": add_candidate(s, "https://example.org/escape", title="Escape from Raqqa",
                                      queued=datetime(2024, 5, 1, 0, 0, tzinfo=UTC), score=0.75),
            "yesterday": add_candidate(s, "https://example.org/old", title="Queued the day before",
                                       queued=datetime(2024, 4, 30, 23, 59, tzinfo=UTC)),
            "unflagged": add_candidate(s, "https://example.org/unflagged", title="No longer flagged",
                                       queued=datetime(2024, 5, 1, 12, tzinfo=UTC)),
        }
        queue.record_decision(s, ids["accepted"], "accept", by="tester")
        s.get_one(Candidate, ids["unflagged"]).status = "unflagged"
        s.commit()
    return ids


def smtp_settings(**fields: Any) -> SmtpSettings:
    return SmtpSettings(**fields)


def with_smtp(settings: Settings, smtp: SmtpSettings) -> Settings:
    return settings.model_copy(update={"smtp": smtp})  # as loaded from settings.yaml smtp:


# ---------------------------------------------------------------- content


def test_digest_lists_the_days_candidates_highest_score_first(settings: Settings) -> None:
    ids = seed_day(settings)
    generated = datetime(2024, 5, 2, 7, 0, tzinfo=UTC)

    result = write_digest(settings, DAY, send=False, now=generated)

    assert [item.candidate_id for item in result.items] == [ids["top"], ids["accepted"], ids["arabic"]]
    assert (result.sent, result.delivery) == (False, "not sent (--no-send)")
    digests = settings.data_dir / "digests"
    assert result.markdown_path == digests / "2024-05-01.md"
    assert result.html_path == digests / "2024-05-01.html"
    assert result.atom_path == digests / "atom.xml"

    md = result.markdown_path.read_text("utf-8")
    assert md.startswith("# defector-watch digest 2024-05-01\n\n"
                         "3 new candidates queued on 2024-05-01 (UTC), highest score first.\n")
    assert (
        "## 1. How I left the Islamic State\n\n"
        f"- candidate: #{ids['top']} (`dwatch show {ids['top']}`)\n"
        "- source: example\\-news\n"
        "- language: en\n"
        "- score: 0.91\n"
        "- narratives: disillusionment, family\n"
        "- published: 2024-04-29\n"
        "- URL: [https://example\\.org/left](https://example.org/left)\n"
        "- why: defection term near IS reference\n"
    ) in md
    assert f"## 2. Escape from Raqqa\n\n- candidate: #{ids['accepted']}" in md
    assert "- status: accepted\n" in md
    assert "## 3. قصة منشق عن داعش\n" in md
    assert "- source: arab\\-news\n- language: ar\n- score: 0.70\n- narratives: \\-\n" in md
    assert "Queued the day before" not in md and "No longer flagged" not in md
    assert md.endswith("Generated 2024-05-02 07:00 UTC by defector-watch.\n")

    page = result.html_path.read_text("utf-8")
    assert "<title>defector-watch digest 2024-05-01</title>" in page
    assert (f'<article id="candidate-{ids["top"]}"><h2 dir="auto">1. <a href="https://example.org/left" '
            'rel="noopener noreferrer nofollow">How I left the Islamic State</a></h2>') in page
    assert "<dt>narratives</dt><dd>disillusionment, family</dd>" in page
    assert "<dt>source</dt><dd>arab-news</dd><dt>language</dt><dd>ar</dd><dt>score</dt><dd>0.70</dd>" in page
    assert "Queued the day before" not in page


def test_a_day_without_candidates_still_gets_a_digest(settings: Settings) -> None:
    seed_day(settings)

    result = write_digest(settings, date(2024, 5, 5), send=False)

    assert result.items == ()
    assert "No new candidates were queued on 2024-05-05 (UTC)." in result.markdown_path.read_text("utf-8")
    assert "No new candidates were queued on 2024-05-05 (UTC)." in result.html_path.read_text("utf-8")


class _Tags(HTMLParser):
    """Every start tag with its attributes, and the text inside <h2>."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.h2: list[str] = []
        self._in_h2 = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))
        if tag == "h2":
            self._in_h2 = True
            self.h2.append("")

    def handle_endtag(self, tag: str) -> None:
        if tag == "h2":
            self._in_h2 = False

    def handle_data(self, data: str) -> None:
        if self._in_h2:
            self.h2[-1] += data


def test_hostile_title_and_url_are_escaped_in_markdown_and_html(settings: Settings) -> None:
    with store_session(settings) as s:
        cid = add_candidate(s, HOSTILE_URL, title=HOSTILE_TITLE, queued=datetime(2024, 5, 1, 9, tzinfo=UTC),
                            explanation="<img src=x onerror=alert(2)>")
    cleaned = ("<script>alert('x')</script> [click me](javascript:alert(1)) **Ex-fighter** & co "
               "gnp.exe # not a heading")

    result = write_digest(settings, DAY, send=False)

    md = result.markdown_path.read_text("utf-8")
    heading = next(line for line in md.splitlines() if line.startswith("## 1. "))
    assert heading == (
        "## 1. \\<script\\>alert\\('x'\\)\\</script\\> \\[click me\\]\\(javascript:alert\\(1\\)\\) "
        "\\*\\*Ex\\-fighter\\*\\* \\& co gnp\\.exe \\# not a heading"
    )
    assert re.sub(r"\\(.)", r"\1", heading.removeprefix("## 1. ")) == cleaned
    assert "\x00" not in md and "\u202e" not in md
    # the hostile URL is a link target only once percent-encoded: no raw <, >, quotes or parens
    assert "(https://evil.example/path?a=%3Cb%3E&c=%22d%22%28e%29)" in md
    assert "- why: \\<img src=x onerror=alert\\(2\\)\\>" in md

    page = result.html_path.read_text("utf-8")
    parser = _Tags()
    parser.feed(page)
    tags = {tag for tag, _ in parser.tags}
    assert tags == {"html", "head", "meta", "title", "style", "body", "h1", "p", "main", "article",
                    "h2", "a", "dl", "dt", "dd", "code", "span", "footer"}
    assert parser.h2 == [f"1. {cleaned}"]
    hrefs = [attrs["href"] for tag, attrs in parser.tags if tag == "a"]
    assert hrefs == ["https://evil.example/path?a=%3Cb%3E&c=%22d%22%28e%29"] * 2
    assert "&lt;img src=x onerror=alert(2)&gt;" in page
    assert f'id="candidate-{cid}"' in page


def test_a_page_url_that_is_not_http_is_shown_but_never_linked(settings: Settings) -> None:
    with store_session(settings) as s:
        add_candidate(s, "javascript:alert(document.cookie)", title="Odd link",
                      queued=datetime(2024, 5, 1, 9, tzinfo=UTC))

    result = write_digest(settings, DAY, send=False)

    assert "- URL: javascript:alert\\(document\\.cookie\\)\n" in result.markdown_path.read_text("utf-8")
    page = result.html_path.read_text("utf-8")
    assert "<dt>URL</dt><dd>javascript:alert(document.cookie)</dd>" in page
    assert 'href="javascript' not in page


# ---------------------------------------------------------------- Atom


def test_atom_feed_has_one_entry_per_candidate_with_stable_ids(settings: Settings) -> None:
    ids = seed_day(settings)
    with store_session(settings) as s:
        hostile = add_candidate(s, HOSTILE_URL, title=HOSTILE_TITLE,
                                queued=datetime(2024, 5, 1, 9, tzinfo=UTC), score=0.5)

    write_digest(settings, DAY, send=False)
    write_digest(settings, DAY, send=False)  # re-running a day replaces its entries

    feed = feedparser.parse(str(settings.data_dir / "digests" / "atom.xml"))
    assert feed.bozo == 0, feed.get("bozo_exception")
    assert feed.version == "atom10"
    assert feed.feed.title == "defector-watch: new candidates"
    assert feed.feed.id == "tag:defector-watch,2026:digest"
    assert feed.feed.updated == "2024-05-01T23:59:00Z"
    order = [ids["top"], ids["accepted"], ids["arabic"], hostile]
    assert [e.id for e in feed.entries] == [f"tag:defector-watch,2024-05-01:candidate-{i}" for i in order]
    assert [e.title for e in feed.entries] == [
        "How I left the Islamic State", "Escape from Raqqa", "قصة منشق عن داعش",
        "<script>alert('x')</script> [click me](javascript:alert(1)) **Ex-fighter** & co gnp.exe "
        "# not a heading",
    ]
    assert [e.link for e in feed.entries] == [
        "https://example.org/left", "https://example.org/escape", "https://example.net/ar/1",
        "https://evil.example/path?a=%3Cb%3E&c=%22d%22%28e%29",
    ]
    top = feed.entries[0]
    assert top.updated == "2024-05-01T06:15:00Z"
    assert [t.term for t in top.tags] == ["disillusionment", "family"]
    assert top.summary == (
        "score 0.91 · language en · source example-news · narratives: disillusionment, family · "
        f"published 2024-04-29 · candidate #{ids['top']}. Why: defection term near IS reference"
    )


def test_atom_feed_keeps_the_last_30_days_and_survives_backfills(settings: Settings) -> None:
    days = [DAY - timedelta(days=n) for n in (40, KEEP_DAYS, KEEP_DAYS - 1, 0)]
    with store_session(settings) as s:
        for n, day in enumerate(days):
            add_candidate(s, f"https://example.org/{n}", title=f"Story of {day}",
                          queued=datetime(day.year, day.month, day.day, 8, tzinfo=UTC))
    for day in days:
        write_digest(settings, day, send=False)
    path = settings.data_dir / "digests" / "atom.xml"
    titles = [e.title for e in feedparser.parse(str(path)).entries]
    assert titles == ["Story of 2024-05-01", "Story of 2024-04-02"]

    write_digest(settings, days[0], send=False)  # backfilling an old day leaves the window alone
    assert [e.title for e in feedparser.parse(str(path)).entries] == titles
    assert (settings.data_dir / "digests" / "2024-03-22.md").is_file()


def test_an_unreadable_feed_is_moved_aside_not_lost(settings: Settings) -> None:
    seed_day(settings)
    folder = settings.data_dir / "digests"
    folder.mkdir()
    (folder / "atom.xml").write_text("<feed><entry>half written", "utf-8")

    write_digest(settings, DAY, send=False)

    aside = list(folder.glob("atom.xml.unreadable-*"))
    assert len(aside) == 1 and aside[0].read_text("utf-8") == "<feed><entry>half written"
    assert len(feedparser.parse(str(folder / "atom.xml")).entries) == 3


# ---------------------------------------------------------------- SMTP


class Inbox:
    """An aiosmtpd handler that keeps what it receives."""

    def __init__(self) -> None:
        self.envelopes: list[tuple[str, list[str], bytes]] = []
        self.logins: list[tuple[bytes, bytes]] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.envelopes.append((envelope.mail_from, list(envelope.rcpt_tos), envelope.content))
        return "250 Message accepted for delivery"

    def authenticate(self, server: Any, session: Any, envelope: Any, mechanism: str, data: Any) -> Any:
        from aiosmtpd.smtp import AuthResult

        self.logins.append((data.login, data.password))
        return AuthResult(success=data.password == b"s3cret", handled=False)


@contextmanager
def smtp_server(*, with_auth: bool = False) -> Iterator[tuple[int, Inbox]]:
    """aiosmtpd's SMTP protocol served on 127.0.0.1, port 0, from an event loop in a thread."""
    inbox = Inbox()
    loop = asyncio.new_event_loop()
    ready = threading.Event()
    bound: dict[str, Any] = {}
    kwargs: dict[str, Any] = {"hostname": "digest-test.invalid"}
    if with_auth:
        kwargs.update(authenticator=inbox.authenticate, auth_require_tls=False)

    def serve() -> None:
        asyncio.set_event_loop(loop)
        server = loop.run_until_complete(loop.create_server(
            lambda: aiosmtpd_smtp.SMTP(inbox, **kwargs), "127.0.0.1", 0))
        bound["port"] = server.sockets[0].getsockname()[1]
        ready.set()
        loop.run_forever()
        server.close()
        loop.run_until_complete(server.wait_closed())
        loop.close()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    assert ready.wait(10), "the test SMTP server did not start"
    try:
        yield bound["port"], inbox
    finally:
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)


def _parts(raw: bytes) -> tuple[EmailMessage, str, str]:
    message = email.message_from_bytes(raw, policy=default_policy)
    assert isinstance(message, EmailMessage)
    assert message.get_content_type() == "multipart/alternative"
    text = message.get_body(("plain",))
    page = message.get_body(("html",))
    assert text is not None and page is not None
    # SMTP carries CRLF line ends; compare with the files' LF
    return message, text.get_content().replace("\r\n", "\n"), page.get_content().replace("\r\n", "\n")


def test_digest_is_mailed_as_text_and_html_to_every_recipient(settings: Settings) -> None:
    ids = seed_day(settings)
    with store_session(settings) as s:
        add_candidate(s, HOSTILE_URL, title=HOSTILE_TITLE, queued=datetime(2024, 5, 1, 9, tzinfo=UTC),
                      score=0.5)
    with smtp_server() as (port, inbox):
        smtp = smtp_settings(host="127.0.0.1", port=port, starttls=False, sender="dwatch@example.org",
                             recipients=["analyst@example.org", "lead@example.org"])
        result = write_digest(with_smtp(settings, smtp), DAY, send=True)

    assert result.sent is True
    assert result.recipients == ("analyst@example.org", "lead@example.org")
    assert result.delivery == "sent to analyst@example.org, lead@example.org"
    assert len(inbox.envelopes) == 1
    mail_from, rcpt_tos, raw = inbox.envelopes[0]
    assert (mail_from, rcpt_tos) == ("dwatch@example.org", ["analyst@example.org", "lead@example.org"])
    message, text, page = _parts(raw)
    assert message["Subject"] == "defector-watch digest 2024-05-01: 4 new candidates"
    assert message["From"] == "dwatch@example.org"
    assert message["To"] == "analyst@example.org, lead@example.org"
    assert (
        "1. How I left the Islamic State\n"
        f"   candidate #{ids['top']}  source example-news  language en  score 0.91\n"
        "   narratives: disillusionment, family\n"
        "   published: 2024-04-29\n"
        "   https://example.org/left\n"
    ) in text
    assert "4. <script>alert('x')</script> [click me]" in text  # plain text renders nothing
    assert page == result.html_path.read_text("utf-8")
    assert "<script>" not in page and "&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt;" in page


def test_smtp_login_uses_the_configured_user_and_password(settings: Settings) -> None:
    seed_day(settings)
    with smtp_server(with_auth=True) as (port, inbox):
        smtp = smtp_settings(host="127.0.0.1", port=port, starttls=False, user="dwatch",
                             password="s3cret", sender="dwatch@example.org", recipients=["a@example.org"])
        result = write_digest(with_smtp(settings, smtp), DAY, send=True)
        wrong = smtp_settings(host="127.0.0.1", port=port, starttls=False, user="dwatch",
                              password="nope", sender="dwatch@example.org", recipients=["a@example.org"])
        with pytest.raises(DigestError, match="refused the login .*DWATCH_SMTP_PASSWORD"):
            write_digest(with_smtp(settings, wrong), DAY, send=True)

    assert result.sent and inbox.logins[0] == (b"dwatch", b"s3cret")
    assert len(inbox.envelopes) == 1


def test_starttls_required_but_not_offered_fails_clearly_and_keeps_the_files(settings: Settings) -> None:
    seed_day(settings)
    with smtp_server() as (port, inbox):
        smtp = smtp_settings(host="127.0.0.1", port=port, starttls=True, sender="dwatch@example.org",
                             recipients=["analyst@example.org"])
        with pytest.raises(DigestError) as caught:
            write_digest(with_smtp(settings, smtp), DAY, send=True)

    assert str(caught.value) == (
        f"digest not sent: starting TLS (STARTTLS) with SMTP server 127.0.0.1:{port}: the server does "
        "not offer STARTTLS; use a server that does, or set smtp.starttls: false "
        "(DWATCH_SMTP_STARTTLS=false) only for a trusted local relay"
    )
    assert inbox.envelopes == []
    assert (settings.data_dir / "digests" / "2024-05-01.md").is_file()
    assert len(feedparser.parse(str(settings.data_dir / "digests" / "atom.xml")).entries) == 3


def test_send_without_smtp_settings_writes_the_files_and_says_why_nothing_was_sent(
    settings: Settings,
) -> None:
    seed_day(settings)

    result = write_digest(settings, DAY, send=True)

    assert result.sent is False
    assert result.delivery == "not sent: no SMTP settings (settings.yaml smtp: or DWATCH_SMTP_HOST)"


def test_dwatch_digest_command(settings: Settings) -> None:
    seed_day(settings)
    env = {"DWATCH_DATA_DIR": str(settings.data_dir), "DWATCH_DATABASE_URL": settings.database_url,
           "DWATCH_CONFIG_DIR": None, "DWATCH_SMTP_HOST": None}

    result = CliRunner().invoke(main, ["digest", "--date", "2024-05-01", "--no-send"], env=env)

    assert result.exit_code == 0, result.output
    digests = settings.data_dir / "digests"
    assert result.output == (
        f"digest 2024-05-01: 3 candidate(s)\n  {digests / '2024-05-01.md'}\n"
        f"  {digests / '2024-05-01.html'}\n  {digests / 'atom.xml'}\nnot sent (--no-send)\n"
    )
    bad = CliRunner().invoke(main, ["digest", "--date", "1 May"], env=env)
    assert bad.exit_code == 2 and "'1 May' does not match the format '%Y-%m-%d'" in bad.output


def test_dwatch_digest_sends_with_smtp_from_the_environment(settings: Settings) -> None:
    seed_day(settings)
    with smtp_server() as (port, inbox):
        env = {"DWATCH_DATA_DIR": str(settings.data_dir), "DWATCH_DATABASE_URL": settings.database_url,
               "DWATCH_CONFIG_DIR": None, "DWATCH_SMTP_HOST": "127.0.0.1", "DWATCH_SMTP_PORT": str(port),
               "DWATCH_SMTP_FROM": "dwatch@example.org", "DWATCH_SMTP_TO": "a@example.org, b@example.org",
               "DWATCH_SMTP_STARTTLS": "false", "DWATCH_SMTP_USER": None, "DWATCH_SMTP_PASSWORD": None}
        result = CliRunner().invoke(main, ["digest", "--date", "2024-05-01"], env=env)

    assert result.exit_code == 0, result.output
    assert result.output.endswith("sent to a@example.org, b@example.org\n")
    [(mail_from, rcpt_tos, raw)] = inbox.envelopes
    assert (mail_from, rcpt_tos) == ("dwatch@example.org", ["a@example.org", "b@example.org"])
    message, text, _ = _parts(raw)
    assert message["Subject"] == "defector-watch digest 2024-05-01: 3 new candidates"
    assert "1. How I left the Islamic State\n" in text and "3. قصة منشق عن داعش\n" in text
