"""The browser tests' harness: the review app on a live 127.0.0.1 server, driven by Debian's chromium.

    with live_server(create_app(settings)) as server:         # uvicorn in a thread, port 0
        with chromium() as browser:                            # one per test module
            with browser_session(browser, server) as session:  # a fresh context per test
                session.page.goto(server.url("/"))
                assert session.log.foreign_requests() == []

Playwright's own browser download does not work on these machines (no internet), so the tests
drive Debian's ``chromium`` package (/usr/bin/chromium). Without it they skip with a message
saying ``apt-get install chromium``; with DWATCH_REQUIRE_BROWSER_TEST=1 (set by .ci/run) they
fail instead, so CI never passes without running them.

Every page of a session is watched: each request it makes (``log.requests``, so a test can show
that nothing left the app's origin), console messages, uncaught page errors and dialogs (a
dialog is dismissed at once and recorded: a test of inert content fails if one ever opened).
Screenshots go to ``test-artifacts/`` under the repo root, or to $DWATCH_TEST_ARTIFACTS.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

import pytest
import uvicorn

if TYPE_CHECKING:
    from playwright.sync_api import (
        Browser,
        BrowserContext,
        ConsoleMessage,
        Dialog,
        Page,
        Request,
        WebError,
    )
    from starlette.types import ASGIApp

__all__ = [
    "CHROMIUM",
    "CHROMIUM_ARGS",
    "BrowserSession",
    "LiveServer",
    "PageLog",
    "artifacts_dir",
    "browser_session",
    "chromium",
    "live_server",
    "require_chromium",
]

logger = logging.getLogger(__name__)

REPO = Path(__file__).resolve().parents[2]
CHROMIUM = Path("/usr/bin/chromium")
# Without the background-networking switches chromium dials out at start (component updates,
# sync, QUIC probes), which a closed network refuses and which no test should do anyway.
CHROMIUM_ARGS = (
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
)
REQUIRE_ENV = "DWATCH_REQUIRE_BROWSER_TEST"
ARTIFACTS_ENV = "DWATCH_TEST_ARTIFACTS"
STARTUP_TIMEOUT = 10.0
STOP_TIMEOUT = 10.0
ACTION_TIMEOUT_MS = 10_000


def require_chromium() -> Path:
    """Debian's chromium, or a skip (a failure when DWATCH_REQUIRE_BROWSER_TEST=1)."""
    if CHROMIUM.is_file() and os.access(CHROMIUM, os.X_OK):
        return CHROMIUM
    message = (f"the browser tests need Debian's chromium at {CHROMIUM}: "
               "run `apt-get install chromium` (as root)")
    if os.environ.get(REQUIRE_ENV) == "1":
        pytest.fail(f"{message} ({REQUIRE_ENV}=1: the browser tests must run)")
    pytest.skip(message)


def artifacts_dir() -> Path:
    """Where screenshots go (created): $DWATCH_TEST_ARTIFACTS, else test-artifacts/ in the repo."""
    path = Path(os.environ.get(ARTIFACTS_ENV) or REPO / "test-artifacts")
    path.mkdir(parents=True, exist_ok=True)
    return path


# ---------------------------------------------------------------------------- the live server


@dataclass(frozen=True)
class LiveServer:
    host: str
    port: int

    @property
    def origin(self) -> str:
        return f"http://{self.host}:{self.port}"

    def url(self, path: str) -> str:
        return self.origin + path


