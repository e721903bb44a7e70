"""The ccnews backfill method: Common Crawl's CC-NEWS WARC files, read as they stream in.

Files: ``--warc PATH_OR_URL`` (else ``backfill.ccnews_files``). A local file is read with
`extract.warc_records.WarcReader` (warcio underneath), record by record. A URL is downloaded by
Scrapy in Range requests of ``backfill.ccnews_chunk_bytes`` (at most ``crawl.download_maxsize``),
each chunk appended to a spool file under ``<data_dir>/backfill/ccnews/`` and the spool read up to
the bytes on disk before the next chunk is asked for: no file is ever held in memory, only one
chunk and one record. A server that ignores Range answers 200 with the whole file: that is read
when it fits in ``crawl.download_maxsize``; a bigger one is cancelled by Scrapy and reported with
what to do (download it, pass the path).

Kept: HTTP 2xx HTML responses on the selected sources' hosts (`SourceConfig.hosts`) whose
WARC-Date (when Common Crawl fetched the page) is in the window; each becomes a `FetchedPage`
through `BackfillSpider.backfill_page` (no fetch: the record is the response) and the normal
pipelines, where the page's own publication date decides whether it is queued. Provenance: the
WARC file as ``discovered_from``, the WARC-Record-ID as ``entry_id``, WARC-Date as fetched_at.

Units: ``ccnews:<file as given>``. While a file is read its unit stays pending with JSON detail
``{"offset": records handled up to here, "spooled": bytes on disk, "size": file size}``; a
resumed job starts reading at that offset (a URL's spool continues where it stopped) and a done
file is not read again. The spool is deleted once its file is done.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, time, timedelta
from pathlib import Path
from typing import IO, TYPE_CHECKING, ClassVar
from urllib.parse import unquote, urlsplit

import scrapy
from scrapy.exceptions import DownloadCancelledError
from scrapy.http import Response
from twisted.internet.defer import CancelledError
from twisted.python.failure import Failure

from crawler import runstats
from crawler.items import Discovery, FetchedPage
from extract.urls import site_host
from extract.warc_records import WarcCounts, WarcReader, WarcResponse, WarcSelection

if TYPE_CHECKING:
    from crawler.backfill.spider import BackfillSpider

logger = logging.getLogger(__name__)

__all__ = ["NAME", "CCNewsMethod", "is_remote", "spool_path"]

NAME = "ccnews"
STATS = runstats.PREFIX + "backfill/ccnews/"      # + a WarcCounts field: records, kept, other_host, ...
_CONTENT_RANGE = re.compile(r"^\s*bytes\s+(\d+)-(\d+)/(\d+|\*)\s*$", re.IGNORECASE)


def is_remote(name: str) -> bool:
    return name.lower().startswith(("http://", "https://"))


def spool_path(spool_dir: Path, url: str) -> Path:
    """Where the download of `url` is spooled: a hash of the URL (unique) + its file name (readable)."""
    digest = hashlib.sha256(url.encode("utf-8")).hexdigest()[:16]
    base = Path(unquote(urlsplit(url).path)).name or "download"
    safe = re.sub(r"[^A-Za-z0-9._-]", "_", base)[:80]
    return spool_dir / f"{digest}-{safe}.spool"


@dataclass
class _File:
    """One WARC file being read: where it is, how far, and its reader."""

    name: str                      # as given (--warc / ccnews_files): the unit's key
    unit: str
    shown: str                     # provenance: the URL, or the absolute path
    offset: int = 0                # every record before this byte was handled
    spooled: int = 0               # bytes on disk (a URL's spool)
    size: int | None = None        # the whole file's size, when known
    found: int = 0                 # records handed to the pipelines
    handle: IO[bytes] | None = field(default=None, repr=False)
    reader: WarcReader | None = field(default=None, repr=False)
    problems_seen: int = 0

    def detail(self) -> str:
        return json.dumps({"offset": self.offset, "spooled": self.spooled, "size": self.size})


class CCNewsMethod:
    name: ClassVar[str] = NAME
    per_source: ClassVar[bool] = False

    def __init__(self, spider: BackfillSpider) -> None:
        self.spider = spider
        settings = spider.crawler.settings
        maxsize = settings.getint("DOWNLOAD_MAXSIZE", 0)
        wanted = spider.backfill_settings.ccnews_chunk_bytes
        self.maxsize = maxsize
        self.chunk_bytes = min(wanted, maxsize) if maxsize > 0 else wanted
        if self.chunk_bytes < wanted:
            logger.info("%s: backfill.ccnews_chunk_bytes %d is over crawl.download_maxsize; Range requests "
                        "of %d bytes", spider.name, wanted, self.chunk_bytes, extra=spider.log_extra)
        window = spider.window
        self.select = WarcSelection(
            hosts=self.hosts(),
            crawled_from=datetime.combine(window.since, time.min, tzinfo=UTC),
            crawled_to=datetime.combine(window.until + timedelta(days=1), time.min, tzinfo=UTC)
            - timedelta(microseconds=1),
            max_body_bytes=maxsize if maxsize > 0 else WarcSelection.max_body_bytes,
        )
        self.spool_dir = spider.backfill.data_dir / "backfill" / "ccnews"

    def hosts(self) -> frozenset[str]:
        """The hosts of the selected sources, spelled as `extract.site_host` spells them."""
        backfill = self.spider.backfill
        chosen = set(backfill.args.sources)
        hosts = {site_host(f"http://{host}/") for host, owner in backfill.owners.items() if owner in chosen}
        return frozenset(h for h in hosts if h)

    def files(self) -> list[str]:
        return list(dict.fromkeys(self.spider.backfill.args.warcs))

    def start(self) -> Iterator[scrapy.Request | FetchedPage]:
        if not self.select.hosts:
            self.spider.discovery_error(
                "ccnews", "no host to keep: the selected sources have no URL host; set `hosts:` in "
                "sources.yaml", method=NAME)
            return
        for name in self.files():
            unit = f"{NAME}:{name}"
            recorded = self.spider.unit_state(unit)
            if recorded is not None and recorded.status == "done":
                logger.info("%s: %s was read to the end by this job; not read again", self.spider.name, name,
                            extra=self.spider.log_extra)
                continue
            file = _File(name=name, unit=unit, shown=name if is_remote(name) else str(Path(name).resolve()))
            _restore(file, recorded.detail if recorded is not None else None)
            if is_remote(name):
                yield from self._download(file)
            else:
                yield from self._read_local(file)

    # ------------------------------------------------------------ local files

    def _read_local(self, file: _File) -> Iterator[FetchedPage]:
        path = Path(file.name).expanduser()
        try:
            handle = path.open("rb")
            size = path.stat().st_size
        except OSError as exc:
            self.spider.discovery_error(
                file.name, f"cannot open the WARC file: {exc.strerror or exc}; give an existing path or an "
                "http(s) URL with --warc", method=NAME)
            return
        with handle:
            file.size = file.spooled = size
            if file.offset > size:
                file.offset = 0          # not the file the job saw: read it all again (stored pages skip)
            file.reader = WarcReader(handle, name=file.shown, start=file.offset, select=self.select)
            checkpoint = file.offset
            for page in self._pages(file, available=size, final=True):
                yield page
                if file.reader.offset - checkpoint >= self.chunk_bytes:
                    # save the previous checkpoint: the pages before it have surely been stored
                    file.offset, checkpoint = checkpoint, file.reader.offset
                    self._save(file)
            self._finish(file)

    # ------------------------------------------------------------ remote files: Range requests to a spool

    def _download(self, file: _File) -> Iterator[scrapy.Request | FetchedPage]:
        """The request for the next chunk; or, when a killed job had spooled it all, its records."""
        spool = spool_path(self.spool_dir, file.name)
        try:
            spool.parent.mkdir(parents=True, exist_ok=True)
            file.handle = spool.open("a+b")    # appends go to the end; the reader seeks where it reads
        except OSError as exc:
            self.spider.discovery_error(file.name, f"cannot write the spool file {spool}: {exc}", method=NAME)
            return
        # the spool is always a prefix of the file (appended in order): go on from its end
        file.spooled = file.handle.seek(0, 2)
        if file.offset > file.spooled:
            file.offset = 0
        file.reader = WarcReader(file.handle, name=file.shown, start=file.offset, select=self.select)
        if file.size is not None and file.spooled >= file.size:
            yield from self._pages(file, available=file.spooled, final=True)
            self._finish(file)
            return
        request = self._chunk_request(file)
        if request is None:
            self._close(file)
        else:
            yield request

    def _chunk_request(self, file: _File) -> scrapy.Request | None:
        request = self.spider.discovery_request(file.name, self.parse_chunk, unit=file.unit, method=NAME,
                                                file=file)
        if request is None:
            return None
        request.headers["Range"] = f"bytes={file.spooled}-{file.spooled + self.chunk_bytes - 1}"
        request.headers["Accept-Encoding"] = "identity"     # byte ranges of the file itself
        request.meta["handle_httpstatus_list"] = [416]
        request.meta["download_warnsize"] = 0               # chunks are big on purpose
        return request.replace(dont_filter=True, errback=self.chunk_failed)

    def parse_chunk(self, response: Response, file: _File) -> Iterator[scrapy.Request | FetchedPage]:
        spider = self.spider
        final = False
        if response.status == 206:
            span = _CONTENT_RANGE.match((response.headers.get("Content-Range") or b"").decode("latin-1"))
            if span is None:
                yield from self._fail(file, "answered 206 without a valid Content-Range header")
                return
            start, end, total = int(span.group(1)), int(span.group(2)), span.group(3)
            file.size = int(total) if total != "*" else file.size
            if start != file.spooled:
                yield from self._fail(file, f"answered bytes {start}-{end} to a request for bytes "
                                            f"{file.spooled}-: the server does not honour Range as asked")
                return
            self._append(file, response.body)
            final = (file.size is not None and file.spooled >= file.size) or not response.body
        elif response.status == 200:
            # the server ignored Range: this is the whole file, and it fit in download_maxsize
            logger.info("%s: %s ignored the Range request and sent the whole file (%d bytes)", spider.name,
                        file.name, len(response.body), extra=spider.log_extra)
            assert file.handle is not None
            file.handle.truncate(0)
            file.spooled = 0
            self._append(file, response.body)
            file.size, final = file.spooled, True
        elif response.status == 416:
            if file.spooled == 0:
                yield from self._fail(file, "answered 416 Range Not Satisfiable to bytes=0-: "
                                            "the file is empty")
                return
            file.size, final = file.spooled, True
        else:
            yield from self._fail(file, f"answered HTTP {response.status} to a Range request")
            return
        spider.source_ok()
        self._save(file)    # how far the earlier chunks got: their pages have been stored by now
        yield from self._pages(file, available=file.spooled, final=final)
        if final:
            self._finish(file)
            return
        file.offset = file.reader.offset if file.reader is not None else file.offset
        request = self._chunk_request(file)
        if request is None:
            self._close(file)
        else:
            yield request

    def chunk_failed(self, failure: Failure) -> None:
        request = getattr(failure, "request", None)
        file = request.cb_kwargs.get("file") if request is not None else None
        if isinstance(failure.value, (DownloadCancelledError, CancelledError)) and isinstance(file, _File):
            self._close(file)
            self.spider.discovery_error(
                file.name, f"the download was cancelled: {failure.value}; the server sent more than the "
                f"{self.chunk_bytes} bytes asked for (it ignores Range requests?). Download the file and "
                "pass its local path with --warc, or raise crawl.download_maxsize above the file's size",
                method=NAME)
            return
        if isinstance(file, _File):
            self._close(file)
        self.spider.source_failed(failure)

    def _append(self, file: _File, data: bytes) -> None:
        assert file.handle is not None
        file.handle.seek(0, 2)
        file.handle.write(data)
        file.handle.flush()
        file.spooled += len(data)

    def _fail(self, file: _File, reason: str) -> Iterator[FetchedPage]:
        self._close(file)
        self.spider.discovery_error(file.name, reason, method=NAME)
        yield from ()

    # ------------------------------------------------------------ records to pages

    def _pages(self, file: _File, *, available: int, final: bool) -> Iterator[FetchedPage]:
        reader = file.reader
        assert reader is not None
        before = _copy(reader.counts)
        for response in reader.read(available, final=final):
            page = self.spider.backfill_page(self._page(response, file))
            if page is not None:
                file.found += 1
                yield page
        for key, value in asdict(reader.counts).items():
            if value - getattr(before, key):
                self.spider.stats.inc_value(STATS + key, value - getattr(before, key))
        for problem in reader.problems[file.problems_seen:]:
            runstats.record_error(self.spider.stats, str(problem))
            self.spider.backfill.tally.add(NAME, NAME, "errors")
        file.problems_seen = len(reader.problems)

    def _page(self, response: WarcResponse, file: _File) -> FetchedPage:
        return FetchedPage(
            discovery=Discovery(
                source_id=self.spider.source_id_for(response.url, NAME),
                channel="backfill",
                discovered_from=file.shown,
                entry_id=response.record_id or None,
                method=NAME,
            ),
            requested_url=response.url,
            final_url=response.url,
            status=response.status,
            headers=response.headers,
            body=response.body,
            fetched_at=response.warc_date,
        )

    # ------------------------------------------------------------ unit state

    def _save(self, file: _File) -> None:
        """Keep the unit pending with how far it got (a killed job resumes from there)."""
        backfill = self.spider.backfill
        if backfill.job_id is None:
            return
        from store import backfill as state

        with backfill.session_factory() as session:
            state.finish_unit(session, backfill.job_id, file.unit, found=file.found, status="pending",
                              detail=file.detail())

    def _finish(self, file: _File) -> None:
        reader = file.reader
        if reader is not None:
            file.offset = reader.offset
            counts = reader.counts
            logger.info("%s: %s read: %d records, %d responses; %d kept (sources' hosts, crawled in %s), "
                        "%d of other hosts, %d crawled outside, %d not HTML, %d not 2xx, %d revisits, "
                        "%d too large, %d unreadable", self.spider.name, file.shown, counts.records,
                        counts.responses, counts.kept, self.spider.window, counts.other_host,
                        counts.out_of_window, counts.not_html, counts.not_ok, counts.revisits,
                        counts.too_large, counts.problems, extra=self.spider.log_extra)
        self.spider.unit_finished(file.unit, file.found, detail=file.detail())
        if file.handle is not None:
            self._close(file)
            spool = spool_path(self.spool_dir, file.name)
            try:
                spool.unlink(missing_ok=True)
            except OSError as exc:
                logger.warning("%s: cannot delete the spool %s: %s", self.spider.name, spool, exc)

    @staticmethod
    def _close(file: _File) -> None:
        if file.handle is not None:
            file.handle.close()
            file.handle = None


def _restore(file: _File, detail: str | None) -> None:
    """The offset a pending unit reached (its JSON detail); anything unreadable starts from 0."""
    if not detail:
        return
    try:
        saved = json.loads(detail)
        file.offset = max(int(saved.get("offset") or 0), 0)
        size = saved.get("size")
        file.size = int(size) if size is not None else None
    except (ValueError, TypeError, AttributeError):
        logger.info("ccnews unit %s: unreadable detail %r; reading the file from the start",
                    file.unit, detail)
        file.offset, file.size = 0, None


def _copy(counts: WarcCounts) -> WarcCounts:
    return WarcCounts(**asdict(counts))
