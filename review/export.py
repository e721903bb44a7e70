"""Exports of a queue selection for researchers: CSV, JSON Lines, CSL-JSON and RIS.

    with open("accepted.ris", "w", encoding="utf-8", newline="") as out:
        write_export(queue.iter_export(session, QueueQuery(status="accepted", limit=None)), "ris", out)

Rows are the flat dicts of ``store.queue.iter_export``. CSL-JSON and RIS carry what a reference
manager (Zotero) needs: title, outlet, publication date, URL and the day the crawler fetched the
archived copy, plus a note naming the candidate, its status, score, rules and WARC record, so a
citation keeps its provenance. Every writer streams: rows are read and written one at a time.

Crawled text is hostile: line breaks are collapsed wherever a format is line-based, CSV cells
that a spreadsheet would run as a formula are quoted, and JSON escapes the line separators
that line-splitting readers break on. Pure: no store, no network.
"""

from __future__ import annotations

import csv
import json
import logging
import re
import unicodedata
from collections.abc import Callable, Iterable, Iterator
from datetime import date, datetime
from typing import IO, Any

logger = logging.getLogger(__name__)

__all__ = [
    "EXPORT_FORMATS",
    "csl_item",
    "filename",
    "media_type",
    "parse_authors",
    "provenance_note",
    "ris_record",
    "write_export",
]

EXPORT_FORMATS = ("csv", "jsonl", "csl-json", "ris")

_MEDIA_TYPES = {
    "csv": "text/csv",
    "jsonl": "application/x-ndjson",
    "csl-json": "application/vnd.citationstyles.csl+json",
    "ris": "application/x-research-info-systems",
}
_SUFFIXES = {"csv": ".csv", "jsonl": ".jsonl", "csl-json": ".json", "ris": ".ris"}

# a spreadsheet runs a cell starting with one of these as a formula (OWASP: CSV injection)
_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
# characters json.dumps leaves raw that str.splitlines() and JavaScript treat as line ends
_JSON_LINE_BREAKS = {"\u0085": "\\u0085", "\u2028": "\\u2028", "\u2029": "\\u2029"}
_RIS_EOL = "\r\n"
# name parts that say "not a person": kept whole as a literal name
_NOT_A_PERSON = frozenset({
    "agency", "agencies", "bureau", "correspondent", "correspondents", "desk", "editor", "editors",
    "editorial", "news", "reporter", "reporters", "staff", "team", "writer", "writers",
})
_NAME_SUFFIXES = frozenset({"jr", "jr.", "sr", "sr.", "ii", "iii", "iv"})
_NAME_TOKEN = re.compile(r"^[^\W\d_][\w.'\u2019-]*$")
_AUTHOR_SEPARATORS = re.compile(r"\s*;\s*|\s+(?:and|&)\s+", re.IGNORECASE)
_BY_PREFIX = re.compile(r"^by\s+", re.IGNORECASE)


def _check_format(fmt: str) -> None:
    if fmt not in EXPORT_FORMATS:
        raise ValueError(f"unknown export format {fmt!r}; use one of {', '.join(EXPORT_FORMATS)}")


def media_type(fmt: str) -> str:
    """The Content-Type of an export in ``fmt``."""
    _check_format(fmt)
    return _MEDIA_TYPES[fmt]


def filename(fmt: str, stem: str) -> str:
    """``stem`` with the file suffix of ``fmt`` (for Content-Disposition)."""
    _check_format(fmt)
    return stem + _SUFFIXES[fmt]


def write_export(rows: Iterable[dict[str, Any]], fmt: str, out: IO[str]) -> int:
    """Write ``rows`` to ``out`` in ``fmt`` (one of EXPORT_FORMATS); returns the records written.

    ``out`` should be opened with ``newline=""`` where the platform translates line ends
    (CSV and RIS write CRLF themselves).
    """
    _check_format(fmt)
    writers: dict[str, Callable[[Iterator[dict[str, Any]], IO[str]], int]] = {
        "csv": _write_csv,
        "jsonl": _write_jsonl,
        "csl-json": _write_csl_json,
        "ris": _write_ris,
    }
    return writers[fmt](iter(rows), out)


