"""The raw-response archive: WARC/1.1 files, one gzip member per record (warcio).

Each fetch is written as a ``response`` record (WARC-Target-URI = the final URL, WARC-Date =
when it was fetched, WARC-Requested-URI = the URL first requested when a redirect changed it)
followed by a ``request`` record that points back at it with WARC-Concurrent-To. Files rotate
at ``max_bytes`` and are named ``dwatch-<UTC timestamp>-<pid>-<n>.warc.gz``, so several
processes can write to one directory; each record is flushed and fsync'ed, so a killed crawl
leaves every completed record readable.

What the body is: the body Scrapy handed the crawler, i.e. already decoded (Scrapy's
HttpCompressionMiddleware undoes Content-Encoding; Twisted undoes chunking). To keep such a
record honest for other WARC tools, a Content-Encoding or Transfer-Encoding header is stored as
``X-Dwatch-Orig-Content-Encoding`` / ``X-Dwatch-Orig-Transfer-Encoding`` and the record carries
``WARC-Dwatch-Payload: decoded``. ``read`` restores the headers, so it returns the response
exactly as the crawler had it.
"""

from __future__ import annotations

import http
import io
import logging
import os
import threading
import uuid
import zlib
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path, PurePosixPath
from types import TracebackType
from typing import IO, Any
from urllib.parse import urlsplit

from warcio.archiveiterator import ArchiveIterator
from warcio.exceptions import ArchiveLoadFailed
from warcio.statusandheaders import StatusAndHeaders
from warcio.warcwriter import WARCWriter

from store.errors import ArchiveError
from store.records import ArchivedResponse, ArchiveRef, FetchRecord

__all__ = ["DEFAULT_MAX_BYTES", "WarcArchive", "iter_records"]

logger = logging.getLogger(__name__)

DEFAULT_MAX_BYTES = 100 * 1024 * 1024
PAYLOAD_HEADER = "WARC-Dwatch-Payload"
_RENAMED = {
    "content-encoding": "X-Dwatch-Orig-Content-Encoding",
    "transfer-encoding": "X-Dwatch-Orig-Transfer-Encoding",
}
_RESTORED = {new.lower(): old for old, new in (
    ("Content-Encoding", _RENAMED["content-encoding"]),
    ("Transfer-Encoding", _RENAMED["transfer-encoding"]),
)}


class _ExactHeaders(StatusAndHeaders):  # type: ignore[misc]  # warcio ships no types
    """HTTP headers written as given (UTF-8), not %-encoded, so they read back identical."""

    def compute_headers_buffer(self, header_filter: Any = None) -> None:
        self.headers_buff = self.to_bytes(header_filter, "utf-8")


