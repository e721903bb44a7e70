"""Downloads: the archived response exactly as fetched, and streamed exports of a selection.

An export is written by ``review.export.write_export`` in a worker thread with its own store
session, into a small bounded queue that the response drains: memory stays flat however many
candidates are exported, and a client that goes away stops the writer.
"""

from __future__ import annotations

import io
import logging
import queue as queues
import threading
from collections.abc import Iterator
from datetime import date
from typing import IO, Any, cast

from fastapi import Request
from fastapi.responses import Response, StreamingResponse

from config import Settings
from review.export import EXPORT_FORMATS, filename, media_type, write_export
from review.web.errors import WebError
from review.web.filters import parse_filter
from review.web.present import download_extension
from store import ArchivedResponse, ArchiveRef, CandidateDetail, WarcArchive, queue
from store.errors import ArchiveError
from store.records import QueueQuery

__all__ = ["archived_response", "export_query", "export_response", "raw_response"]

logger = logging.getLogger(__name__)

RAW_CSP = "default-src 'none'; sandbox"
_CHUNK = 64 * 1024
_DONE = object()


def archived_response(settings: Settings, detail: CandidateDetail) -> ArchivedResponse:
    """The raw response archived for a candidate; 404 with the reason when there is none."""
    archive = detail.provenance.get("archive")
    if not archive:
        raise WebError(404, f"candidate {detail.id} has no archived copy: its page was stored "
                       "without the raw response")
    try:
        return WarcArchive(settings.archive_dir).read(ArchiveRef(**archive))
    except ArchiveError as exc:
        raise WebError(404, f"the archived copy of candidate {detail.id} cannot be read: {exc}") from exc


def raw_response(settings: Settings, detail: CandidateDetail) -> Response:
    """The archived body byte for byte, as an attachment browsers never render."""
    archived = archived_response(settings, detail)
    name = f"candidate-{detail.id}.{download_extension(archived.header('content-type'))}"
    return Response(archived.body, media_type="application/octet-stream", headers={
        "Content-Disposition": f'attachment; filename="{name}"',
        "X-Content-Type-Options": "nosniff",
        "Content-Security-Policy": RAW_CSP,
    })


def export_query(request: Request, today: date) -> tuple[str, QueueQuery, bool]:
    """The format, selection and include-text flag of an export request.

    Ticked rows (``ids``, repeated or comma-separated) are the selection when given; otherwise
    the queue filter of the query string (every page of it).
    """
    params = request.query_params
    fmt = (params.get("format") or "csv").strip().lower()
    if fmt not in EXPORT_FORMATS:
        raise WebError(422, f"format: {fmt!r} is not an export format; use one of "
                       f"{', '.join(EXPORT_FORMATS)}")
    ids: list[int] = []
    for raw in params.getlist("ids"):
        for part in raw.split(","):
            part = part.strip()
            if not part:
                continue
            if not part.isdigit():
                raise WebError(422, f"ids: {part!r} is not a candidate id; use numbers like 12,15")
            ids.append(int(part))
    include_text = params.get("text", "") in ("1", "true", "yes", "on")
    if ids:
        return fmt, QueueQuery(ids=tuple(dict.fromkeys(ids)), limit=None), include_text
    return fmt, parse_filter(params, today=today).query(limit=None, offset=0), include_text


class _QueueWriter(io.TextIOBase):
    """A text stream whose writes go, in chunks, into a bounded queue (see the module doc)."""

    def __init__(self, chunks: queues.Queue[Any], stop: threading.Event) -> None:
        self.chunks = chunks
        self.stop = stop
        self.buffer: list[str] = []
        self.size = 0

    def write(self, text: str) -> int:
        self.buffer.append(text)
        self.size += len(text)
        if self.size >= _CHUNK:
            self.flush()
        return len(text)

    def flush(self) -> None:
        if self.buffer:
            data = "".join(self.buffer).encode("utf-8")
            self.buffer, self.size = [], 0
            while True:
                if self.stop.is_set():
                    raise BrokenPipeError("the client went away")
                try:
                    self.chunks.put(data, timeout=0.5)
                    return
                except queues.Full:
                    continue


def _stream(request: Request, fmt: str, query: QueueQuery, include_text: bool) -> Iterator[bytes]:
    chunks: queues.Queue[Any] = queues.Queue(maxsize=8)
    stop = threading.Event()
    factory = request.app.state.session_factory

    def produce() -> None:
        writer = _QueueWriter(chunks, stop)
        try:
            with factory() as session:
                count = write_export(queue.iter_export(session, query, include_text=include_text),
                                     fmt, cast(IO[str], writer))
                writer.flush()
            logger.info("exported %s candidates as %s", count, fmt)
        except BrokenPipeError:
            logger.info("export as %s stopped: the client went away", fmt)
        except Exception as exc:  # the worker's top level: logged, and the stream ends short
            logger.exception("export as %s failed", fmt)
            chunks.put(exc)
            return
        chunks.put(_DONE)

    worker = threading.Thread(target=produce, name="dwatch-export", daemon=True)
    worker.start()
    try:
        while True:
            item = chunks.get()
            if item is _DONE:
                return
            if isinstance(item, Exception):
                raise item
            yield item
    finally:
        stop.set()


def export_response(request: Request, today: date) -> StreamingResponse:
    fmt, query, include_text = export_query(request, today)
    stem = f"dwatch-candidates-{today.isoformat()}"
    return StreamingResponse(
        _stream(request, fmt, query, include_text),
        media_type=media_type(fmt),
        headers={"Content-Disposition": f'attachment; filename="{filename(fmt, stem)}"'},
    )