@contextmanager
def live_server(app: ASGIApp) -> Iterator[LiveServer]:
    """Serve ``app`` with uvicorn on 127.0.0.1 (a port the kernel picks) in a background thread.

    The socket is bound here and handed to ``uvicorn.Server.run(sockets=[...])`` (the API
    uvicorn's own Gunicorn worker uses), so the port is known before the server starts and no
    other process can take it. Yields once the server accepts connections (the app's lifespan
    has run); at exit asks it to stop (``should_exit``) and waits for the thread.
    """
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    sock.listen(128)
    host, port = sock.getsockname()[:2]
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", timeout_graceful_shutdown=5))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]},
                              name=f"uvicorn-{port}", daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + STARTUP_TIMEOUT
        while not server.started:
            if not thread.is_alive():
                raise RuntimeError(f"the review server on 127.0.0.1:{port} stopped while starting "
                                   "(see the uvicorn log above)")
            if time.monotonic() > deadline:
                raise RuntimeError(f"the review server on 127.0.0.1:{port} did not start "
                                   f"within {STARTUP_TIMEOUT:.0f} s")
            time.sleep(0.02)
        with socket.create_connection((host, port), timeout=STARTUP_TIMEOUT):
            pass                                  # it accepts connections
        yield LiveServer(host, port)
    finally:
        server.should_exit = True
        thread.join(STOP_TIMEOUT)
        sock.close()
        if thread.is_alive():
            raise RuntimeError(f"the review server on 127.0.0.1:{port} did not stop "
                               f"within {STOP_TIMEOUT:.0f} s")


# ---------------------------------------------------------------------------- the browser


@contextmanager
def chromium() -> Iterator[Browser]:
    """Debian's chromium, headless, launched by Playwright (skips when it is not installed)."""
    executable = require_chromium()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(executable),
                                             args=list(CHROMIUM_ARGS))
        try:
            yield browser
        finally:
            browser.close()


@dataclass
class PageLog:
    """What the pages of one browser context did."""

    origin: str
    requests: list[str] = field(default_factory=list)         # every URL requested, in order
    console: list[tuple[str, str]] = field(default_factory=list)   # (type, text)
    errors: list[str] = field(default_factory=list)           # uncaught exceptions in a page
    dialogs: list[str] = field(default_factory=list)          # "alert: text", ... (dismissed)

    def foreign_requests(self) -> list[str]:
        """Requests that went anywhere but the app's own origin (data: URLs are in-page)."""
        return [url for url in self.requests
                if urlsplit(url).scheme != "data" and _origin(url) != self.origin]

    def on_request(self, request: Request) -> None:
        self.requests.append(request.url)

    def on_console(self, message: ConsoleMessage) -> None:
        self.console.append((message.type, message.text))

    def on_weberror(self, error: WebError) -> None:
        self.errors.append(str(error.error))

    def on_dialog(self, dialog: Dialog) -> None:
        self.dialogs.append(f"{dialog.type}: {dialog.message}")
        dialog.dismiss()


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


@dataclass
class BrowserSession:
    context: BrowserContext
    page: Page
    log: PageLog
    server: LiveServer

    def goto(self, path: str) -> None:
        response = self.page.goto(self.server.url(path))
        assert response is not None and response.status == 200, (
            f"GET {path}: HTTP {response.status if response else '(no response)'}")

    def screenshot(self, name: str) -> Path:
        """The whole page as ``name`` in the artifacts folder.

        Taken with the viewport stretched to the page's height rather than ``full_page=True``:
        chromium's full-page capture leaves out-of-process iframes (the sandboxed archived copy)
        blank.
        """
        path = artifacts_dir() / name
        viewport = self.page.viewport_size
        assert viewport is not None
        height = int(self.page.evaluate("() => document.documentElement.scrollHeight"))
        self.page.set_viewport_size({"width": viewport["width"], "height": max(height, 1)})
        try:
            self.page.screenshot(path=str(path))
        finally:
            self.page.set_viewport_size(viewport)
        return path


@contextmanager
def browser_session(browser: Browser, server: LiveServer) -> Iterator[BrowserSession]:
    """A fresh browser context (no cookies, no cache) with one page, every event recorded."""
    context = browser.new_context(viewport={"width": 1280, "height": 900}, locale="en-GB",
                                  timezone_id="UTC")
    context.set_default_timeout(ACTION_TIMEOUT_MS)
    log = PageLog(server.origin)
    context.on("request", log.on_request)
    context.on("console", log.on_console)
    context.on("weberror", log.on_weberror)
    context.on("dialog", log.on_dialog)
    try:
        yield BrowserSession(context, context.new_page(), log, server)
    finally:
        context.close()
