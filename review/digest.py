"""The daily digest: the day's new candidates as Markdown, HTML, an Atom feed and an e-mail.

``write_digest(settings, day, send=...)`` reads the candidates queued on ``day`` (a UTC
calendar day) through ``store.queue``, writes ``<data_dir>/digests/<day>.md`` and ``.html``,
merges them into ``<data_dir>/digests/atom.xml`` (the last 30 days of entries) and, when
``send`` is true and ``settings.smtp`` is configured, mails the digest (plain text + HTML).

Every crawled value (title, URL, explanation, ...) is hostile input: the renderers in
``review/render.py`` and ``review/feed.py`` escape it for their format.
"""

from __future__ import annotations

import logging
import os
import tempfile
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from config import Settings
from review.errors import DigestError
from review.feed import merged_feed
from review.mail import send_digest, subject_line
from review.render import render_html, render_markdown, render_text
from store import StoreError, open_session
from store import queue as store_queue
from store.records import QueueQuery

__all__ = ["DigestItem", "DigestResult", "digest_dir", "gather_candidates", "write_digest"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class DigestItem:
    """One candidate as the digest shows it (the fields `dwatch queue` and `dwatch show` print)."""

    candidate_id: int
    title: str | None
    source_id: str
    lang: str | None
    score: float | None
    narratives: tuple[str, ...]
    url: str
    status: str
    published: datetime | None
    queued_at: datetime
    explanation: str | None = None


@dataclass(frozen=True)
class DigestResult:
    """What ``write_digest`` wrote and whether the e-mail went out."""

    day: date
    items: tuple[DigestItem, ...]
    markdown_path: Path
    html_path: Path
    atom_path: Path
    sent: bool
    recipients: tuple[str, ...]
    delivery: str                # one line for the operator: "sent to ...", "not sent: ..."


def digest_dir(settings: Settings) -> Path:
    return Path(settings.data_dir) / "digests"


def _parse_time(value: Any) -> datetime | None:
    if value is None:
        return None
    parsed = value if isinstance(value, datetime) else datetime.fromisoformat(str(value))
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)


def gather_candidates(session: Session, day: date) -> list[DigestItem]:
    """The candidates queued on ``day`` (UTC) and still flagged, highest score first.

    A candidate a researcher has already decided on is still listed (with its status): the
    digest reports what was found that day. Candidates no longer flagged after a re-score are
    left out.
    """
    items = []
    day_query = QueueQuery(dates="queued", since=day, until=day, limit=None)
    for row in store_queue.iter_export(session, day_query):
        queued = _parse_time(row["queued_at"])
        if queued is None or row["status"] == "unflagged":
            continue
        narratives = tuple(n for n in str(row.get("narratives") or "").split("; ") if n)
        items.append(
            DigestItem(
                candidate_id=int(row["candidate_id"]),
                title=row["title"],
                source_id=str(row["source_id"]),
                lang=row["lang"],
                score=row["score"],
                narratives=narratives,
                url=str(row["url"]),
                status=str(row["status"]),
                published=_parse_time(row["published"]),
                queued_at=queued,
                explanation=row.get("explanation") or None,
            )
        )
    items.sort(key=lambda i: (-(i.score or 0.0), i.candidate_id))
    return items


def _read_candidates(settings: Settings, day: date) -> list[DigestItem]:
    where = settings.masked()["database_url"]
    try:
        with open_session(settings.database_url) as session:
            return gather_candidates(session, day)
    except StoreError as exc:
        raise DigestError(f"digest for {day}: store {where}: {exc}") from exc
    except SQLAlchemyError as exc:
        raise DigestError(
            f"digest for {day}: cannot read the queue from {where}: {exc.__class__.__name__}: "
            f"{exc.args[0] if exc.args else exc}. Run `dwatch db upgrade` if the schema is missing."
        ) from exc


def write_atomically(path: Path, text: str) -> None:
    """Replace ``path`` with ``text`` in one step (a reader never sees half a file)."""
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as handle:
            handle.write(text)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_digest(
    settings: Settings, day: date, *, send: bool, now: datetime | None = None
) -> DigestResult:
    """Write the digest of ``day`` and, if ``send`` and SMTP is configured, e-mail it.

    Files are written first (re-running for the same day replaces them and that day's feed
    entries); a failed delivery then raises ``DigestError`` with the files already on disk.
    """
    items = tuple(_read_candidates(settings, day))
    generated = now or datetime.now(UTC)
    folder = digest_dir(settings)
    try:
        folder.mkdir(parents=True, exist_ok=True)
        md_path = folder / f"{day.isoformat()}.md"
        html_path = folder / f"{day.isoformat()}.html"
        html = render_html(day, items, generated)
        write_atomically(md_path, render_markdown(day, items, generated))
        write_atomically(html_path, html)
        atom_path = folder / "atom.xml"
        write_atomically(atom_path, merged_feed(atom_path, day, items))
    except OSError as exc:
        raise DigestError(
            f"digest for {day}: cannot write to {folder}: {exc.strerror or exc}; "
            "check DWATCH_DATA_DIR and that the directory is writable"
        ) from exc
    logger.info("digest %s: %d candidate(s) written to %s", day, len(items), folder)

    smtp = settings.smtp
    sent = False
    recipients: tuple[str, ...] = ()
    if not send:
        delivery = "not sent (--no-send)"
    elif smtp is None:
        delivery = "not sent: no SMTP settings (settings.yaml smtp: or DWATCH_SMTP_HOST)"
    else:
        recipients = send_digest(smtp, subject_line(day, items), render_text(day, items, generated), html)
        sent = True
        delivery = f"sent to {', '.join(recipients)}"
    return DigestResult(
        day=day,
        items=items,
        markdown_path=md_path,
        html_path=html_path,
        atom_path=atom_path,
        sent=sent,
        recipients=recipients,
        delivery=delivery,
    )
