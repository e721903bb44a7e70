"""A small local HTTP server for the demo site and for end-to-end crawl tests.

    with serve_directory(SITE_DIR) as server:
        server.base_url                      # "http://127.0.0.1:54321"
        server.set_response("/feeds/news.rss", status=404)
        ...                                  # crawl server.base_url + "/feeds/news.rss"
        server.requests.paths("GET")         # what the crawler fetched, in order

Files ending in ``.tmpl`` are served without that suffix after replacing ``{{BASE_URL}}``
with the server's base URL, so feeds and sitemaps can carry absolute links although the
port is random. GET and HEAD are supported, with ETag / Last-Modified validators and
``304 Not Modified`` answers to conditional requests. Nothing is logged to stderr.

Run ``python -m demo.server [DIR] [--port N]`` to browse a directory by hand.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import logging
import mimetypes
import socket
import threading
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from email.utils import formatdate, parsedate_to_datetime
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import TracebackType
from typing import Any
from urllib.parse import unquote, urlsplit

logger = logging.getLogger(__name__)

TEMPLATE_SUFFIX = ".tmpl"
PLACEHOLDER = b"{{BASE_URL}}"

_TYPES_BY_SUFFIX = {
    ".html": "text/html; charset=utf-8",
    ".htm": "text/html; charset=utf-8",
    ".rss": "application/rss+xml; charset=utf-8",
    ".atom": "application/atom+xml; charset=utf-8",
    ".xml": "application/xml; charset=utf-8",
    ".txt": "text/plain; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".json": "application/json",
    ".gz": "application/gzip",
}


def content_type_for(name: str, body: bytes) -> str:
    """The Content-Type to send for a file called `name` (template suffix already removed).

    An ``.xml`` file whose root element is ``<rss>`` or ``<feed>`` is served as the feed it
    is; a ``.json`` file declaring a jsonfeed.org version as ``application/feed+json``.
    """
    lower = name.lower()
    if lower.rsplit("/", 1)[-1] == "robots.txt":
        return "text/plain; charset=utf-8"
    suffix = Path(lower).suffix
    head = body[:1024].lstrip()
    if suffix == ".xml":
        if b"<rss" in head:
            return _TYPES_BY_SUFFIX[".rss"]
        if b"<feed" in head:
            return _TYPES_BY_SUFFIX[".atom"]
    if suffix == ".json" and b"jsonfeed.org/version" in head:
        return "application/feed+json"
    if suffix in _TYPES_BY_SUFFIX:
        return _TYPES_BY_SUFFIX[suffix]
    guessed, _ = mimetypes.guess_type(lower)
    return guessed or "application/octet-stream"


@dataclass(frozen=True)
class RecordedRequest:
    """One request the server received: method, raw target (path and query), headers."""

    method: str
    path: str
    headers: Mapping[str, str]

    @property
    def bare_path(self) -> str:
        """The path without query string or fragment."""
        return urlsplit(self.path).path


class RequestLog:
    """Thread-safe, append-only record of the requests a FixtureServer received."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._items: list[RecordedRequest] = []

    def append(self, item: RecordedRequest) -> None:
        with self._lock:
            self._items.append(item)

    def snapshot(self) -> list[RecordedRequest]:
        with self._lock:
            return list(self._items)

    def clear(self) -> None:
        with self._lock:
            self._items.clear()

    def paths(self, method: str | None = None) -> list[str]:
        """Raw request targets (path + query) in arrival order, optionally for one method."""
        return [r.path for r in self.snapshot() if method is None or r.method == method]

    def count(self, path: str, method: str | None = None) -> int:
        """How many requests hit `path` (compared without query string)."""
        return sum(
            1
            for r in self.snapshot()
            if r.bare_path == path and (method is None or r.method == method)
        )

    def __len__(self) -> int:
        with self._lock:
            return len(self._items)

    def __iter__(self) -> Iterator[RecordedRequest]:
        return iter(self.snapshot())

    def __getitem__(self, index: int) -> RecordedRequest:
        with self._lock:
            return self._items[index]


