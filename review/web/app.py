"""``create_app``: the researchers' review workbench (pages, JSON API, security), over the store.

    app = create_app(load_settings(), auth=AuthConfig.from_env(os.environ))
    uvicorn.run(app, host="127.0.0.1", port=8765)

One engine per app (made in the lifespan, disposed on shutdown), one session per request;
every store call goes through ``store.queue``. Errors end in one place: ``WebError`` and
FastAPI's own errors become the error page, or ``{"detail": "..."}`` under /api.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, PlainTextResponse, Response
from fastapi.staticfiles import StaticFiles
from jinja2 import Environment, FileSystemLoader, StrictUndefined
from starlette.exceptions import HTTPException as StarletteHTTPException

from config import Settings
from review.web import api, pages
from review.web.errors import WebError
from review.web.present import TEMPLATE_FILTERS
from review.web.security import (
    APP_CSP,
    BASE_HEADERS,
    AuthConfig,
    SecurityMiddleware,
    csrf_protect,
    wants_json,
)
from store import make_engine, make_session_factory
from store.errors import StoreError

__all__ = ["APP_TITLE", "create_app"]

logger = logging.getLogger(__name__)

APP_TITLE = "defector-watch review API"
HERE = Path(__file__).resolve().parent


def create_app(settings: Settings, *, auth: AuthConfig | None = None) -> FastAPI:
    """The web UI over the store of ``settings``; ``auth`` None serves loopback clients only."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        engine = make_engine(settings.database_url)
        app.state.session_factory = make_session_factory(engine)
        try:
            yield
        finally:
            engine.dispose()

    app = FastAPI(
        title=APP_TITLE,
        version="1.0",
        description="The review queue of defector-watch: list, read, decide, export. "
        "Authenticate with 'Authorization: Bearer <DWATCH_AUTH_TOKEN>' or HTTP Basic when the "
        "server has authentication configured.",
        lifespan=lifespan,
        dependencies=[Depends(csrf_protect)],
        docs_url=None,      # Swagger UI and ReDoc load from a CDN: not here (offline, strict CSP)
        redoc_url=None,
        openapi_url="/openapi.json",
    )
    app.state.settings = settings
    app.state.auth = auth
    app.state.templates = _templates()
    app.add_middleware(SecurityMiddleware, auth=auth, key=secrets.token_bytes(32))
    app.mount("/static", StaticFiles(directory=HERE / "static"), name="static")
    app.include_router(api.router)
    app.include_router(pages.router)
    _add_error_handlers(app)
    return app


def _templates() -> Environment:
    env = Environment(
        loader=FileSystemLoader(HERE / "templates"),
        autoescape=True,            # every value is escaped unless it is already Markup
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters.update(TEMPLATE_FILTERS)
    return env


def _add_error_handlers(app: FastAPI) -> None:
    async def web_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, WebError)
        return error_response(request, exc.status_code, exc.detail)

    async def http_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, StarletteHTTPException)
        detail = exc.detail if isinstance(exc.detail, str) else str(exc.detail)
        if exc.status_code == 404 and detail == "Not Found":
            detail = f"there is no page at {request.url.path}"
        return error_response(request, exc.status_code, detail, headers=exc.headers)

    async def validation_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, RequestValidationError)
        return error_response(request, 422, validation_message(exc))

    async def store_error(request: Request, exc: Exception) -> Response:
        logger.warning("store error on %s: %s", request.url.path, exc)
        return error_response(request, 422, str(exc))

    async def server_error(request: Request, exc: Exception) -> Response:
        # runs outside SecurityMiddleware (Starlette's outermost layer): set the headers here
        logger.error("unexpected error on %s %s: %r", request.method, request.url.path, exc)
        return PlainTextResponse(
            "Internal error: the request could not be completed; the server log has the details.",
            status_code=500, headers={"Content-Security-Policy": APP_CSP, **BASE_HEADERS},
        )

    app.add_exception_handler(Exception, server_error)
    app.add_exception_handler(WebError, web_error)
    app.add_exception_handler(StarletteHTTPException, http_error)
    app.add_exception_handler(RequestValidationError, validation_error)
    app.add_exception_handler(StoreError, store_error)


def validation_message(exc: RequestValidationError) -> str:
    """FastAPI's validation errors as one readable sentence per problem."""
    parts = []
    for error in exc.errors():
        where = ".".join(str(p) for p in error.get("loc", ()) if p not in ("body", "query"))
        parts.append(f"{where or 'request'}: {error.get('msg', 'invalid')}")
    return "; ".join(parts) or "invalid request"


def error_response(
    request: Request, status: int, detail: str, *, headers: Mapping[str, str] | None = None
) -> Response:
    """The central error page, or ``{"detail": ...}`` for the JSON API."""
    if wants_json(request.scope):
        return JSONResponse({"detail": detail}, status_code=status, headers=headers)
    return pages.render(request, "error.html", {"status": status, "detail": detail},
                        status_code=status, headers=headers)
