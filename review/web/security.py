"""The web UI's security: who may talk to it, who may change things, and what browsers may run.

* **Where it listens.** Without authentication the app answers only loopback clients that
  address it by a loopback name (127.0.0.1, ::1, localhost): ``dwatch serve`` refuses a
  non-loopback --host without auth, and ``SecurityMiddleware`` rejects other clients (defence
  in depth) and other Host names (DNS rebinding: a web page whose name resolves to 127.0.0.1).
* **Authentication** (``AuthConfig``, from DWATCH_AUTH_TOKEN, or DWATCH_AUTH_USER and
  DWATCH_AUTH_PASSWORD, env only). When configured, every page and API route needs it, reading
  included (the queue is research data): browsers log in at /login and get a signed session
  cookie; API clients send ``Authorization: Bearer <token>`` or HTTP Basic. Secrets are
  compared with ``hmac.compare_digest``.
* **Sessions.** Every browser gets a signed session cookie (review/web/sessions.py) carrying
  the session's CSRF token and, after a login, who logged in.
* **CSRF** (``csrf_protect``, a dependency of every route). A state-changing request that rides
  on the session cookie must carry the session's token (form field ``csrf_token`` or header
  ``X-CSRF-Token``) and must not come from another origin (Origin/Referer). Requests
  authenticated by an Authorization header are not cookie-based and need no token. Without
  auth, a request with no session cookie is accepted only as JSON (a cross-site page cannot
  send JSON without a CORS preflight, which this app never grants).
* **Headers** on every response: a strict CSP (no inline scripts or styles anywhere), nosniff,
  no referrer, no framing (the sanitised archive view sets its own, framable by us only).
"""

from __future__ import annotations

import base64
import binascii
import hmac
import ipaddress
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from http.cookies import SimpleCookie
from typing import Any
from urllib.parse import quote, urlsplit

from starlette.datastructures import Headers, MutableHeaders
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, RedirectResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from review.web.errors import WebError
from review.web.sessions import SESSION_COOKIE, SessionData, read_session, session_cookie

__all__ = [
    "APP_CSP",
    "CSRF_FIELD",
    "CSRF_HEADER",
    "AuthConfig",
    "AuthError",
    "SecurityMiddleware",
    "csrf_protect",
    "is_loopback_host",
]

logger = logging.getLogger(__name__)

APP_CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; form-action 'self'; frame-src 'self'; frame-ancestors 'none'; "
    "base-uri 'none'"
)
BASE_HEADERS = {
    "x-content-type-options": "nosniff",
    "referrer-policy": "no-referrer",
    "x-frame-options": "DENY",
    "cross-origin-opener-policy": "same-origin",
}
CSRF_FIELD = "csrf_token"
CSRF_HEADER = "x-csrf-token"
UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
PUBLIC_PATHS = ("/login", "/static/")   # reachable without authentication
LOOPBACK_NAMES = frozenset({"localhost", "localhost.", "ip6-localhost"})


class AuthError(ValueError):
    """The authentication settings in the environment are incomplete or empty."""


@dataclass(frozen=True)
class AuthConfig:
    """Who may use the app: a shared token, or one user and password (or both)."""

    token: str | None = None
    user: str | None = None
    password: str | None = None

    def __post_init__(self) -> None:
        if not self.token and not (self.user and self.password):
            raise AuthError("AuthConfig needs a token, or a user and a password")

    def __repr__(self) -> str:  # never print a secret
        return f"AuthConfig(token={'***' if self.token else None}, user={self.user!r}, password=***)"

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> AuthConfig | None:
        """DWATCH_AUTH_TOKEN, or DWATCH_AUTH_USER + DWATCH_AUTH_PASSWORD; None when none is set."""
        token = env.get("DWATCH_AUTH_TOKEN", "").strip() or None
        user = env.get("DWATCH_AUTH_USER", "").strip() or None
        password = env.get("DWATCH_AUTH_PASSWORD", "") or None
        if (user is None) != (password is None):
            missing = "DWATCH_AUTH_PASSWORD" if password is None else "DWATCH_AUTH_USER"
            raise AuthError(
                f"{missing} is not set: set both DWATCH_AUTH_USER and DWATCH_AUTH_PASSWORD "
                "(or DWATCH_AUTH_TOKEN alone) in the environment"
            )
        if token is not None and len(token) < 16:
            raise AuthError("DWATCH_AUTH_TOKEN is too short: use at least 16 random characters")
        if token is None and user is None:
            return None
        return cls(token=token, user=user, password=password)

    def check_token(self, token: str) -> bool:
        return self.token is not None and _same(token, self.token)

    def check_password(self, user: str, password: str) -> bool:
        if self.user is None or self.password is None:
            return False
        # both comparisons always run: the timing does not tell which one failed
        user_ok = _same(user, self.user)
        password_ok = _same(password, self.password)
        return user_ok and password_ok

    def check_header(self, authorization: str) -> str | None:
        """The identity an Authorization header proves ("token" or the user), else None."""
        scheme, _, value = authorization.partition(" ")
        value = value.strip()
        if scheme.lower() == "bearer" and self.check_token(value):
            return "token"
        if scheme.lower() == "basic":
            try:
                decoded = base64.b64decode(value, validate=True).decode("utf-8")
            except (binascii.Error, UnicodeDecodeError):
                return None
            user, sep, password = decoded.partition(":")
            if sep and self.check_password(user, password):
                return user
        return None