class WarcArchive:
    """Append-only WARC archive in ``directory`` (created on first write)."""

    def __init__(
        self, directory: Path, *, max_bytes: int = DEFAULT_MAX_BYTES, fsync: bool = True
    ) -> None:
        self.directory = Path(directory)
        self.max_bytes = max_bytes
        self.fsync = fsync
        self._lock = threading.Lock()
        self._file: IO[bytes] | None = None
        self._path: Path | None = None
        self._writer: Any = None
        self._count = 0

    # ------------------------------------------------------------ writing

    def write(self, fetch: FetchRecord) -> ArchiveRef:
        """Archive one fetch; the returned ref locates its response record."""
        _check(fetch)
        with self._lock:
            out, writer, path = self._open()
            offset = out.tell()
            try:
                response = self._response_record(writer, fetch)
                writer.write_record(response)
                length = out.tell() - offset
                record_id = str(response.rec_headers.get_header("WARC-Record-ID"))
                writer.write_record(self._request_record(writer, fetch, record_id))
                out.flush()
                if self.fsync:
                    os.fsync(out.fileno())
            except OSError as exc:
                # the file may end in a partial record now: later records go to a new file
                self._close_file()
                raise ArchiveError(
                    f"cannot archive {fetch.final_url} in {path}: {exc}; check free disk space "
                    "and permissions of the archive directory"
                ) from exc
            if out.tell() >= self.max_bytes:
                self._close_file()
        return ArchiveRef(
            path=path.relative_to(self.directory).as_posix(),
            offset=offset,
            length=length,
            record_id=record_id,
        )

    def close(self) -> None:
        with self._lock:
            self._close_file()

    def __enter__(self) -> WarcArchive:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def _open(self) -> tuple[IO[bytes], Any, Path]:
        if self._file is not None and self._path is not None:
            return self._file, self._writer, self._path
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise ArchiveError(
                f"cannot create the archive directory {self.directory}: {exc}; "
                "set DWATCH_DATA_DIR to a writable place"
            ) from exc
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
        while True:
            path = self.directory / f"dwatch-{stamp}-{os.getpid()}-{self._count:05d}.warc.gz"
            self._count += 1
            try:
                out = path.open("xb")
            except FileExistsError:
                continue
            except OSError as exc:
                raise ArchiveError(f"cannot create the WARC file {path}: {exc}") from exc
            break
        writer = WARCWriter(out, gzip=True, warc_version="1.1")
        info = writer.create_warcinfo_record(
            path.name, {"software": "defector-watch", "format": "WARC File Format 1.1"}
        )
        writer.write_record(info)
        self._file, self._writer, self._path = out, writer, path
        logger.info("archiving to %s", path)
        return out, writer, path

    def _close_file(self) -> None:
        file, self._file, self._writer, self._path = self._file, None, None, None
        if file is not None:
            try:
                file.close()
            except OSError as exc:  # the data was already flushed (and fsync'ed) or reported
                logger.warning("closing WARC file %s failed: %s", file.name, exc)

    @staticmethod
    def _response_record(writer: Any, fetch: FetchRecord) -> Any:
        try:
            phrase = http.HTTPStatus(fetch.status).phrase
        except ValueError:
            phrase = ""
        headers = [(_RENAMED.get(k.lower(), k), v) for k, v in fetch.headers]
        http_headers = _ExactHeaders(
            f"{fetch.status} {phrase}".strip(), headers, protocol="HTTP/1.1"
        )
        warc_headers = _warc_headers(writer, "response", fetch)
        warc_headers[PAYLOAD_HEADER] = "decoded"
        if fetch.requested_url != fetch.final_url:
            warc_headers["WARC-Requested-URI"] = fetch.requested_url
        return writer.create_warc_record(
            fetch.final_url,
            "response",
            payload=io.BytesIO(fetch.body),
            length=len(fetch.body),
            warc_headers_dict=warc_headers,
            http_headers=http_headers,
        )

    @staticmethod
    def _request_record(writer: Any, fetch: FetchRecord, response_id: str) -> Any:
        parts = urlsplit(fetch.final_url)
        target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        http_headers = _ExactHeaders(
            f"{target} HTTP/1.1", list(fetch.request_headers), protocol="GET"
        )
        return writer.create_warc_record(
            fetch.final_url,
            "request",
            warc_headers_dict={
                **_warc_headers(writer, "request", fetch),
                "WARC-Concurrent-To": response_id,
            },
            http_headers=http_headers,
        )

    # ------------------------------------------------------------ reading

    def read(self, ref: ArchiveRef) -> ArchivedResponse:
        """The response stored at ``ref``, exactly as it was archived."""
        path = self._resolve(ref.path)
        try:
            with path.open("rb") as handle:
                handle.seek(ref.offset)
                data = handle.read(ref.length)
        except OSError as exc:
            raise ArchiveError(f"cannot read WARC file {path}: {exc}") from exc
        where = f"{ref.path} at offset {ref.offset}"
        if len(data) < ref.length:
            raise ArchiveError(
                f"WARC record {where} is truncated: {len(data)} of {ref.length} bytes on disk"
            )
        try:
            records = ArchiveIterator(io.BytesIO(data))
            record = next(iter(records), None)
            if record is None or record.rec_type != "response":
                raise ArchiveError(f"no WARC response record at {where}")
            found = record.rec_headers.get_header("WARC-Record-ID")
            if found != ref.record_id:
                raise ArchiveError(
                    f"WARC record at {where} is {found}, expected {ref.record_id}; "
                    "the archive file was changed after the database recorded it"
                )
            response = _response(record, ref)
            if _unread(record):
                raise ArchiveError(f"WARC record {where} is truncated inside its payload")
            return response
        except (ArchiveLoadFailed, EOFError, zlib.error, ValueError) as exc:
            raise ArchiveError(f"cannot parse WARC record {where}: {exc}") from exc

    def iter_records(self, path: str | Path) -> Iterator[ArchivedResponse]:
        """Every response record of one WARC file of this archive (``path`` relative to it)."""
        full = self._resolve(str(path)) if not Path(path).is_absolute() else Path(path)
        yield from iter_records(full, relative_to=self.directory)

    def _resolve(self, relative: str) -> Path:
        pure = PurePosixPath(relative)
        if pure.is_absolute() or ".." in pure.parts:
            raise ArchiveError(
                f"archive path {relative!r} must be relative to the archive directory "
                f"{self.directory} and stay inside it"
            )
        return self.directory / pure


