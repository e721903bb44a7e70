"""demo.server: content types, templating, overrides, request log, HEAD and conditional GET."""

from __future__ import annotations

import http.client
import re
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from demo.server import FixtureServer, content_type_for, serve_directory

REPO = Path(__file__).resolve().parents[2]

RSS = b'<?xml version="1.0"?>\n<rss version="2.0"><channel><title>t</title></channel></rss>\n'
ATOM = b'<?xml version="1.0"?>\n<feed xmlns="http://www.w3.org/2005/Atom"><title>t</title></feed>\n'
JSON_FEED = b'{"version": "https://jsonfeed.org/version/1.1", "title": "t", "items": []}\n'


@pytest.fixture()
def site(tmp_path: Path) -> Path:
    root = tmp_path / "site"
    (root / "feeds").mkdir(parents=True)
    (root / "section").mkdir()
    (root / "index.html").write_text("<html><body>home</body></html>", encoding="utf-8")
    (root / "section" / "index.html").write_text("<p>section</p>", encoding="utf-8")
    (root / "robots.txt").write_text("User-agent: *\nAllow: /\n", encoding="utf-8")
    (root / "feeds" / "news.rss").write_bytes(RSS)
    (root / "feeds" / "world.atom").write_bytes(ATOM)
    (root / "feeds" / "rss.xml").write_bytes(RSS)
    (root / "feeds" / "atom.xml").write_bytes(ATOM)
    (root / "feeds" / "feed.json").write_bytes(JSON_FEED)
    (root / "data.json").write_text('{"a": 1}', encoding="utf-8")
    (root / "sitemap.xml").write_text("<urlset/>", encoding="utf-8")
    (root / "style.css").write_text("body{}", encoding="utf-8")
    (root / "links.xml.tmpl").write_text(
        "<urlset><url><loc>{{BASE_URL}}/a.html</loc></url>"
        "<url><loc>{{BASE_URL}}/b.html</loc></url></urlset>",
        encoding="utf-8",
    )
    (root / "page.html.tmpl").write_text('<a href="{{BASE_URL}}/x">x</a>', encoding="utf-8")
    (tmp_path / "secret.txt").write_text("outside the site", encoding="utf-8")
    return root


@pytest.fixture()
def server(site: Path) -> Iterator[FixtureServer]:
    with serve_directory(site) as running:
        yield running


def fetch(
    server: FixtureServer, path: str, method: str = "GET", headers: dict[str, str] | None = None
) -> tuple[int, dict[str, str], bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=5)
    try:
        conn.request(method, path, headers=headers or {})
        resp = conn.getresponse()
        return resp.status, {k.lower(): v for k, v in resp.getheaders()}, resp.read()
    finally:
        conn.close()


def test_binds_loopback_on_a_free_port(server: FixtureServer) -> None:
    assert re.fullmatch(r"http://127\.0\.0\.1:\d+", server.base_url)
    assert server.port > 0
    assert server.url("/feeds/news.rss") == server.base_url + "/feeds/news.rss"


@pytest.mark.parametrize(
    ("path", "content_type"),
    [
        ("/index.html", "text/html; charset=utf-8"),
        ("/", "text/html; charset=utf-8"),
        ("/section/", "text/html; charset=utf-8"),
        ("/robots.txt", "text/plain; charset=utf-8"),
        ("/feeds/news.rss", "application/rss+xml; charset=utf-8"),
        ("/feeds/world.atom", "application/atom+xml; charset=utf-8"),
        ("/feeds/rss.xml", "application/rss+xml; charset=utf-8"),
        ("/feeds/atom.xml", "application/atom+xml; charset=utf-8"),
        ("/feeds/feed.json", "application/feed+json"),
        ("/data.json", "application/json"),
        ("/sitemap.xml", "application/xml; charset=utf-8"),
        ("/links.xml", "application/xml; charset=utf-8"),
        ("/style.css", "text/css; charset=utf-8"),
    ],
)
def test_content_type_by_extension_and_feed_root(
    server: FixtureServer, path: str, content_type: str
) -> None:
    status, headers, _ = fetch(server, path)
    assert status == 200
    assert headers["content-type"] == content_type


def test_content_type_for_unknown_extension_is_octet_stream() -> None:
    assert content_type_for("blob.zzz", b"\x00\x01") == "application/octet-stream"


