"""Security: auth on and off, the loopback guard, `dwatch serve`'s refusal, headers and CSP on
every response, no inline script/style/handler in any page, and hostile text shown inert."""

from __future__ import annotations

import base64
import html
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import lxml.html
import pytest
from click.testing import CliRunner

from cli import main
from review.web import AuthConfig, AuthError, create_app
from review.web.security import APP_CSP
from store import open_session, queue
from tests.review.conftest import BASE_URL, LOOPBACK_CLIENT, test_client_class
from tests.review.seed import HOSTILE_MARKERS, Seeded
from tests.store.pages import make_page

TOKEN = "s3cret-token-for-tests-0123456789"
EXPECTED_CSP = ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
                "connect-src 'self'; form-action 'self'; frame-src 'self'; frame-ancestors 'none'; "
                "base-uri 'none'")


# ---------------------------------------------------------------- AuthConfig


def test_auth_config_from_env() -> None:
    assert AuthConfig.from_env({}) is None
    assert AuthConfig.from_env({"DWATCH_AUTH_TOKEN": "  "}) is None
    assert AuthConfig.from_env({"DWATCH_AUTH_TOKEN": TOKEN}) == AuthConfig(token=TOKEN)
    both = AuthConfig.from_env({"DWATCH_AUTH_USER": "amal", "DWATCH_AUTH_PASSWORD": "pw with spaces "})
    assert both == AuthConfig(user="amal", password="pw with spaces ")
    assert TOKEN not in repr(AuthConfig(token=TOKEN)) and "pw" not in repr(both)
    with pytest.raises(AuthError, match="DWATCH_AUTH_PASSWORD is not set: set both DWATCH_AUTH_USER "
                                        "and DWATCH_AUTH_PASSWORD"):
        AuthConfig.from_env({"DWATCH_AUTH_USER": "amal"})
    with pytest.raises(AuthError, match="DWATCH_AUTH_TOKEN is too short"):
        AuthConfig.from_env({"DWATCH_AUTH_TOKEN": "1234"})
    auth = AuthConfig(token=TOKEN, user="amal", password="pw")
    assert auth.check_header(f"Bearer {TOKEN}") == "token"
    assert auth.check_header("Basic " + base64.b64encode(b"amal:pw").decode()) == "amal"
    assert auth.check_header("Basic " + base64.b64encode(b"amal:PW").decode()) is None
    assert auth.check_header("Bearer nope") is None
    assert auth.check_header("Basic !!!") is None


# ---------------------------------------------------------------- without auth: loopback only


@pytest.mark.parametrize("client_host", ["203.0.113.7", "10.0.0.2", "192.168.1.20", "::ffff:8.8.8.8"])
def test_without_auth_the_app_refuses_clients_that_are_not_loopback(seeded: Seeded, client_host: str) -> None:
    app = create_app(seeded.settings)
    with test_client_class()(app, base_url=BASE_URL, client=(client_host, 4000)) as remote:
        for path in ("/", "/api/candidates", f"/candidates/{seeded.id('kobani')}/raw", "/static/app.js"):
            response = remote.get(path)
            assert response.status_code == 403
            assert response.text.startswith("This server has no authentication configured, so it only "
                                            "answers requests from this machine (loopback).")
            assert response.headers["content-security-policy"] == EXPECTED_CSP


def test_without_auth_loopback_v6_is_served_and_other_host_names_are_not(seeded: Seeded) -> None:
    app = create_app(seeded.settings)
    with test_client_class()(app, base_url="http://[::1]:8765", client=("::1", 4000)) as local:
        assert local.get("/").status_code == 200
    with test_client_class()(app, base_url="http://localhost:8765", client=LOOPBACK_CLIENT) as local:
        assert local.get("/").status_code == 200
    with test_client_class()(app, base_url="http://rebind.evil.example:8765",
                             client=LOOPBACK_CLIENT) as rebound:
        response = rebound.get("/api/candidates")
        assert response.status_code == 403
        assert "'rebind.evil.example' is not a loopback name" in response.text


@pytest.mark.parametrize("host", ["0.0.0.0", "192.0.2.10", "::"])
def test_serve_refuses_a_public_host_without_auth(host: str, tmp_path: Any) -> None:
    result = CliRunner().invoke(main, ["serve", "--host", host, "--port", "0"],
                                env={"DWATCH_DATA_DIR": str(tmp_path), "DWATCH_AUTH_TOKEN": "",
                                     "DWATCH_AUTH_USER": "", "DWATCH_AUTH_PASSWORD": ""})
    assert result.exit_code == 2
    assert result.output == (
        f"Error: refusing to listen on {host} without authentication: set DWATCH_AUTH_TOKEN or "
        "DWATCH_AUTH_USER and DWATCH_AUTH_PASSWORD\n")
    assert not (tmp_path / "dwatch.sqlite3").exists()


