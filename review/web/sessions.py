"""The browser session: a cookie signed with HMAC-SHA256 under a key made per app.

It carries the session's CSRF token, who logged in (after a login) and when it expires. It is
HttpOnly, SameSite=Strict, Secure over https; a forged, altered or expired cookie reads as no
session. No server-side state: restarting the app (a new key) logs everyone out.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import secrets
import time
from dataclasses import dataclass
from http.cookies import SimpleCookie

__all__ = ["SESSION_COOKIE", "SESSION_MAX_AGE", "SessionData", "read_session", "session_cookie",
           "sign_session"]

SESSION_COOKIE = "dwatch_session"
SESSION_MAX_AGE = 12 * 3600


@dataclass(frozen=True)
class SessionData:
    csrf: str
    user: str | None = None      # who logged in ("token" for a token login); None: not logged in
    expires: int = 0

    @classmethod
    def new(cls, user: str | None = None) -> SessionData:
        return cls(secrets.token_urlsafe(32), user, int(time.time()) + SESSION_MAX_AGE)


def sign_session(data: SessionData, key: bytes) -> str:
    payload = base64.urlsafe_b64encode(
        json.dumps({"c": data.csrf, "u": data.user, "e": data.expires}).encode()
    ).decode().rstrip("=")
    return f"{payload}.{_mac(payload, key)}"


def read_session(value: str | None, key: bytes) -> SessionData | None:
    """The session in a cookie value, or None when it is missing, forged or expired."""
    if not value or "." not in value:
        return None
    payload, mac = value.rsplit(".", 1)
    if not hmac.compare_digest(mac, _mac(payload, key)):
        return None
    try:
        raw = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
        data = SessionData(str(raw["c"]), raw["u"] if raw["u"] is None else str(raw["u"]),
                           int(raw["e"]))
    except (ValueError, KeyError, TypeError, binascii.Error):
        return None
    return data if data.expires > time.time() else None


def _mac(payload: str, key: bytes) -> str:
    return hmac.new(key, payload.encode(), hashlib.sha256).hexdigest()


def session_cookie(data: SessionData, key: bytes, *, secure: bool) -> str:
    """A Set-Cookie header value for ``data``."""
    cookie = SimpleCookie()
    cookie[SESSION_COOKIE] = sign_session(data, key)
    morsel = cookie[SESSION_COOKIE]
    morsel["path"] = "/"
    morsel["httponly"] = True
    morsel["samesite"] = "Strict"
    morsel["max-age"] = SESSION_MAX_AGE
    if secure:
        morsel["secure"] = True
    return morsel.OutputString()
