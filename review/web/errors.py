"""The one error the web UI raises: a status and a message for the researcher (or API client).

``review.web.app`` turns it (and FastAPI's own errors) into the central error page, or into
``{"detail": "..."}`` for the JSON API.
"""

from __future__ import annotations

__all__ = ["WebError"]


class WebError(Exception):
    """An HTTP error with a clear message: what went wrong and how to fix it."""

    def __init__(self, status_code: int, detail: str) -> None:
        super().__init__(detail)
        self.status_code = status_code
        self.detail = detail
