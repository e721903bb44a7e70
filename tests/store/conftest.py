"""Fixtures for the store tests: a fresh, migrated database per test (builders: pages.py).

``db_url`` runs every database test on a fresh SQLite file and, when DWATCH_TEST_POSTGRES_URL
is set, again on PostgreSQL (that database's tables are dropped and re-created per test).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine
from sqlalchemy.orm import Session

from store import make_engine, make_session_factory, upgrade_database
from store.models import Base

POSTGRES_ENV = "DWATCH_TEST_POSTGRES_URL"


def _reset_postgres(url: str) -> None:
    engine = make_engine(url)
    try:
        with engine.begin() as connection:
            Base.metadata.drop_all(connection)
            connection.exec_driver_sql("DROP TABLE IF EXISTS alembic_version")
    finally:
        engine.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A database URL with nothing in it: SQLite by default, PostgreSQL when configured."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'data' / 'dwatch.sqlite3'}"
    url = os.environ.get(POSTGRES_ENV)
    if not url:
        pytest.skip(
            f"PostgreSQL run not enabled: set {POSTGRES_ENV}="
            "postgresql+psycopg://user:password@127.0.0.1/dwatch_test (a throwaway database: "
            "its tables are dropped) and install psycopg in the venv"
        )
    _reset_postgres(url)
    return url


@pytest.fixture
def migrated_url(db_url: str) -> str:
    upgrade_database(db_url)
    return db_url


@pytest.fixture
def engine(migrated_url: str) -> Iterator[Engine]:
    engine = make_engine(migrated_url)
    yield engine
    engine.dispose()


@pytest.fixture
def session(engine: Engine) -> Iterator[Session]:
    with make_session_factory(engine)() as session:
        yield session