def test_templates_are_served_without_suffix_with_base_url_filled_in(
    server: FixtureServer,
) -> None:
    status, headers, body = fetch(server, "/links.xml")
    assert status == 200
    assert body.decode() == (
        f"<urlset><url><loc>{server.base_url}/a.html</loc></url>"
        f"<url><loc>{server.base_url}/b.html</loc></url></urlset>"
    )
    assert headers["content-length"] == str(len(body))
    assert fetch(server, "/page.html")[2] == f'<a href="{server.base_url}/x">x</a>'.encode()
    # the raw template is not exposed
    assert fetch(server, "/links.xml.tmpl")[0] == 404


def test_missing_files_and_paths_outside_the_root_are_404(server: FixtureServer) -> None:
    assert fetch(server, "/nothing-here.html")[0] == 404
    assert fetch(server, "/../secret.txt")[0] == 404
    assert fetch(server, "/%2e%2e/secret.txt")[0] == 404


def test_query_strings_are_ignored_when_serving(server: FixtureServer) -> None:
    status, _, body = fetch(server, "/index.html?utm_source=rss&utm_medium=feed")
    assert (status, body) == (200, b"<html><body>home</body></html>")


def test_override_status_then_clear(server: FixtureServer) -> None:
    server.set_response("/feeds/news.rss", status=404)
    status, headers, body = fetch(server, "/feeds/news.rss")
    assert status == 404
    assert b"404 Not Found" in body
    assert headers["content-type"] == "text/html; charset=utf-8"
    server.clear_response("/feeds/news.rss")
    assert fetch(server, "/feeds/news.rss")[2] == RSS


def test_override_body_is_templated_and_typed_by_path(server: FixtureServer) -> None:
    changed = '<rss version="2.0"><channel><item><link>{{BASE_URL}}/new.html</link></item></channel></rss>'
    server.set_response("/feeds/news.rss", body=changed)
    status, headers, body = fetch(server, "/feeds/news.rss?again=1")
    assert status == 200
    assert body.decode() == changed.replace("{{BASE_URL}}", server.base_url)
    assert headers["content-type"] == "application/rss+xml; charset=utf-8"


def test_override_for_a_path_that_has_no_file(server: FixtureServer) -> None:
    server.set_response("/late.html", body="<p>late</p>", headers={"X-Test": "yes"})
    status, headers, body = fetch(server, "/late.html")
    assert (status, body, headers["x-test"]) == (200, b"<p>late</p>", "yes")


def test_override_headers_only_keeps_the_file_body(server: FixtureServer) -> None:
    server.set_response("/index.html", headers={"Content-Type": "application/pdf"})
    status, headers, body = fetch(server, "/index.html")
    assert (status, headers["content-type"], body) == (
        200, "application/pdf", b"<html><body>home</body></html>"
    )


def test_override_redirect(server: FixtureServer) -> None:
    server.set_response("/old.html", status=301, headers={"Location": "/index.html"})
    status, headers, _ = fetch(server, "/old.html")
    assert (status, headers["location"]) == (301, "/index.html")


def test_malformed_feed_override_is_served_verbatim(server: FixtureServer) -> None:
    server.set_response("/feeds/world.atom", body=b"<feed><entry><title>cut off")
    assert fetch(server, "/feeds/world.atom")[2] == b"<feed><entry><title>cut off"
    server.clear_response()
    assert fetch(server, "/feeds/world.atom")[2] == ATOM


def test_request_log_records_method_target_and_headers(server: FixtureServer) -> None:
    fetch(server, "/index.html?utm_source=x", headers={"User-Agent": "probe/1.0"})
    fetch(server, "/robots.txt", method="HEAD")
    fetch(server, "/index.html")
    first = server.requests[0]
    assert (first.method, first.path, first.bare_path) == (
        "GET", "/index.html?utm_source=x", "/index.html"
    )
    assert first.headers["User-Agent"] == "probe/1.0"
    assert server.requests.paths() == ["/index.html?utm_source=x", "/robots.txt", "/index.html"]
    assert server.requests.paths("HEAD") == ["/robots.txt"]
    assert server.requests.count("/index.html") == 2
    assert server.requests.count("/index.html", method="HEAD") == 0
    assert len(server.requests) == 3
    server.requests.clear()
    assert server.requests.snapshot() == []


