"""Local HTTP servers for the backfill tests (127.0.0.1, port 0, a request log with times),
the article pages they serve, and `dwatch backfill` run in a subprocess against them.

    routes = {
        "/sitemap.xml": Reply(200, {"Content-Type": "application/xml"}, body),
        "/cdx": cdx_handler,                         # a callable: ServedRequest -> Reply
    }
    with FixtureServer(routes) as server:
        server.url("/sitemap.xml")                   # "http://127.0.0.1:54321/sitemap.xml"
        server.route("/late.html", html_reply("<html>...</html>"))   # add routes while serving
        server.delay = 0.5                           # every answer from now on waits 0.5 s
        ...
        server.paths()                               # every requested path+query, in order
        server.hits("/a.html")                       # how many times /a.html was requested
        server.log[0].at                             # time.monotonic() when it arrived

A route is looked up by path with its query string first ("/cdx?page=2"), then by the path
alone ("/cdx"); an unknown path is a 404. A handler callable receives the `ServedRequest`
(method, path, query, headers) and returns a `Reply`; it may sleep (the server is threaded,
one thread per connection). Range requests (``Range: bytes=a-b``, ``bytes=a-``,
``bytes=-n``) of a 200 reply are answered 206 with Content-Range, or 416 when unsatisfiable;
``Reply(ranges=False)`` models a server that ignores Range (200 with the whole body).
HEAD is answered like GET without the body. Nothing is written to stderr.

    page = article_html("Why he defected", "2014-06-03T09:00:00+00:00")       # a flagged story
    page = article_html("Road repairs", "2014-06-03", paragraphs=OTHER_STORY)  # not flagged
    config_dir = write_config(tmp / "config", sources=[...], crawl={...}, backfill={...})
    outcome = run_backfill_cli(config_dir, tmp / "data", "--since", "2014-01-01", "--until", "2015-12-31")
    outcome.returncode, outcome.stdout            # the summary table, then the status line
"""

from __future__ import annotations

import html
import os
import re
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import TracebackType
from typing import Any
from urllib.parse import parse_qs, urlsplit

import yaml

__all__ = [
    "DEFECTOR_STORY",
    "LOCAL_CRAWL",
    "OTHER_STORY",
    "BackfillOutcome",
    "FixtureServer",
    "Handler",
    "Reply",
    "Route",
    "ServedRequest",
    "article_html",
    "html_reply",
    "backfill_command",
    "run_backfill_cli",
    "start_backfill_cli",
    "write_config",
    "xml_reply",
]

REPO = Path(__file__).resolve().parents[2]
# a local crawl: loopback allowed, no politeness delays (tests that check politeness set their own)
LOCAL_CRAWL = {"allow_private_addresses": True, "download_delay": 0, "autothrottle": False}

HTML = "text/html; charset=utf-8"
XML = "application/xml; charset=utf-8"
_RANGE = re.compile(r"^bytes=(\d*)-(\d*)$")


@dataclass(frozen=True)
class Reply:
    """One answer: status, headers (name -> value), body. ``delay``: seconds to wait first."""

    status: int = 200
    headers: Mapping[str, str] = field(default_factory=dict)
    body: bytes = b""
    delay: float = 0.0
    ranges: bool = True      # False: Range headers are ignored (200 with the whole body)


@dataclass(frozen=True)
class ServedRequest:
    """One request as the server saw it (the log keeps these, in arrival order)."""

    method: str
    target: str                          # path with its query string, as sent
    path: str                            # path without the query string
    query: dict[str, list[str]]          # parsed query string (parse_qs)
    headers: dict[str, str]              # request headers, names lower-cased
    at: float                            # time.monotonic() when the request arrived

    def param(self, name: str, default: str | None = None) -> str | None:
        """The first value of query parameter ``name``."""
        values = self.query.get(name)
        return values[0] if values else default


Handler = Callable[[ServedRequest], Reply]
Route = Reply | Handler


def html_reply(html: str, *, status: int = 200, headers: Mapping[str, str] | None = None) -> Reply:
    return Reply(status, {"Content-Type": HTML, **(headers or {})}, html.encode("utf-8"))


def xml_reply(xml: str | bytes, *, status: int = 200) -> Reply:
    body = xml.encode("utf-8") if isinstance(xml, str) else xml
    return Reply(status, {"Content-Type": XML}, body)


