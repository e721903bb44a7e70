"""Engines, sessions and migrations.

Nothing here runs at import time: callers build the engine (``make_engine``) and the session
factory (``make_session_factory``) in their entry point and pass them down. Alembic is driven
programmatically from the migrations shipped inside the package, so ``upgrade_database`` works
from an installed wheel as well as from the repository.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError, OperationalError
from sqlalchemy.orm import Session, sessionmaker

from store.errors import StoreError

__all__ = [
    "MIGRATIONS_DIR",
    "alembic_config",
    "current_revision",
    "downgrade_database",
    "head_revision",
    "is_up_to_date",
    "make_engine",
    "make_session_factory",
    "open_session",
    "upgrade_database",
]

logger = logging.getLogger(__name__)

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"
SQLITE_BUSY_TIMEOUT_MS = 30_000


def _parse_url(url: str | URL) -> URL:
    try:
        return make_url(url)
    except ArgumentError as exc:
        raise StoreError(
            f"invalid database URL {str(url)!r}: {exc}. Use e.g. sqlite:///data/dwatch.sqlite3 "
            "or postgresql+psycopg://user@host/dbname (DWATCH_DATABASE_URL)"
        ) from exc


def _sqlite_file(url: URL) -> Path | None:
    database = url.database
    if not database or database == ":memory:" or database.startswith("file:"):
        return None
    return Path(database)


def _on_sqlite_connect(dbapi_connection: Any, connection_record: Any) -> None:
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute(f"PRAGMA busy_timeout = {SQLITE_BUSY_TIMEOUT_MS}")
        cursor.execute("PRAGMA journal_mode = WAL")
        cursor.execute("PRAGMA foreign_keys = ON")
        cursor.execute("PRAGMA synchronous = NORMAL")
    finally:
        cursor.close()


def make_engine(url: str | URL, **kwargs: Any) -> Engine:
    """An engine for ``url``.

    SQLite: the parent directory of the database file is created, and every connection gets
    WAL journaling (readers never block the writer), ``foreign_keys = ON`` and a 30 s busy
    timeout (several processes may write). Other dialects (PostgreSQL) get pool pre-ping.
    Extra keyword arguments go to ``sqlalchemy.create_engine``.
    """
    parsed = _parse_url(url)
    if parsed.get_backend_name() == "sqlite":
        path = _sqlite_file(parsed)
        if path is not None:
            try:
                path.parent.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise StoreError(
                    f"cannot create the directory {path.parent} for the SQLite database "
                    f"{path}: {exc}. Point DWATCH_DATABASE_URL or DWATCH_DATA_DIR at a "
                    "writable place"
                ) from exc
        kwargs.setdefault("connect_args", {}).setdefault("timeout", SQLITE_BUSY_TIMEOUT_MS / 1000)
        engine = create_engine(parsed, **kwargs)
        event.listen(engine, "connect", _on_sqlite_connect)
        return engine
    kwargs.setdefault("pool_pre_ping", True)
    return create_engine(parsed, **kwargs)


def make_session_factory(engine: Engine) -> sessionmaker[Session]:
    """Sessions bound to ``engine``.

    Objects expire on commit (SQLAlchemy's default), so a long-lived session never serves
    rows another process has changed since; the store's functions return plain records.
    """
    return sessionmaker(bind=engine)


@contextmanager
def open_session(url: str | URL) -> Iterator[Session]:
    """One session on a fresh engine for ``url``, the engine disposed afterwards (commands, jobs)."""
    engine = make_engine(url)
    try:
        with make_session_factory(engine)() as session:
            yield session
    finally:
        engine.dispose()


def alembic_config(url: str | URL | None = None) -> Config:
    """An Alembic ``Config`` pointing at the packaged migrations (no alembic.ini needed)."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    if url is not None:
        config.attributes["url"] = _parse_url(url)
    return config


def head_revision() -> str:
    """The newest migration revision shipped with this code."""
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    if head is None:  # pragma: no cover - the package always ships migrations
        raise StoreError(f"no Alembic migrations found in {MIGRATIONS_DIR}")
    return head


def _run_alembic(url: str | URL, action: str, revision: str) -> None:
    engine = make_engine(url)
    sqlite = engine.dialect.name == "sqlite"
    try:
        with engine.connect() as connection:
            if sqlite:
                # SQLite batch migrations rebuild tables; with foreign keys on, dropping the old
                # table would cascade. Alembic's advice: switch them off (outside a transaction).
                connection.exec_driver_sql("PRAGMA foreign_keys = OFF")
                connection.commit()
            with connection.begin():
                config = alembic_config(url)
                config.attributes["connection"] = connection
                getattr(command, action)(config, revision)
            if sqlite:
                problems = connection.exec_driver_sql("PRAGMA foreign_key_check").fetchall()
                connection.exec_driver_sql("PRAGMA foreign_keys = ON")
                connection.commit()
                if problems:
                    raise StoreError(
                        f"the {action} to {revision} left rows that break foreign keys: "
                        f"{problems[:5]}; restore the database from a backup and report it"
                    )
    except OperationalError as exc:
        raise StoreError(
            f"cannot migrate the database {_parse_url(url).render_as_string()}: {exc.orig}. "
            "Check that it is reachable and writable"
        ) from exc
    finally:
        engine.dispose()
    logger.info(
        "database %s: %s to %s done", _parse_url(url).render_as_string(), action, revision
    )


def upgrade_database(url: str | URL, revision: str = "head") -> None:
    """Run the Alembic migrations on ``url`` up to ``revision`` (default: the newest)."""
    _run_alembic(url, "upgrade", revision)


def downgrade_database(url: str | URL, revision: str) -> None:
    """Run the Alembic migrations on ``url`` down to ``revision`` ("base" drops everything)."""
    _run_alembic(url, "downgrade", revision)


def current_revision(url: str | URL) -> str | None:
    """The revision the database at ``url`` is at (None: never migrated)."""
    engine = make_engine(url)
    try:
        with engine.connect() as connection:
            return MigrationContext.configure(connection).get_current_revision()
    finally:
        engine.dispose()


def is_up_to_date(url: str | URL) -> bool:
    """True when the database at ``url`` is migrated to the newest revision."""
    return current_revision(url) == head_revision()