# ------------------------------------------------------------------------------ CSV, JSONL

def _write_csv(rows: Iterator[dict[str, Any]], out: IO[str]) -> int:
    first = next(rows, None)
    if first is None:
        return 0
    columns = list(first)
    writer = csv.writer(out, lineterminator="\r\n")  # RFC 4180
    writer.writerow(columns)
    count = 0
    for row in _chain(first, rows):
        extra = [key for key in row if key not in first]
        if extra:
            raise ValueError(
                f"CSV export: candidate {row.get('candidate_id')} has field(s) {extra} that the "
                f"header (taken from the first row) lacks; export rows of one shape"
            )
        writer.writerow([_csv_cell(row.get(key)) for key in columns])
        count += 1
    return count


def _chain(first: dict[str, Any], rest: Iterator[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    yield first
    yield from rest


def _csv_cell(value: Any) -> str | int | float:
    if value is None:
        return ""
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, int | float):
        return value
    if isinstance(value, list | tuple | dict):
        text = _json(value)
    elif isinstance(value, date | datetime):
        text = value.isoformat()
    else:
        text = str(value)
    return "'" + text if text.startswith(_FORMULA_STARTS) else text


def _json_default(value: Any) -> Any:
    if isinstance(value, date | datetime):
        return value.isoformat()
    if isinstance(value, tuple | set | frozenset):
        return list(value)
    raise TypeError(f"cannot export a value of type {type(value).__name__} as JSON: {value!r}")


def _json(value: Any) -> str:
    text = json.dumps(value, ensure_ascii=False, default=_json_default)
    for raw, escaped in _JSON_LINE_BREAKS.items():
        text = text.replace(raw, escaped)  # only ever inside JSON strings, where the escape is valid
    return text


def _write_jsonl(rows: Iterator[dict[str, Any]], out: IO[str]) -> int:
    count = 0
    for row in rows:
        out.write(_json(row) + "\n")
        count += 1
    return count


# ------------------------------------------------------------------------------ CSL-JSON

def _write_csl_json(rows: Iterator[dict[str, Any]], out: IO[str]) -> int:
    """One JSON array, written item by item."""
    count = 0
    for row in rows:
        out.write(("[\n" if count == 0 else ",\n") + _json(csl_item(row)))
        count += 1
    out.write("\n]\n" if count else "[]\n")
    return count


def csl_item(row: dict[str, Any]) -> dict[str, Any]:
    """The CSL-JSON item (CSL 1.0.2 input data) of one export row."""
    item: dict[str, Any] = {"id": f"dwatch-{row['candidate_id']}", "type": "article-newspaper"}
    title = _clean(row.get("title"))
    if title:
        item["title"] = title
    outlet = _outlet(row)
    if outlet:
        item["container-title"] = outlet
    authors = parse_authors(row.get("author"))
    if authors:
        item["author"] = authors
    for variable, key in (("issued", "published"), ("accessed", "fetched_at")):
        value = _csl_date(row.get(key))
        if value:
            item[variable] = value
    url = _url(row)
    if url:
        item["URL"] = url
    lang = _clean(row.get("lang"))
    if lang:
        item["language"] = lang
    note = _clean(row.get("decision_note"))
    if note:
        item["abstract"] = note
    item["note"] = provenance_note(row)
    return item


def _csl_date(value: Any) -> dict[str, Any] | None:
    if value is None or value == "":
        return None
    day = _day(value)
    if day is None:  # keep what the store holds rather than dropping it
        return {"literal": _clean(value)}
    return {"date-parts": [[day.year, day.month, day.day]]}


# ------------------------------------------------------------------------------ RIS

def _write_ris(rows: Iterator[dict[str, Any]], out: IO[str]) -> int:
    count = 0
    for row in rows:
        out.write(ris_record(row) + _RIS_EOL)  # a blank line between records
        count += 1
    return count


def ris_record(row: dict[str, Any]) -> str:
    """One RIS record (TY .. ER) of an export row, CRLF line ends, one line per value."""
    lines = [("TY", "NEWS"), ("ID", f"dwatch-{row['candidate_id']}")]
    lines.append(("TI", _clean(row.get("title"))))
    lines.append(("T2", _outlet(row)))
    for name in parse_authors(row.get("author")):
        if "literal" in name:
            lines.append(("AU", name["literal"]))
        else:
            lines.append(("AU", f"{name['family']}, {name['given']}"))
    published = row.get("published")
    day = _day(published) if published else None
    if day is not None:
        lines += [("PY", f"{day.year:04d}"), ("DA", f"{day:%Y/%m/%d}")]
    elif published:
        lines.append(("DA", _clean(published)))
    fetched = row.get("fetched_at")
    fetched_day = _day(fetched) if fetched else None
    lines.append(("Y2", f"{fetched_day:%Y/%m/%d}" if fetched_day else _clean(fetched)))
    lines.append(("UR", _url(row)))
    lines.append(("LA", _clean(row.get("lang"))))
    lines.append(("AB", _clean(row.get("decision_note"))))
    lines.append(("N1", provenance_note(row)))
    body = [f"{tag}  - {value}" for tag, value in lines if value]
    return _RIS_EOL.join([*body, "ER  - "]) + _RIS_EOL


# ------------------------------------------------------------------------------ shared fields

def provenance_note(row: dict[str, Any]) -> str:
    """Where a citation came from: candidate, status, score, rules version and WARC record."""
    score = row.get("score")
    score_text = "none" if score is None else f"{float(score):.3f}".rstrip("0").rstrip(".")
    return _clean(
        f"defector-watch candidate {row.get('candidate_id')}; status {row.get('status') or 'none'}; "
        f"score {score_text}; rules {row.get('rules_version') or 'none'}; "
        f"archived WARC record {row.get('archive_record_id') or 'none'}"
    )


def parse_authors(value: Any) -> list[dict[str, str]]:
    """CSL names from a byline: ``[{"family", "given"}]``, or ``{"literal"}`` when unsure.

    Several authors may be separated by ";", " and ", "&" or ","; a comma splits only when every
    part looks like a full name (so "Smith, John" stays one name). A name is split into given and
    family names only when it is 2 to 4 capitalised words of a cased script; anything else (an
    agency, "Staff reporter", an Arabic-script name, a suffix) is kept whole as a literal.
    """
    text = _BY_PREFIX.sub("", _clean(value))
    if not text:
        return []
    names: list[str] = []
    for part in _AUTHOR_SEPARATORS.split(text):
        pieces = [p.strip() for p in part.split(",")]
        if len(pieces) > 1 and all(len(p.split()) >= 2 for p in pieces):
            names += pieces
        elif part.strip(" ,"):
            names.append(part.strip(" ,"))
    return [_name(name) for name in names]


def _name(text: str) -> dict[str, str]:
    tokens = text.split()
    if not 2 <= len(tokens) <= 4:
        return {"literal": text}
    for token in tokens:
        if (
            not _NAME_TOKEN.match(token)
            or not token[0].isupper()
            or token.lower() in _NOT_A_PERSON
            or token.lower() in _NAME_SUFFIXES
        ):
            return {"literal": text}
    return {"family": tokens[-1], "given": " ".join(tokens[:-1])}


def _outlet(row: dict[str, Any]) -> str:
    return _clean(row.get("sitename")) or _clean(row.get("source_id"))


def _url(row: dict[str, Any]) -> str:
    return _clean(row.get("final_url")) or _clean(row.get("url"))


def _day(value: Any) -> date | None:
    """The calendar day of an ISO 8601 date or timestamp (the store writes UTC); None if unparsable."""
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    try:
        return datetime.fromisoformat(str(value).strip()).date()
    except ValueError:
        return None


def _clean(value: Any) -> str:
    """``value`` as one line: control characters dropped, every run of whitespace one space."""
    if value is None:
        return ""
    if isinstance(value, date | datetime):
        return value.isoformat()
    text = "".join(" " if unicodedata.category(ch) == "Cc" else ch for ch in str(value))
    return " ".join(text.split())