class FixtureServer:
    """A threaded HTTP server on 127.0.0.1 (port 0) serving `routes`; use it as a context manager."""

    def __init__(self, routes: Mapping[str, Route] | None = None, *, delay: float = 0.0) -> None:
        self._routes: dict[str, Route] = dict(routes or {})
        self._lock = threading.Lock()
        self._log: list[ServedRequest] = []
        self.delay = delay                   # seconds every answer waits (settable while serving)
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), _handler_class(self))
        self._httpd.daemon_threads = True
        self._thread: threading.Thread | None = None

    # ------------------------------------------------------------ lifecycle

    def start(self) -> FixtureServer:
        self._thread = threading.Thread(target=self._httpd.serve_forever, name="fixture-server",
                                        kwargs={"poll_interval": 0.05}, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def __enter__(self) -> FixtureServer:
        return self.start()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()

    # ------------------------------------------------------------ routes and log

    @property
    def port(self) -> int:
        return int(self._httpd.server_address[1])

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def url(self, path: str) -> str:
        return self.base_url + (path if path.startswith("/") else "/" + path)

    def route(self, path: str, answer: Route) -> None:
        with self._lock:
            self._routes[path] = answer

    def lookup(self, target: str) -> Route | None:
        with self._lock:
            found = self._routes.get(target)
            if found is None:
                found = self._routes.get(urlsplit(target).path)
            return found

    @property
    def log(self) -> list[ServedRequest]:
        """Every request so far, in arrival order (a copy)."""
        with self._lock:
            return list(self._log)

    def paths(self, method: str | None = "GET") -> list[str]:
        """Requested targets (path + query) in order; ``method=None``: every method."""
        return [r.target for r in self.log if method is None or r.method == method]

    def hits(self, target: str) -> int:
        """How many GETs asked for ``target`` (with its query, or a bare path: any query)."""
        return sum(1 for r in self.log if r.method == "GET" and target in (r.target, r.path))

    def clear_log(self) -> None:
        with self._lock:
            self._log.clear()

    def _record(self, request: ServedRequest) -> None:
        with self._lock:
            self._log.append(request)


def _byte_range(header: str, size: int) -> tuple[int, int] | None:
    """(first, last) inclusive of one ``bytes=`` range, or None when unsatisfiable/malformed."""
    match = _RANGE.match(header.strip())
    if match is None or (not match.group(1) and not match.group(2)):
        return None
    if not match.group(1):               # bytes=-n: the last n bytes
        length = int(match.group(2))
        return (max(size - length, 0), size - 1) if length and size else None
    first = int(match.group(1))
    last = int(match.group(2)) if match.group(2) else size - 1
    if first >= size or last < first:
        return None
    return first, min(last, size - 1)


def _handler_class(server: FixtureServer) -> type[BaseHTTPRequestHandler]:
    class _Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:
            return None

        def do_GET(self) -> None:
            self._answer(send_body=True)

        def do_HEAD(self) -> None:
            self._answer(send_body=False)

        def _answer(self, *, send_body: bool) -> None:
            parts = urlsplit(self.path)
            request = ServedRequest(
                method=self.command,
                target=self.path,
                path=parts.path,
                query=parse_qs(parts.query, keep_blank_values=True),
                headers={k.lower(): v for k, v in self.headers.items()},
                at=time.monotonic(),
            )
            server._record(request)
            route = server.lookup(self.path)
            if route is None:
                reply = Reply(404, {"Content-Type": "text/plain"}, b"not found: " + self.path.encode())
            elif isinstance(route, Reply):
                reply = route
            else:
                reply = route(request)
            wait = server.delay + reply.delay
            if wait > 0:
                time.sleep(wait)
            status, headers, body = reply.status, dict(reply.headers), reply.body
            wanted = request.headers.get("range")
            if wanted is not None and reply.ranges and status == 200:
                span = _byte_range(wanted, len(body))
                if span is None:
                    status, body = 416, b""
                    headers["Content-Range"] = f"bytes */{len(reply.body)}"
                else:
                    first, last = span
                    status, body = 206, reply.body[first : last + 1]
                    headers["Content-Range"] = f"bytes {first}-{last}/{len(reply.body)}"
            if reply.ranges:
                headers.setdefault("Accept-Ranges", "bytes")
            self.send_response(status)
            for name, value in headers.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if send_body:
                try:
                    self.wfile.write(body)
                except (BrokenPipeError, ConnectionResetError):
                    return

    return _Handler


# ---------------------------------------------------------------- pages (written for these tests)

DEFECTOR_STORY = (
    "Abu Khaled spent two years with the Islamic State in Raqqa before he defected and fled across "
    "the border to Turkey in the spring.",
    "The former fighter says he joined the group believing its promises of justice, but left after "
    "commanders ordered him to execute prisoners from his own town.",
    "\"I realised the emirs were stealing and lying to us,\" he told our reporter in a small flat in "
    "Gaziantep, where he now lives in hiding from the group's security officers.",
    "He escaped at night with the help of a smuggler, paying everything he had saved. Other defectors "
    "he knew were caught and killed at checkpoints.",
    "Today he speaks to young men in the camps about why he deserted, hoping to keep them from making "
    "the same mistake he made when he was nineteen.",
)
OTHER_STORY = (
    "The city council approved a new budget for road repairs on Tuesday after a long debate about the "
    "costs of asphalt and labour.",
    "Officials said the work would begin in the spring and last for several months, with detours "
    "announced in advance for commuters.",
    "Residents had complained for years about potholes on the main avenue, which carries most of the "
    "traffic into the old town centre.",
    "The mayor said the plan balanced the needs of drivers, cyclists and pedestrians and would be "
    "reviewed after the first phase.",
)


def article_html(title: str, published: str | None, *, paragraphs: Sequence[str] = DEFECTOR_STORY,
                 lead: str = "") -> str:
    """A news article page; `published` (ISO 8601) in its metadata and byline, or no date at all.

    With the default paragraphs the project's rules flag it (a defector's account); with
    `OTHER_STORY` they do not. `lead` is prepended to the first paragraph (to make texts differ).
    """
    texts = [lead + paragraphs[0], *paragraphs[1:]] if lead else list(paragraphs)
    body = "".join(f"<p>{html.escape(p)}</p>" for p in texts)
    meta = f'<meta property="article:published_time" content="{published}">' if published else ""
    byline = f' · <time datetime="{published}">{published[:10]}</time>' if published else ""
    title = html.escape(title)
    return (
        f'<!doctype html><html lang="en"><head><meta charset="utf-8"><title>{title}</title>{meta}</head>'
        f'<body><header><nav><a href="/">Home</a> <a href="/about">About</a></nav></header>'
        f'<main><article><h1>{title}</h1><p class="byline">By Staff Reporter{byline}</p>{body}'
        f"</article></main>"
        f"<footer><p>Copyright The Test Gazette</p></footer></body></html>"
    )


# ---------------------------------------------------------------- dwatch backfill in a subprocess


def write_config(
    config_dir: Path,
    sources: list[dict[str, Any]],
    *,
    crawl: Mapping[str, Any] | None = None,
    backfill: Mapping[str, Any] | None = None,
) -> Path:
    """A config directory: sources.yaml, settings.yaml (LOCAL_CRAWL + `crawl`, `backfill`), rules.yaml."""
    config_dir.mkdir(parents=True, exist_ok=True)
    (config_dir / "sources.yaml").write_text(
        yaml.safe_dump({"sources": sources}, allow_unicode=True, sort_keys=False), encoding="utf-8")
    settings: dict[str, Any] = {"crawl": {**LOCAL_CRAWL, **(crawl or {})}}
    if backfill:
        settings["backfill"] = dict(backfill)
    (config_dir / "settings.yaml").write_text(yaml.safe_dump(settings), encoding="utf-8")
    shutil.copyfile(REPO / "config" / "rules.yaml", config_dir / "rules.yaml")
    return config_dir


@dataclass(frozen=True)
class BackfillOutcome:
    returncode: int
    stdout: str
    stderr: str


def _env(data_dir: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DWATCH_")}
    env["DWATCH_DATA_DIR"] = str(data_dir)
    return env


def backfill_command(config_dir: Path, *args: str) -> list[str]:
    return [sys.executable, "-m", "cli", "backfill", "--config", str(config_dir), *args]


def start_backfill_cli(config_dir: Path, data_dir: Path, *args: str) -> subprocess.Popen[str]:
    """`python -m cli backfill ...` started in the background (to be killed by the test)."""
    return subprocess.Popen(backfill_command(config_dir, *args), cwd=REPO, env=_env(data_dir),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def run_backfill_cli(config_dir: Path, data_dir: Path, *args: str, timeout: float = 240) -> BackfillOutcome:
    """`python -m cli backfill --config config_dir ...` with DWATCH_DATA_DIR=data_dir, to the end."""
    proc = subprocess.run(backfill_command(config_dir, *args), cwd=REPO, env=_env(data_dir),
                          capture_output=True, text=True, timeout=timeout)
    # Scrapy's deprecations fail the test, as they would under filterwarnings=error in this process
    assert "ScrapyDeprecationWarning" not in proc.stderr, proc.stderr[-3000:]
    assert "Traceback" not in proc.stderr, proc.stderr[-3000:]
    return BackfillOutcome(proc.returncode, proc.stdout, proc.stderr)
