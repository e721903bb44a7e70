"""The Atom 1.0 feed of the digests: one entry per candidate, the last 30 days of entries.

Entry ids are stable (``tag:defector-watch,<day>:candidate-<id>``) and ``updated`` is the
time the candidate was queued, so re-writing a day's digest changes nothing a feed reader
has already seen. The feed is merged: the day written replaces its own entries, other
days' entries are kept, anything older than 30 days before the newest day is dropped.
ElementTree escapes the text; ``clean_text`` removes what XML 1.0 cannot carry at all.
"""

from __future__ import annotations

import logging
import re
import xml.etree.ElementTree as ET
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

from review.render import clean_text, link_url

if TYPE_CHECKING:
    from review.digest import DigestItem

__all__ = ["ATOM_NS", "FEED_ID", "KEEP_DAYS", "FeedEntry", "entry_id", "merged_feed", "read_feed"]

logger = logging.getLogger(__name__)

ATOM_NS = "http://www.w3.org/2005/Atom"
FEED_ID = "tag:defector-watch,2026:digest"
KEEP_DAYS = 30
_ENTRY_ID = re.compile(r"^tag:defector-watch,(\d{4}-\d{2}-\d{2}):candidate-(\d+)$")
_A = "{" + ATOM_NS + "}"


@dataclass(frozen=True)
class FeedEntry:
    id: str
    day: date
    title: str
    link: str | None
    updated: datetime
    summary: str
    categories: tuple[str, ...] = ()


def entry_id(day: date, candidate_id: int) -> str:
    return f"tag:defector-watch,{day.isoformat()}:candidate-{candidate_id}"


def _summary(item: DigestItem) -> str:
    score = f"{item.score:.2f}" if item.score is not None else "-"
    parts = [
        f"score {score}",
        f"language {item.lang or '-'}",
        f"source {item.source_id}",
        f"narratives: {', '.join(item.narratives) or '-'}",
        f"published {item.published.date().isoformat() if item.published else '-'}",
        f"candidate #{item.candidate_id}",
    ]
    text = " · ".join(parts)
    if item.explanation:
        text += f". Why: {item.explanation}"
    return clean_text(text)


def entries_for(day: date, items: Sequence[DigestItem]) -> list[FeedEntry]:
    return [
        FeedEntry(
            id=entry_id(day, item.candidate_id),
            day=day,
            title=clean_text(item.title) or "(no title)",
            # Atom wants an alternate link on an entry without content: a page that is not
            # http(s) gets the entry of the day's HTML digest instead.
            link=link_url(item.url) or f"{day.isoformat()}.html#candidate-{item.candidate_id}",
            updated=item.queued_at.astimezone(UTC),
            summary=_summary(item),
            categories=tuple(clean_text(n) for n in item.narratives if clean_text(n)),
        )
        for item in items
    ]


def read_feed(path: Path) -> list[FeedEntry]:
    """The entries of a feed this module wrote; an unreadable file is moved aside, not lost."""
    if not path.exists():
        return []
    try:
        root = ET.parse(path).getroot()
    except ET.ParseError as exc:
        aside = path.with_name(f"{path.name}.unreadable-{datetime.now(UTC):%Y%m%dT%H%M%S}")
        path.replace(aside)
        logger.warning("feed %s is not valid XML (%s); moved it to %s and started afresh",
                       path, exc, aside)
        return []
    entries = []
    for node in root.iter(f"{_A}entry"):
        ident = (node.findtext(f"{_A}id") or "").strip()
        match = _ENTRY_ID.match(ident)
        updated_text = (node.findtext(f"{_A}updated") or "").strip()
        try:
            day = date.fromisoformat(match.group(1)) if match else None
            updated = datetime.fromisoformat(updated_text.replace("Z", "+00:00"))
        except ValueError:
            day = None
        if day is None:
            logger.warning("feed %s: dropping an entry with id %r (not one of ours)", path, ident)
            continue
        link = node.find(f"{_A}link")
        entries.append(
            FeedEntry(
                id=ident,
                day=day,
                title=node.findtext(f"{_A}title") or "",
                link=link.get("href") if link is not None else None,
                updated=updated if updated.tzinfo else updated.replace(tzinfo=UTC),
                summary=node.findtext(f"{_A}summary") or "",
                categories=tuple(c.get("term", "") for c in node.findall(f"{_A}category")),
            )
        )
    return entries


def _stamp(value: datetime) -> str:
    return value.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def _render(entries: Sequence[FeedEntry], newest: date) -> str:
    feed = ET.Element("feed", {"xmlns": ATOM_NS})
    ET.SubElement(feed, "id").text = FEED_ID
    ET.SubElement(feed, "title", {"type": "text"}).text = "defector-watch: new candidates"
    ET.SubElement(feed, "subtitle", {"type": "text"}).text = (
        "Newly queued accounts of people who quit the Islamic State, one entry per candidate"
    )
    fallback = datetime.combine(newest, time.min, tzinfo=UTC)
    ET.SubElement(feed, "updated").text = _stamp(max((e.updated for e in entries), default=fallback))
    ET.SubElement(ET.SubElement(feed, "author"), "name").text = "defector-watch"
    ET.SubElement(feed, "generator").text = "defector-watch"
    ET.SubElement(feed, "link", {"rel": "alternate", "type": "text/html",
                                 "href": f"{newest.isoformat()}.html"})
    for entry in entries:
        node = ET.SubElement(feed, "entry")
        ET.SubElement(node, "id").text = entry.id
        ET.SubElement(node, "title", {"type": "text"}).text = entry.title
        ET.SubElement(node, "updated").text = _stamp(entry.updated)
        if entry.link:
            ET.SubElement(node, "link", {"rel": "alternate", "href": entry.link})
        for term in entry.categories:
            ET.SubElement(node, "category", {"term": term})
        ET.SubElement(node, "summary", {"type": "text"}).text = entry.summary
    ET.indent(feed)
    return '<?xml version="1.0" encoding="utf-8"?>\n' + ET.tostring(feed, encoding="unicode") + "\n"


def merged_feed(path: Path, day: date, items: Sequence[DigestItem]) -> str:
    """The feed at ``path`` with ``day``'s entries replaced by ``items``, as XML text."""
    kept = [e for e in read_feed(path) if e.day != day] + entries_for(day, items)
    newest = max([e.day for e in kept] + [day])
    window = [e for e in kept if e.day > newest - timedelta(days=KEEP_DAYS)]
    window.sort(key=lambda e: e.day, reverse=True)  # stable: a day keeps its score order
    return _render(window, newest)
