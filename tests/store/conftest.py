"""Fixtures for the store tests: a fresh, migrated database per test (builders: pages.py).

``db_url`` runs every database test on a fresh SQLite file and again on PostgreSQL: a database
of this test session's own on the server DWATCH_TEST_POSTGRES_URL names (tests/services.py),
whose tables are dropped before each test. Without that variable the PostgreSQL runs skip and
say how to enable them (``make services``); under DWATCH_REQUIRE_SERVICES=1 they fail.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine
from sqlalchemy.orm import Session

from store import make_engine, make_session_factory, upgrade_database
from tests.services import private_database


def _reset_postgres(url: str) -> None:
    """Empty the session's database: everything a migration made goes (tables, sequences, types)."""
    engine = make_engine(url)
    try:
        with engine.begin() as connection:
            connection.exec_driver_sql("DROP SCHEMA public CASCADE")
            connection.exec_driver_sql("CREATE SCHEMA public")
    finally:
        engine.dispose()


@pytest.fixture(scope="session")
def postgres_session_url() -> Iterator[str]:
    """This test session's own PostgreSQL database (skips or fails as tests/services.py says)."""
    with private_database() as url:
        yield url


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A database URL with nothing in it: a new SQLite file, or the emptied PostgreSQL database."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'data' / 'dwatch.sqlite3'}"
    url: str = request.getfixturevalue("postgres_session_url")
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