@dataclass(frozen=True)
class Override:
    """A canned answer for one path, set by a test with FixtureServer.set_response."""

    status: int = 200
    body: bytes | None = None       # None: the file's own body (or a short status page)
    headers: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class _Reply:
    status: int
    body: bytes
    headers: dict[str, str]
    last_modified: float | None = None


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.1"
    timeout = 60   # seconds an idle kept-alive connection may hold its thread

    def do_GET(self) -> None:  # noqa: N802 - name fixed by BaseHTTPRequestHandler
        self._answer(with_body=True)

    def do_HEAD(self) -> None:  # noqa: N802
        self._answer(with_body=False)

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
        logger.debug("%s %s", self.address_string(), format % args)

    def _answer(self, *, with_body: bool) -> None:
        owner = self.server.owner
        owner.requests.append(
            RecordedRequest(self.command, self.path, {k: v for k, v in self.headers.items()})
        )
        reply = owner.build_reply(self.path)
        status, body = reply.status, reply.body
        headers = dict(reply.headers)
        if status == 200 and self._not_modified(headers, reply.last_modified):
            status, body = 304, b""
            headers.pop("Content-Type", None)
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name, value)
        if status != 304:
            self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if with_body and status != 304:
            self.wfile.write(body)

    def _not_modified(self, headers: Mapping[str, str], mtime: float | None) -> bool:
        etag = headers.get("ETag")
        if_none_match = self.headers.get("If-None-Match")
        if if_none_match is not None:
            tags = {tag.strip().removeprefix("W/") for tag in if_none_match.split(",")}
            return etag is not None and (etag in tags or "*" in tags)
        if_modified_since = self.headers.get("If-Modified-Since")
        if if_modified_since and mtime is not None:
            try:
                since = parsedate_to_datetime(if_modified_since).timestamp()
            except (TypeError, ValueError):
                return False
            return int(mtime) <= since
        return False


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128   # a crawler opens many connections at once; 5 makes them wait
    owner: FixtureServer

    def __init__(self, address: tuple[str, int], owner: FixtureServer) -> None:
        super().__init__(address, _Handler)
        self.owner = owner
        self._open: set[socket.socket] = set()
        self._open_lock = threading.Lock()

    def process_request(self, request: Any, client_address: Any) -> None:
        with self._open_lock:
            self._open.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request: Any) -> None:
        with self._open_lock:
            self._open.discard(request)
        super().shutdown_request(request)

    def close_connections(self) -> None:
        """Hang up on kept-alive clients so that nothing is answered after stop()."""
        with self._open_lock:
            sockets = list(self._open)
        for sock in sockets:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A client that hangs up mid-answer is normal for a crawler; keep stderr quiet.
        logger.debug("error while answering %s", client_address, exc_info=True)


