"""HTTP responses out of news WARC files (Common Crawl's CC-NEWS), filtered by host and date.

    select = WarcSelection(hosts=frozenset({"example.org"}), crawled_from=..., crawled_to=...)
    reader = WarcReader(handle, name="CC-NEWS-20150101.warc.gz", select=select)
    for response in reader.read(available=bytes_on_disk, final=download_finished):
        ...                              # a WarcResponse: URL, WARC-Date, status, headers, body
    reader.offset                        # every record before this byte offset was handled
    reader.problems                      # corrupt or truncated records, each with its offset

warcio's `ArchiveIterator` does the parsing (gzip per record or plain WARC). The reader never
holds more than one record's payload in memory: records of other hosts, outside the window,
of other types (request, metadata, revisit, ...) or not HTML are passed over without reading
their payload into memory, and a payload over ``max_body_bytes`` is counted and dropped.

A file that is still growing (a spool being downloaded) is read up to a known safe byte count,
``available``: reads never go past it. Call `read` again with a larger ``available`` as the file
grows, and with ``final=True`` once it is complete. A record is handed out only once it is known
to be complete; a record cut off by ``available`` is read again on the next call, from its own
offset (`offset`), so nothing is handed out twice and nothing is lost.

A corrupt record (unparsable headers, a broken gzip member, a payload shorter than its
Content-Length) is recorded in `problems` with the file name, its offset and what is wrong; the
reader then looks for the next record start (a gzip member header, or a ``WARC/1.x`` line in a
plain file) that warcio can parse, and carries on from there. A record cut short at the end of a
finished file (an interrupted download) is a problem too; every record before it is handed out.
"""

from __future__ import annotations

import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, BinaryIO

from warcio.archiveiterator import ArchiveIterator
from warcio.exceptions import ArchiveLoadFailed
from warcio.statusandheaders import StatusAndHeadersParserException

from extract.urls import site_host

__all__ = [
    "DEFAULT_MAX_BODY_BYTES",
    "WarcCounts",
    "WarcProblem",
    "WarcReader",
    "WarcResponse",
    "WarcSelection",
    "matching_host",
]

DEFAULT_MAX_BODY_BYTES = 16 * 1024 * 1024
HTML_TYPES = frozenset({"text/html", "application/xhtml+xml"})
_GZIP_MEMBER = b"\x1f\x8b\x08"
_PLAIN_RECORD = b"WARC/1."
_SCAN_BLOCK = 1024 * 1024
# what warcio raises on malformed input (a header without WARC-Target-URI gives AttributeError)
_PARSE_ERRORS = (ArchiveLoadFailed, StatusAndHeadersParserException, EOFError, zlib.error, ValueError,
                 AttributeError, TypeError)


@dataclass(frozen=True)
class WarcResponse:
    """One HTTP response record of a WARC file."""

    url: str                                 # WARC-Target-URI
    host: str                                # the configured host it matched (see `matching_host`)
    warc_date: datetime                      # WARC-Date: when it was crawled, tz-aware UTC
    status: int
    headers: tuple[tuple[str, str], ...]     # HTTP response headers, in order
    body: bytes                              # payload, chunking and Content-Encoding undone
    record_id: str                           # WARC-Record-ID, e.g. "<urn:uuid:...>"
    offset: int                              # where the record starts in the file
    length: int                              # its length in the file (compressed, when gzipped)

    @property
    def content_type(self) -> str | None:
        for name, value in self.headers:
            if name.lower() == "content-type":
                return value
        return None


@dataclass(frozen=True)
class WarcProblem:
    """A record that could not be read: which file, where, and what is wrong."""

    name: str
    offset: int
    detail: str

    def __str__(self) -> str:
        return f"WARC file {self.name}, record at byte offset {self.offset}: {self.detail}"


