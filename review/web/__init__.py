"""The researchers' review workbench: queue, candidate pages, decisions, exports, overview, JSON API.

    from review.web import AuthConfig, create_app
    app = create_app(settings, auth=AuthConfig.from_env(os.environ))

``review`` reads the store only through ``store.queue`` and never imports ``crawler``.
"""

from __future__ import annotations

from review.web.app import APP_TITLE, create_app
from review.web.security import AuthConfig, AuthError

__all__ = ["APP_TITLE", "AuthConfig", "AuthError", "create_app"]