def test_serve_refuses_half_configured_auth(tmp_path: Any) -> None:
    result = CliRunner().invoke(main, ["serve", "--host", "0.0.0.0"],
                                env={"DWATCH_DATA_DIR": str(tmp_path), "DWATCH_AUTH_TOKEN": "",
                                     "DWATCH_AUTH_USER": "amal", "DWATCH_AUTH_PASSWORD": ""})
    assert result.exit_code == 2
    assert "DWATCH_AUTH_PASSWORD is not set" in result.output


# ---------------------------------------------------------------- with auth


@pytest.fixture
def auth_app(seeded: Seeded) -> Any:
    return create_app(seeded.settings, auth=AuthConfig(token=TOKEN, user="amal", password="pw"))


@pytest.fixture
def remote(auth_app: Any) -> Iterator[Any]:
    """A browser on another machine (auth is configured, so it may connect)."""
    with test_client_class()(auth_app, base_url="http://review.example:8765",
                             client=("198.51.100.4", 5000)) as client:
        yield client


def test_with_auth_everything_needs_it(remote: Any, seeded: Seeded) -> None:
    page = remote.get("/?range=all", follow_redirects=False)
    assert page.status_code == 303
    assert page.headers["location"] == "/login?next=%2F%3Frange%3Dall"
    for path in ("/api/candidates", f"/api/candidates/{seeded.id('kobani')}", "/api/export"):
        response = remote.get(path)
        assert response.status_code == 401
        assert response.headers["www-authenticate"] == 'Bearer realm="dwatch"'
        assert response.json()["detail"].startswith("authentication required")
    assert remote.post(f"/api/candidates/{seeded.id('kobani')}/decision",
                       json={"decision": "accept"}).status_code == 401
    assert remote.get("/login").status_code == 200
    assert remote.get("/static/app.css").status_code == 200


def test_bearer_and_basic_api_clients(remote: Any, seeded: Seeded) -> None:
    bearer = {"Authorization": f"Bearer {TOKEN}"}
    listed = remote.get("/api/candidates?range=all", headers=bearer)
    assert listed.status_code == 200 and listed.json()["total"] == 8
    assert remote.get("/api/candidates", headers={"Authorization": "Bearer wrong"}).status_code == 401
    basic = {"Authorization": "Basic " + base64.b64encode(b"amal:pw").decode()}
    # header-authenticated calls are not cookie-based: no CSRF token needed; 'by' defaults to the user
    response = remote.post(f"/api/candidates/{seeded.id('hostile')}/decision",
                           json={"decision": "reject", "note": "clickbait"}, headers=basic)
    assert response.status_code == 200, response.text
    assert (response.json()["decided_by"], response.json()["status"]) == ("amal", "rejected")
    cross = remote.post(f"/api/candidates/{seeded.id('hostile')}/decision", json={"decision": "accept"},
                        headers={**bearer, "Origin": "https://evil.example"})
    assert cross.status_code == 403
    with open_session(seeded.settings.database_url) as session:
        detail = queue.get_candidate(session, seeded.id("hostile"))
    assert detail is not None and [d.decision for d in detail.decisions] == ["reject"]


def login_token(client: Any, next_path: str = "/") -> str:
    page = lxml.html.fromstring(client.get(f"/login?next={next_path}").text)
    return str(page.xpath('//form[@data-testid="login-form"]//input[@name="csrf_token"]')[0].get("value"))


def test_browser_login_with_user_and_password_then_decide_then_logout(remote: Any, seeded: Seeded) -> None:
    token = login_token(remote, "/%3Frange%3Dall")
    wrong = remote.post("/login", data={"user": "amal", "password": "nope", "csrf_token": token,
                                        "next": "/?range=all"})
    assert wrong.status_code == 401
    assert "That token, or that user and password, is not right." in wrong.text
    response = remote.post("/login", data={"user": "amal", "password": "pw", "csrf_token": token,
                                           "next": "/?range=all"}, follow_redirects=False)
    assert response.status_code == 303 and response.headers["location"] == "/?range=all"
    cookie = response.headers["set-cookie"]
    assert cookie.startswith("dwatch_session=")
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie and "Secure" not in cookie
    queue_page = remote.get("/?range=all")
    assert queue_page.status_code == 200 and "Signed in as amal" in queue_page.text
    # a new session at login: the token of the login form is no longer valid
    stale = remote.post(f"/candidates/{seeded.id('french')}/decision",
                        data={"decision": "accept", "csrf_token": token}, follow_redirects=False)
    assert stale.status_code == 403
    fresh = lxml.html.fromstring(queue_page.text).xpath('//meta[@name="csrf-token"]')[0].get("content")
    decided = remote.post(f"/candidates/{seeded.id('french')}/decision",
                          data={"decision": "accept", "csrf_token": fresh}, follow_redirects=False)
    assert decided.status_code == 303
    with open_session(seeded.settings.database_url) as session:
        detail = queue.get_candidate(session, seeded.id("french"))
    assert detail is not None
    assert [(d.decision, d.decided_by) for d in detail.decisions] == [("accept", "amal")]
    out = remote.post("/logout", data={"csrf_token": fresh}, follow_redirects=False)
    assert out.status_code == 303 and out.headers["location"] == "/login"
    assert remote.get("/", follow_redirects=False).status_code == 303