@dataclass(frozen=True)
class WarcSelection:
    """Which response records to hand out. Every bound is optional.

    ``hosts``: hosts as `extract.site_host` spells them (lower-case, no "www."); a record of
    one of them or of a subdomain is kept. ``crawled_from``/``crawled_to``: bounds (inclusive,
    tz-aware) on the record's WARC-Date, i.e. when the page was crawled. ``html_only``: pass
    over responses whose Content-Type is set and is not HTML. ``ok_only``: only 2xx answers.
    """

    hosts: frozenset[str] | None = None
    crawled_from: datetime | None = None
    crawled_to: datetime | None = None
    html_only: bool = True
    ok_only: bool = True
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES

    def __post_init__(self) -> None:
        for label, bound in (("crawled_from", self.crawled_from), ("crawled_to", self.crawled_to)):
            if bound is not None and bound.utcoffset() is None:
                raise ValueError(f"WarcSelection.{label} {bound.isoformat()} has no time zone; "
                                 "pass a tz-aware datetime")


@dataclass
class WarcCounts:
    """What the reader saw, per record (each record is counted once, however often re-read)."""

    records: int = 0          # every complete record: warcinfo, request, response, revisit, ...
    responses: int = 0        # of which response records
    kept: int = 0             # handed out
    revisits: int = 0         # revisit records (no payload of their own): passed over
    other_types: int = 0      # warcinfo, request, metadata, resource, conversion: passed over
    other_host: int = 0
    out_of_window: int = 0
    not_html: int = 0
    not_ok: int = 0           # HTTP status outside 2xx
    too_large: int = 0        # payload over max_body_bytes
    problems: int = 0         # corrupt or truncated records (see WarcReader.problems)


def matching_host(url_or_host: str, hosts: frozenset[str]) -> str | None:
    """The entry of ``hosts`` that ``url_or_host`` belongs to (itself or a parent domain), or None.

    The most specific entry wins: with {"example.org", "news.example.org"},
    "https://www.news.example.org/a" belongs to "news.example.org".
    """
    host = site_host(url_or_host if "://" in url_or_host else f"http://{url_or_host}/")
    while host:
        if host in hosts:
            return host
        _, dot, host = host.partition(".")
        if not dot:
            return None
    return None


class _Bounded:
    """A read-only view of ``stream`` from ``start`` that ends at byte ``end`` (EOF there).

    ``hit_end`` becomes True when a read asked for bytes at or beyond ``end``: only then can a
    record that looks cut short be waiting for data that is not on disk yet.
    """

    def __init__(self, stream: BinaryIO, start: int, end: int) -> None:
        self._stream = stream
        self._pos = start
        self._end = end
        self.hit_end = False

    def tell(self) -> int:
        return self._pos

    def read(self, size: int = -1) -> bytes:
        left = self._end - self._pos
        if size is None or size < 0 or size >= left:
            self.hit_end = True
            size = max(left, 0)
        if not size:
            return b""
        self._stream.seek(self._pos)      # the stream is shared (resync scans move it)
        data = self._stream.read(size)
        self._pos += len(data)
        return data


@dataclass
class _Parsed:
    offset: int
    end: int
    response: WarcResponse | None
    counted: WarcCounts
    truncated: str | None = None          # why the record is incomplete (resync after it)
    problem: str | None = None            # why a complete record is unusable (skip just it)
    url: str | None = None


@dataclass
class _State:
    offset: int
    scan_from: int | None = None          # after a corrupt record: look for a record start here
    gzip: bool | None = None
    problems: list[WarcProblem] = field(default_factory=list)