def iter_records(path: Path, *, relative_to: Path | None = None) -> Iterator[ArchivedResponse]:
    """Every response record of the WARC file ``path``, each with its ``ref``.

    Works on any WARC (gzip per record or plain); bodies of records not written by this
    archive are decoded (chunking, Content-Encoding) as a browser would. A record cut short at
    the end of the file (a crawl killed mid-write) ends the iteration with a warning; every
    complete record before it is yielded.
    """
    path = Path(path)
    shown = path.relative_to(relative_to).as_posix() if relative_to else str(path)
    try:
        handle = path.open("rb")
        size = os.fstat(handle.fileno()).st_size
    except OSError as exc:
        raise ArchiveError(f"cannot open WARC file {path}: {exc}") from exc
    end = 0
    with handle:
        records = ArchiveIterator(handle)
        try:
            for record in records:
                if record.rec_type is None:  # a record whose WARC header was cut short
                    break
                response = _response(record, None) if record.rec_type == "response" else None
                if response is not None and _unread(record):
                    break
                records.read_to_end(record)
                offset, length = records.get_record_offset(), records.get_record_length()
                end = offset + length
                if response is not None:
                    ref = ArchiveRef(shown, offset, length, response.record_id or "")
                    yield _with_ref(response, ref)
        except (EOFError, zlib.error) as exc:
            logger.warning("WARC file %s: unreadable record after offset %s: %s", path, end, exc)
            return
        except ArchiveLoadFailed as exc:
            raise ArchiveError(f"WARC file {path} is not readable: {exc}") from exc
    if end < size:
        logger.warning(
            "WARC file %s: %s bytes after the last complete record (offset %s) were skipped; "
            "a record was cut short, e.g. by a killed crawl",
            path, size - end, end,
        )


def _unread(record: Any) -> bool:
    """True when the record's payload ended before its declared length (a truncated file)."""
    return int(getattr(record.raw_stream, "limit", 0)) > 0


def _read_all(stream: Any) -> bytes:
    chunks = []
    while chunk := stream.read(64 * 1024):
        chunks.append(chunk)
    return b"".join(chunks)


def _with_ref(response: ArchivedResponse, ref: ArchiveRef) -> ArchivedResponse:
    return ArchivedResponse(
        url=response.url,
        status=response.status,
        headers=response.headers,
        body=response.body,
        requested_url=response.requested_url,
        fetched_at=response.fetched_at,
        record_id=response.record_id,
        ref=ref,
    )


def _response(record: Any, ref: ArchiveRef | None) -> ArchivedResponse:
    http_headers = record.http_headers
    if http_headers is None:
        raise ArchiveError("WARC response record without HTTP headers")
    if record.rec_headers.get_header(PAYLOAD_HEADER) == "decoded":
        body = _read_all(record.raw_stream)
        headers = tuple((_RESTORED.get(k.lower(), k), v) for k, v in http_headers.headers)
    else:
        body = _read_all(record.content_stream())
        headers = tuple((k, v) for k, v in http_headers.headers)
    url = str(record.rec_headers.get_header("WARC-Target-URI"))
    date = record.rec_headers.get_header("WARC-Date")
    return ArchivedResponse(
        url=url,
        status=int(http_headers.get_statuscode()),
        headers=headers,
        body=body,
        requested_url=record.rec_headers.get_header("WARC-Requested-URI") or url,
        fetched_at=datetime.fromisoformat(date).astimezone(UTC) if date else None,
        record_id=record.rec_headers.get_header("WARC-Record-ID"),
        ref=ref,
    )


def _warc_headers(writer: Any, kind: str, fetch: FetchRecord) -> dict[str, str]:
    """The leading WARC headers, in the customary order."""
    return {
        "WARC-Type": kind,
        "WARC-Record-ID": f"<urn:uuid:{uuid.uuid4()}>",
        "WARC-Target-URI": fetch.final_url,
        "WARC-Date": _warc_date(fetch.fetched_at),
    }


def _warc_date(value: datetime) -> str:
    utc = value.astimezone(UTC)
    return utc.strftime("%Y-%m-%dT%H:%M:%S") + (f".{utc.microsecond:06d}Z" if utc.microsecond
                                                else "Z")


def _check(fetch: FetchRecord) -> None:
    if fetch.fetched_at.tzinfo is None or fetch.fetched_at.utcoffset() is None:
        raise ArchiveError(
            f"fetch of {fetch.final_url}: fetched_at {fetch.fetched_at.isoformat()} has no time "
            "zone; pass a tz-aware UTC datetime"
        )
    for name, value in (*fetch.headers, *fetch.request_headers):
        if any(ch in name or ch in value for ch in "\r\n"):
            raise ArchiveError(
                f"fetch of {fetch.final_url}: header {name!r} contains a line break; "
                "headers must be single lines"
            )