def _same(given: str, expected: str) -> bool:
    return hmac.compare_digest(given.encode("utf-8"), expected.encode("utf-8"))


# ---------------------------------------------------------------- the middleware


def is_loopback_host(host: str) -> bool:
    """Whether ``host`` (an address or name, no port) is a loopback one."""
    host = host.strip("[]").lower()
    if host in LOOPBACK_NAMES or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _host_name(host_header: str) -> str:
    """The name in a Host header, without its port."""
    if host_header.startswith("["):
        return host_header[1 : host_header.find("]")] if "]" in host_header else host_header
    return host_header.rsplit(":", 1)[0] if host_header.count(":") == 1 else host_header


def wants_json(scope: Scope) -> bool:
    path = str(scope.get("path", ""))
    if path.startswith("/api/") or path == "/api" or path == "/openapi.json":
        return True
    accept = Headers(scope=scope).get("accept", "")
    return "application/json" in accept and "text/html" not in accept


class SecurityMiddleware:
    """Loopback guard, session cookie, authentication and security headers (see module doc)."""

    def __init__(self, app: ASGIApp, *, auth: AuthConfig | None, key: bytes) -> None:
        self.app = app
        self.auth = auth
        self.key = key

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        refusal = self._refusal(scope, headers)
        if refusal is not None:
            await self._send_with_headers(refusal, scope, receive, send, set_cookie=None)
            return

        cookies = _cookies(headers)
        session = read_session(cookies.get(SESSION_COOKIE), self.key)
        fresh = session is None
        if session is None:
            session = SessionData.new()
        identity = self._identity(session, headers)
        state = scope.setdefault("state", {})
        state["session"] = session
        state["session_from_cookie"] = not fresh
        state["identity"] = identity          # None: not authenticated (or no auth configured)
        state["header_auth"] = identity is not None and "authorization" in headers
        state["auth_required"] = self.auth is not None
        state["cookie_key"] = self.key

        set_cookie = None
        if fresh:
            set_cookie = session_cookie(session, self.key, secure=scope.get("scheme") == "https")
        path = str(scope.get("path", ""))
        if self.auth is not None and identity is None and not path.startswith(PUBLIC_PATHS):
            await self._send_with_headers(self._unauthenticated(scope), scope, receive, send,
                                          set_cookie=set_cookie)
            return
        await self._send_with_headers(self.app, scope, receive, send, set_cookie=set_cookie)

    def _refusal(self, scope: Scope, headers: Headers) -> Response | None:
        if self.auth is not None:
            return None
        client = scope.get("client")
        client_host = client[0] if client else ""
        if not is_loopback_host(client_host):
            logger.warning("refused a request from %s: no authentication configured", client_host)
            return PlainTextResponse(
                "This server has no authentication configured, so it only answers requests from "
                "this machine (loopback). Set DWATCH_AUTH_TOKEN, or DWATCH_AUTH_USER and "
                "DWATCH_AUTH_PASSWORD, to open it to others.",
                status_code=403,
            )
        host = _host_name(headers.get("host", ""))
        if not is_loopback_host(host):
            return PlainTextResponse(
                f"Host {host!r} is not a loopback name. Without authentication this server only "
                "answers to localhost, 127.0.0.1 or [::1] (protection against DNS rebinding).",
                status_code=403,
            )
        return None

    def _identity(self, session: SessionData, headers: Headers) -> str | None:
        if self.auth is None:
            return None
        authorization = headers.get("authorization")
        if authorization:
            return self.auth.check_header(authorization)
        return session.user

    def _unauthenticated(self, scope: Scope) -> Response:
        if wants_json(scope) or scope.get("method") not in ("GET", "HEAD"):
            return JSONResponse(
                {"detail": "authentication required: send 'Authorization: Bearer <token>' "
                 "(DWATCH_AUTH_TOKEN) or HTTP Basic user:password, or log in at /login"},
                status_code=401,
                headers={"WWW-Authenticate": 'Bearer realm="dwatch"'},
            )
        target = str(scope.get("path", "/"))
        query = scope.get("query_string", b"").decode("latin-1")
        if query:
            target += "?" + query
        return RedirectResponse("/login?next=" + quote(target, safe=""), status_code=303)

    @staticmethod
    async def _send_with_headers(
        app: ASGIApp, scope: Scope, receive: Receive, send: Send, *, set_cookie: str | None
    ) -> None:
        async def send_wrapper(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                if "content-security-policy" not in headers:
                    headers["content-security-policy"] = APP_CSP
                for name, value in BASE_HEADERS.items():
                    if name not in headers:
                        headers[name] = value
                if "cache-control" not in headers:
                    headers["cache-control"] = "no-store"
                already = any(v.startswith(SESSION_COOKIE + "=") for v in headers.getlist("set-cookie"))
                if set_cookie is not None and not already:
                    headers.append("set-cookie", set_cookie)
            await send(message)

        await app(scope, receive, send_wrapper)


def _cookies(headers: Headers) -> dict[str, str]:
    jar = SimpleCookie()
    for raw in headers.getlist("cookie"):
        try:
            jar.load(raw)
        except Exception:  # noqa: BLE001 - http.cookies raises CookieError and others on junk
            continue
    return {name: morsel.value for name, morsel in jar.items()}


# ---------------------------------------------------------------- CSRF


async def csrf_protect(request: Request) -> None:
    """Reject a state-changing request that could have been forged by another site.

    A dependency of every route; safe methods pass. See the module docstring for the rules.
    """
    if request.method not in UNSAFE_METHODS:
        return
    state: Any = request.state
    if getattr(state, "header_auth", False):
        _check_origin(request)
        return
    if not getattr(state, "session_from_cookie", False):
        # no session cookie: a script on this machine (no auth) calling the JSON API
        content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if getattr(state, "auth_required", False) or content_type != "application/json":
            raise WebError(403, "CSRF check failed: this form has no valid session; reload the "
                           "page and submit it again (cookies must be enabled)")
        _check_origin(request)
        return
    _check_origin(request)
    session: SessionData = state.session
    token = request.headers.get(CSRF_HEADER)
    if token is None:
        content_type = request.headers.get("content-type", "")
        if content_type.startswith(("application/x-www-form-urlencoded", "multipart/form-data")):
            form = await request.form()
            value = form.get(CSRF_FIELD)
            token = value if isinstance(value, str) else None
    if not token or not hmac.compare_digest(token.encode(), session.csrf.encode()):
        raise WebError(403, "CSRF check failed: the form's token is missing or does not match "
                       "your session; reload the page and submit it again")


def _check_origin(request: Request) -> None:
    """Reject a request whose Origin (else Referer) names another origin than this app's.

    ``Origin: null`` is what browsers send for our own POSTs under Referrer-Policy no-referrer,
    so it is not a foreign origin; the CSRF token decides.
    """
    own = f"{request.url.scheme}://{request.url.netloc}".lower()
    origin = request.headers.get("origin")
    if origin and origin != "null":
        if origin.lower().rstrip("/") != own:
            raise WebError(403, f"cross-origin request refused: Origin {origin} is not {own}")
        return
    referer = request.headers.get("referer")
    if referer:
        parts = urlsplit(referer)
        if f"{parts.scheme}://{parts.netloc}".lower() != own:
            raise WebError(403, "cross-origin request refused: the Referer is not this site")