def test_token_login_over_https_sets_a_secure_cookie_and_never_redirects_off_site(auth_app: Any) -> None:
    with test_client_class()(auth_app, base_url="https://review.example",
                             client=("198.51.100.4", 5000)) as browser:
        token = login_token(browser)
        response = browser.post("/login", data={"token": TOKEN, "csrf_token": token,
                                                "next": "//evil.example/"}, follow_redirects=False)
        assert response.status_code == 303 and response.headers["location"] == "/"
        assert "Secure" in response.headers["set-cookie"]


def test_login_needs_its_csrf_token(remote: Any) -> None:
    login_token(remote)
    response = remote.post("/login", data={"token": TOKEN}, follow_redirects=False)
    assert response.status_code == 403


# ---------------------------------------------------------------- headers and markup


def test_security_headers_on_every_response(client: Any, seeded: Seeded) -> None:
    paths = ["/", "/?range=all", f"/candidates/{seeded.id('hostile')}", "/overview", "/login",
             "/api/candidates", "/api/facets", "/openapi.json", "/static/app.js", "/static/app.css",
             "/candidates/9999", "/api/candidates/9999", "/?since=bad", "/export?range=all"]
    for path in paths:
        response = client.get(path)
        headers = response.headers
        assert headers["content-security-policy"] == EXPECTED_CSP == APP_CSP, path
        assert headers["x-content-type-options"] == "nosniff", path
        assert headers["referrer-policy"] == "no-referrer", path
        assert headers["x-frame-options"] == "DENY", path
    archived = client.get(f"/candidates/{seeded.id('hostile')}/archived").headers
    assert archived["x-frame-options"] == "SAMEORIGIN"
    assert "frame-ancestors 'self'" in archived["content-security-policy"]
    assert "sandbox" in archived["content-security-policy"]
    assert client.get("/static/app.js").headers["content-type"].startswith(("text/javascript",
                                                                            "application/javascript"))


_INLINE_HANDLER = re.compile(r"<[^>]*\son[a-z]+\s*=", re.IGNORECASE)


def every_page(client: Any, seeded: Seeded) -> dict[str, str]:
    paths = ["/", "/?range=all", "/?range=7d", "/overview", "/login", "/candidates/9999", "/?since=x"]
    paths += [f"/candidates/{seeded.id(name)}?range=all" for name in seeded.candidate_names]
    return {path: client.get(path).text for path in paths}


def test_no_inline_script_style_or_handler_in_any_page(client: Any, seeded: Seeded) -> None:
    for path, text in every_page(client, seeded).items():
        page = lxml.html.fromstring(text)
        scripts = page.xpath("//script")
        assert [s.get("src") for s in scripts] == ["/static/app.js"], path
        assert all(not (s.text or "").strip() for s in scripts), path
        assert not page.xpath("//style | //*[@style]"), path
        assert not [(el.tag, a) for el in page.iter() if isinstance(el.tag, str)
                    for a in el.attrib if a.lower().startswith("on")], path
        assert not _INLINE_HANDLER.search(text), path
        assert "javascript:" not in " ".join(page.xpath("//@href | //@src | //@action")).lower(), path


def test_the_hostile_article_appears_only_escaped(client: Any, seeded: Seeded) -> None:
    hostile = seeded.id("hostile")
    sources = every_page(client, seeded)
    sources["/api"] = client.get(f"/api/candidates/{hostile}").text
    markup = [m for m in HOSTILE_MARKERS if "<" in m]
    for path, text in sources.items():
        for marker in markup:
            assert marker not in text or path == "/api", (path, marker)
        if path != "/api":   # a javascript: URL written in the text stays text, never a link
            attributes = " ".join(lxml.html.fromstring(text).xpath("//@*"))
            assert "dwatchXss" not in attributes, path
    page = sources[f"/candidates/{hostile}?range=all"]
    for marker in HOSTILE_MARKERS:
        assert html.escape(marker, quote=False) in page, marker
    parsed = lxml.html.fromstring(page)
    title = parsed.xpath('//*[@data-testid="candidate-title"]')[0]
    assert title.text_content() == seeded.pages["hostile"].title
    assert not title.xpath(".//script") and not parsed.xpath("//img")
    text = parsed.xpath('//*[@data-testid="candidate-text"]')[0].text_content()
    assert "<img src=x onerror=window.dwatchXss=6>" in text      # shown as text, not an element
    queue_page = lxml.html.fromstring(sources["/?range=all"])
    titles = [a.text_content() for a in queue_page.xpath('//a[@data-field="title"]')]
    assert seeded.pages["hostile"].title in titles
    # the JSON API returns the text as data (JSON strings), with the JSON content type
    api = client.get(f"/api/candidates/{hostile}")
    assert api.headers["content-type"] == "application/json"
    assert api.json()["title"] == seeded.pages["hostile"].title