def test_request_log_is_complete_under_concurrent_requests(server: FixtureServer) -> None:
    statuses: list[int] = []
    lock = threading.Lock()

    def worker(n: int) -> None:
        status = fetch(server, f"/index.html?n={n}")[0]
        with lock:
            statuses.append(status)

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(24)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=10)
    assert statuses == [200] * 24
    assert sorted(server.requests.paths()) == sorted(f"/index.html?n={n}" for n in range(24))


def test_head_sends_headers_without_body(server: FixtureServer) -> None:
    _, get_headers, get_body = fetch(server, "/feeds/news.rss")
    status, headers, body = fetch(server, "/feeds/news.rss", method="HEAD")
    assert (status, body) == (200, b"")
    assert headers["content-length"] == str(len(get_body))
    assert headers["etag"] == get_headers["etag"]
    assert headers["content-type"] == "application/rss+xml; charset=utf-8"


def test_conditional_get_with_etag_and_last_modified(server: FixtureServer) -> None:
    _, headers, _ = fetch(server, "/feeds/news.rss")
    etag, last_modified = headers["etag"], headers["last-modified"]
    status, _, body = fetch(server, "/feeds/news.rss", headers={"If-None-Match": etag})
    assert (status, body) == (304, b"")
    status, _, body = fetch(server, "/feeds/news.rss", headers={"If-None-Match": '"stale"'})
    assert (status, body) == (200, RSS)
    status, _, _ = fetch(server, "/feeds/news.rss", headers={"If-Modified-Since": last_modified})
    assert status == 304
    old = "Mon, 01 Jan 2001 00:00:00 GMT"
    assert fetch(server, "/feeds/news.rss", headers={"If-Modified-Since": old})[0] == 200


def test_changed_override_body_gets_a_new_etag(server: FixtureServer) -> None:
    etag = fetch(server, "/feeds/news.rss")[1]["etag"]
    server.set_response("/feeds/news.rss", body=RSS.replace(b"<title>t", b"<title>u"))
    status, headers, _ = fetch(server, "/feeds/news.rss", headers={"If-None-Match": etag})
    assert status == 200
    assert headers["etag"] != etag


def test_serving_is_quiet(site: Path, capfd: pytest.CaptureFixture[str]) -> None:
    with serve_directory(site) as running:
        fetch(running, "/index.html")
        fetch(running, "/missing")
        # a client that hangs up without reading the answer
        conn = http.client.HTTPConnection("127.0.0.1", running.port, timeout=5)
        conn.request("GET", "/feeds/news.rss")
        conn.close()
    out, err = capfd.readouterr()
    assert (out, err) == ("", "")


def test_stop_is_idempotent_and_base_url_needs_a_running_server(site: Path) -> None:
    server = serve_directory(site)
    with pytest.raises(RuntimeError, match="not running"):
        _ = server.base_url
    with server:
        port = server.port
        assert fetch(server, "/robots.txt")[0] == 200
    server.stop()
    with pytest.raises(OSError):
        http.client.HTTPConnection("127.0.0.1", port, timeout=2).connect()


def test_kept_alive_connection_is_served_until_stop(site: Path) -> None:
    server = serve_directory(site).start()
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=5)
    try:
        for path in ("/robots.txt", "/index.html"):
            conn.request("GET", path)
            assert conn.getresponse().read() != b""
        server.stop()
        with pytest.raises((http.client.HTTPException, OSError)):
            conn.request("GET", "/robots.txt")
            conn.getresponse().read()
    finally:
        conn.close()
        server.stop()
    assert server.requests.paths() == ["/robots.txt", "/index.html"]


def test_root_must_be_a_directory(tmp_path: Path) -> None:
    with pytest.raises(NotADirectoryError, match="not a directory"):
        serve_directory(tmp_path / "absent")


def test_command_line_prints_the_url_and_serves(site: Path) -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "demo.server", str(site)],
        cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        match = re.search(r"at (http://127\.0\.0\.1:(\d+))/", line)
        assert match, line
        conn = http.client.HTTPConnection("127.0.0.1", int(match.group(2)), timeout=5)
        conn.request("GET", "/links.xml")
        body = conn.getresponse().read().decode()
        conn.close()
        assert f"<loc>{match.group(1)}/a.html</loc>" in body
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        if proc.stdout:
            proc.stdout.close()
        if proc.stderr:
            proc.stderr.close()


def test_command_line_rejects_a_missing_directory(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "demo.server", str(tmp_path / "absent")],
        cwd=REPO, capture_output=True, text=True, timeout=30,
    )
    assert result.returncode == 2
    assert "not a directory" in result.stderr