class FixtureServer:
    """A directory served over HTTP on 127.0.0.1 from a daemon thread (use as a context manager)."""

    def __init__(self, root: Path, *, host: str = "127.0.0.1", port: int = 0) -> None:
        self.root = Path(root).resolve()
        if not self.root.is_dir():
            raise NotADirectoryError(f"{self.root}: not a directory; give the site's root folder")
        self.host = host
        self.port = port
        self.requests = RequestLog()
        self._overrides: dict[str, Override] = {}
        self._lock = threading.Lock()
        self._httpd: _Server | None = None
        self._thread: threading.Thread | None = None

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> FixtureServer:
        if self._httpd is not None:
            return self
        httpd = _Server((self.host, self.port), self)
        self.port = int(httpd.server_address[1])
        self._httpd = httpd
        self._thread = threading.Thread(
            target=httpd.serve_forever, kwargs={"poll_interval": 0.05},
            name=f"fixture-server-{self.port}", daemon=True,
        )
        self._thread.start()
        logger.debug("serving %s at %s", self.root, self.base_url)
        return self

    def stop(self) -> None:
        httpd, thread = self._httpd, self._thread
        self._httpd = self._thread = None
        if httpd is None:
            return
        httpd.shutdown()
        httpd.close_connections()
        httpd.server_close()
        if thread is not None:
            thread.join(timeout=5)

    def __enter__(self) -> FixtureServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    @property
    def base_url(self) -> str:
        if self._httpd is None:
            raise RuntimeError("the server is not running; use it as a context manager first")
        return f"http://{self.host}:{self.port}"

    def url(self, path: str) -> str:
        """Absolute URL of a site path ("/feeds/news.rss")."""
        return self.base_url + "/" + path.lstrip("/")

    # ------------------------------------------------------------------ overrides

    def set_response(
        self,
        path: str,
        *,
        status: int = 200,
        body: bytes | str | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        """Answer `path` (query ignored) with this status, body and headers until cleared.

        ``body=None`` keeps the file's own body for a 2xx status and sends a short status
        page otherwise. ``{{BASE_URL}}`` in a given body is replaced like in templates.
        Given headers replace the defaults of the same name (e.g. Content-Type, Location).
        """
        data = body.encode("utf-8") if isinstance(body, str) else body
        with self._lock:
            self._overrides[_normalise(path)] = Override(status, data, dict(headers or {}))

    def clear_response(self, path: str | None = None) -> None:
        """Drop the override of `path`, or every override when `path` is None."""
        with self._lock:
            if path is None:
                self._overrides.clear()
            else:
                self._overrides.pop(_normalise(path), None)

    # ------------------------------------------------------------------ answering

    def build_reply(self, target: str) -> _Reply:
        path = _normalise(target)
        with self._lock:
            override = self._overrides.get(path)
        found = self._read(path)
        if override is None:
            if found is None:
                return _status_page(HTTPStatus.NOT_FOUND, path)
            return found
        if override.body is None and 200 <= override.status < 300 and found is not None:
            headers = {**found.headers, **override.headers}
            return _Reply(override.status, found.body, headers, found.last_modified)
        if override.body is None:
            base = _status_page(override.status, path)
            return _Reply(base.status, base.body, {**base.headers, **override.headers})
        body = override.body.replace(PLACEHOLDER, self.base_url.encode("ascii"))
        headers = {
            "Content-Type": content_type_for(path, body),
            "ETag": _etag(body),
            **override.headers,
        }
        return _Reply(override.status, body, headers)

    def _read(self, path: str) -> _Reply | None:
        relative = unquote(path).lstrip("/")
        candidate = (self.root / relative).resolve()
        if candidate != self.root and self.root not in candidate.parents:
            return None
        if candidate.is_dir() or path.endswith("/"):
            candidate = candidate / "index.html"
        name = candidate.name
        template = candidate.with_name(name + TEMPLATE_SUFFIX)
        if candidate.is_file() and not name.endswith(TEMPLATE_SUFFIX):
            source, body = candidate, candidate.read_bytes()
        elif template.is_file():
            source = template
            body = template.read_bytes().replace(PLACEHOLDER, self.base_url.encode("ascii"))
        else:
            return None
        mtime = source.stat().st_mtime
        headers = {
            "Content-Type": content_type_for(name, body),
            "ETag": _etag(body),
            "Last-Modified": formatdate(mtime, usegmt=True),
        }
        return _Reply(200, body, headers, mtime)


def serve_directory(root: Path, *, host: str = "127.0.0.1", port: int = 0) -> FixtureServer:
    """A FixtureServer for `root`; it starts when entered as a context manager."""
    return FixtureServer(root, host=host, port=port)


def _normalise(target: str) -> str:
    path = urlsplit(target).path or "/"
    return path if path.startswith("/") else "/" + path


def _etag(body: bytes) -> str:
    return '"' + hashlib.sha256(body).hexdigest()[:32] + '"'


def _status_page(status: int, path: str) -> _Reply:
    try:
        phrase = HTTPStatus(status).phrase
    except ValueError:
        phrase = "Status"
    body = (
        f"<!DOCTYPE html><html><head><title>{status} {phrase}</title></head>"
        f"<body><h1>{status} {phrase}</h1><p>{path}</p></body></html>\n"
    ).encode()
    return _Reply(status, body, {"Content-Type": "text/html; charset=utf-8"})


def main(argv: list[str] | None = None) -> int:
    """Serve a directory (default: the demo site) until interrupted."""
    default_root = Path(__file__).resolve().parent / "site"
    parser = argparse.ArgumentParser(
        prog="python -m demo.server", description="Serve a fixture site on 127.0.0.1."
    )
    parser.add_argument("root", nargs="?", type=Path, default=default_root,
                        help=f"directory to serve (default: {default_root})")
    parser.add_argument("--port", type=int, default=0, help="port (default: a free one)")
    args = parser.parse_args(argv)
    try:
        server = serve_directory(args.root, port=args.port)
        server.start()
    except (NotADirectoryError, OSError) as exc:
        parser.error(str(exc))
    print(f"Serving {server.root} at {server.base_url}/  (Ctrl-C to stop)", flush=True)
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        pass
    finally:
        server.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