def test_only_http_urls_become_links(client: Any, seeded: Seeded) -> None:
    with open_session(seeded.settings.database_url) as session:
        outcome = queue.record_page(session, make_page(
            "https://odd.example/a", final_url="javascript:alert(document.domain)//",
            discovered_from="data:text/html,<script>alert(1)</script>",
            requested_url="JaVaScRiPt:alert(2)"))
    assert outcome.candidate_id is not None
    page = lxml.html.fromstring(client.get(f"/candidates/{outcome.candidate_id}").text)
    hrefs = page.xpath("//a/@href")
    assert not [h for h in hrefs if h.lower().startswith(("javascript:", "data:"))]
    chain = page.xpath('//*[@data-testid="provenance"]')[0]
    assert chain.xpath('.//*[@data-field="final_url"]')[0].text_content().strip() == (
        "javascript:alert(document.domain)//")
    assert not chain.xpath('.//*[@data-field="final_url"]//a')
    assert not chain.xpath('.//*[@data-field="discovered_from"]//a')


# ---------------------------------------------------------------- dwatch serve, for real


def _serve(seeded: Seeded, env_extra: dict[str, str]) -> tuple[Any, str]:
    env = {**os.environ, "DWATCH_DATA_DIR": str(seeded.data_dir), "DWATCH_AUTH_TOKEN": "",
           "DWATCH_AUTH_USER": "", "DWATCH_AUTH_PASSWORD": "", **env_extra}
    process = subprocess.Popen([sys.executable, "-m", "cli", "serve", "--port", "0"], env=env,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               cwd=Path(__file__).resolve().parents[2])
    assert process.stdout is not None
    line = process.stdout.readline()
    match = re.match(r"defector-watch review UI on (http://127\.0\.0\.1:\d+/) ", line)
    if match is None:
        process.kill()
        raise AssertionError(f"dwatch serve said {line!r}; stderr: {process.communicate()[1]}")
    process.stdout.close()       # nothing more is read from it (uvicorn logs to stderr)
    process.stdout = None
    return process, match.group(1)


@pytest.mark.parametrize("token", ["", TOKEN])
def test_dwatch_serve_serves_the_store_and_stops(seeded: Seeded, token: str) -> None:
    process, url = _serve(seeded, {"DWATCH_AUTH_TOKEN": token})
    response: httpx.Response | None = None
    try:
        for _ in range(100):      # the socket is bound before the URL is printed; wait for uvicorn
            try:
                response = httpx.get(url + "api/candidates?range=all", timeout=5,
                                     headers={"Authorization": f"Bearer {token}"} if token else {})
                break
            except httpx.ConnectError:
                assert process.poll() is None, process.communicate()[1]
                time.sleep(0.05)
        assert response is not None and response.status_code == 200
        assert response.json()["total"] == 8
        if token:
            assert httpx.get(url + "api/candidates", timeout=5).status_code == 401
    finally:
        process.terminate()
        _, stderr = process.communicate(timeout=15)      # waits, and closes the pipes
    # uvicorn shuts down gracefully, then re-raises the SIGTERM it caught
    assert process.returncode == -signal.SIGTERM
    assert "Traceback" not in stderr


def test_an_unexpected_error_is_a_plain_500_with_the_security_headers(
    seeded: Seeded, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(*_: Any) -> Any:
        raise RuntimeError("database on fire")

    monkeypatch.setattr(queue, "queue_facets", broken)
    app = create_app(seeded.settings)
    with test_client_class()(app, base_url=BASE_URL, client=LOOPBACK_CLIENT,
                             raise_server_exceptions=False) as client:
        response = client.get("/api/facets")
    assert response.status_code == 500
    assert response.text == ("Internal error: the request could not be completed; the server log "
                             "has the details.")
    assert "database on fire" not in response.text
    assert response.headers["content-security-policy"] == EXPECTED_CSP
    assert response.headers["x-content-type-options"] == "nosniff"