class WarcReader:
    """Reads the response records of one WARC file, possibly while it is still being written."""

    def __init__(self, stream: BinaryIO, *, name: str, start: int = 0,
                 select: WarcSelection | None = None) -> None:
        self.name = name
        self.select = select or WarcSelection()
        self.counts = WarcCounts()
        self._stream = stream
        self._state = _State(offset=start)

    @property
    def offset(self) -> int:
        """Byte offset up to which every record was handled; a new reader may start here."""
        return self._state.offset

    @property
    def problems(self) -> list[WarcProblem]:
        return list(self._state.problems)

    def read(self, available: int, *, final: bool) -> Iterator[WarcResponse]:
        """The kept responses among the complete records in bytes [offset, available).

        ``final``: the file ends at ``available`` (a record cut there is a problem, not a wait).
        """
        state = self._state
        while state.offset < available:
            if state.scan_from is not None:
                found = self._next_record_start(state.scan_from, available, final=final)
                if found is None:
                    return
                state.offset, state.scan_from = found, None
            bounded = _Bounded(self._stream, state.offset, available)
            records = ArchiveIterator(bounded)
            try:
                for record in records:
                    parsed = self._parse(record, records)
                    if parsed.truncated is not None:
                        if bounded.hit_end and not final:
                            return                      # the rest is not on disk yet
                        self._corrupt(parsed.offset, parsed.truncated, parsed.url)
                        break
                    if parsed.end >= available and not final:
                        return      # complete only if something follows it (a gzip trailer may be cut)
                    yield from self._confirm(parsed)
                else:
                    if state.offset < available:
                        if not final:
                            return
                        self._corrupt(state.offset, f"{available - state.offset} bytes at the end of "
                                      "the file are not a complete WARC record (the file was cut short?)")
                        state.offset, state.scan_from = available, None
                    return
            except _PARSE_ERRORS as exc:
                if bounded.hit_end and not final:
                    return
                self._corrupt(state.offset, _describe(exc))
            finally:
                records.close()

    # ------------------------------------------------------------ one record

    def _parse(self, record: Any, records: ArchiveIterator) -> _Parsed:
        counted = WarcCounts()
        response: WarcResponse | None = None
        truncated: str | None = None
        problem: str | None = None
        url: str | None = None
        if record.rec_type is None:
            truncated = "the WARC header is cut short"
        elif record.format != "warc":
            truncated = "not a WARC record"
        else:
            url = record.rec_headers.get_header("WARC-Target-URI")
            response, problem = self._select(record, counted)
        records.read_to_end(record)
        if truncated is None and _unread(record):
            truncated = (f"the payload ends {_unread(record)} bytes short of its Content-Length "
                         f"({record.length})")
            response, problem = None, None
        offset, length = records.get_record_offset(), records.get_record_length()
        end = int(records.offset)      # where the next record starts (after a plain file's blank lines)
        if truncated == "not a WARC record":
            first = self._first_line(offset)
            truncated = f"not a WARC record: it starts with {first!r}; is this a WARC file?"
        if self._state.gzip is None:
            self._state.gzip = records.reader.decompressor is not None
        if response is not None:
            response = _placed(response, offset, length)
        return _Parsed(offset, end, response, counted, truncated, problem, url)

    def _select(self, record: Any, counted: WarcCounts) -> tuple[WarcResponse | None, str | None]:
        """The response to hand out (or None, counted why), or why the record is unusable."""
        select = self.select
        counted.records = 1
        kind = record.rec_type
        if kind == "revisit":
            counted.revisits = 1
            return None, None
        if kind != "response":
            counted.other_types = 1
            return None, None
        counted.responses = 1
        headers = record.rec_headers
        url = str(headers.get_header("WARC-Target-URI") or "")
        raw_date = headers.get_header("WARC-Date")
        try:
            crawled = _warc_date(raw_date)
        except ValueError:
            what = url or "a record without WARC-Target-URI"
            return None, f"WARC-Date {raw_date!r} of {what} is not a date"
        host = matching_host(url, select.hosts) if select.hosts is not None else site_host(url)
        if not host:
            counted.other_host = 1
            return None, None
        if (select.crawled_from is not None and crawled < select.crawled_from) or (
            select.crawled_to is not None and crawled > select.crawled_to
        ):
            counted.out_of_window = 1
            return None, None
        http = record.http_headers
        if http is None:
            return None, f"response record of {url} has no HTTP headers"
        try:
            status = int(http.get_statuscode())
        except ValueError:
            return None, f"response record of {url} has no HTTP status: {http.statusline!r}"
        if select.ok_only and not 200 <= status < 300:
            counted.not_ok = 1
            return None, None
        content_type = http.get_header("Content-Type")
        if select.html_only and content_type and _media_type(content_type) not in HTML_TYPES:
            counted.not_html = 1
            return None, None
        body = record.content_stream().read(select.max_body_bytes + 1)
        if len(body) > select.max_body_bytes:
            counted.too_large = 1
            return None, None
        counted.kept = 1
        response = WarcResponse(
            url=url,
            host=host,
            warc_date=crawled,
            status=status,
            headers=tuple((str(k), str(v)) for k, v in http.headers),
            body=body,
            record_id=str(headers.get_header("WARC-Record-ID") or ""),
            offset=0,
            length=0,
        )
        return response, None

    def _confirm(self, parsed: _Parsed) -> Iterator[WarcResponse]:
        """A record known to be complete: count it, move the offset past it, hand it out."""
        for name in parsed.counted.__dataclass_fields__:
            setattr(self.counts, name, getattr(self.counts, name) + getattr(parsed.counted, name))
        self._state.offset = parsed.end
        if parsed.problem is not None:
            self._state.problems.append(WarcProblem(self.name, parsed.offset, parsed.problem))
            self.counts.problems += 1
        if parsed.response is not None:
            yield parsed.response

    def _first_line(self, offset: int) -> str:
        self._stream.seek(offset)
        line = self._stream.read(80).split(b"\n", 1)[0]
        return line.decode("ascii", "replace").strip()

    # ------------------------------------------------------------ corrupt records

    def _corrupt(self, offset: int, detail: str, url: str | None = None) -> None:
        where = f" ({url})" if url else ""
        self._state.problems.append(WarcProblem(self.name, offset, detail + where))
        self.counts.problems += 1
        self._state.offset = offset
        self._state.scan_from = offset + 1

    def _next_record_start(self, start: int, available: int, *, final: bool) -> int | None:
        """The first offset >= start where warcio parses a record; None: none yet (or none left)."""
        markers = [_GZIP_MEMBER] if self._state.gzip else [_PLAIN_RECORD]
        if self._state.gzip is None:
            markers = [_GZIP_MEMBER, _PLAIN_RECORD]
        pos = start
        while pos < available:
            self._stream.seek(pos)
            block = self._stream.read(min(_SCAN_BLOCK, available - pos))
            hits = [i for i in (block.find(m) for m in markers) if i >= 0]
            if not hits:
                if pos + len(block) >= available:
                    break
                pos += max(len(block) - len(_PLAIN_RECORD), 1)
                continue
            candidate = pos + min(hits)
            verdict = self._parses_at(candidate, available)
            if verdict is True:
                return candidate
            if verdict is None and not final:
                self._state.scan_from = candidate       # cannot tell yet: try again with more data
                return None
            pos = candidate + 1
        if final:
            self._state.offset, self._state.scan_from = available, None
        else:
            self._state.scan_from = max(start, available - len(_PLAIN_RECORD))
        return None

    def _parses_at(self, offset: int, available: int) -> bool | None:
        """Whether a record's headers parse at ``offset`` (None: the data ends before we know)."""
        bounded = _Bounded(self._stream, offset, available)
        records = ArchiveIterator(bounded)
        try:
            record = next(iter(records), None)
            ok = record is not None and record.rec_type is not None
        except _PARSE_ERRORS:
            ok = False
        finally:
            records.close()
        if not ok and bounded.hit_end:
            return None
        return ok


def _placed(response: WarcResponse, offset: int, length: int) -> WarcResponse:
    return WarcResponse(
        url=response.url, host=response.host, warc_date=response.warc_date, status=response.status,
        headers=response.headers, body=response.body, record_id=response.record_id,
        offset=offset, length=length,
    )


def _unread(record: Any) -> int:
    """Payload bytes the record declared but the file did not hold (0 when complete)."""
    return int(getattr(record.raw_stream, "limit", 0) or 0)


def _warc_date(value: str | None) -> datetime:
    if not value:
        raise ValueError("no WARC-Date")
    parsed = datetime.fromisoformat(value.strip())
    if parsed.utcoffset() is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC)


def _media_type(content_type: str) -> str:
    return content_type.split(";", 1)[0].strip().lower()


def _describe(exc: Exception) -> str:
    """warcio's message without the binary junk it quotes from a broken record."""
    text = " ".join(str(exc).split())
    printable = "".join(ch if ch.isprintable() and ord(ch) < 0x7F else "?" for ch in text)
    if len(printable) > 160:
        printable = printable[:160] + "..."
    return f"unreadable record ({type(exc).__name__}: {printable or 'no detail'}); skipped to the next record"
