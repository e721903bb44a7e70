"""Fixtures of the review web UI tests: a seeded store (seed.py) and a TestClient over the app.

``seeded`` is crawled once per test session (tests/review/seed.py) and copied into each test's
own tmp directory, so a test may write decisions without touching its neighbours.
``client`` talks to ``review.web.create_app(seeded.settings)`` (no auth) from 127.0.0.1 and to
Host 127.0.0.1:8765 (without auth the app answers loopback only), with the app's lifespan running.

The store is SQLite. A test module that sets ``STORE_BACKENDS = ("sqlite", "postgresql")`` runs
each of its tests that use the store on both: the PostgreSQL store is seeded once per session
into a database of its own (tests/services.py) and copied (CREATE DATABASE ... TEMPLATE) for
each test. Without DWATCH_TEST_POSTGRES_URL the PostgreSQL runs skip and say how to enable
them; under DWATCH_REQUIRE_SERVICES=1 they fail.
"""

from __future__ import annotations

import dataclasses
import shutil
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from tests.review.seed import Seeded, seed_store, settings_for
from tests.services import private_database

if TYPE_CHECKING:
    from starlette.testclient import TestClient

LOOPBACK_CLIENT = ("127.0.0.1", 50000)
BASE_URL = "http://127.0.0.1:8765"   # the Host a browser on this machine sends


def test_client_class() -> type[TestClient]:
    """starlette's TestClient (it warns once on import that it prefers httpx2 over httpx)."""
    with warnings.catch_warnings():
        warnings.filterwarnings(
            "ignore", message=r"Using `httpx` with `starlette\.testclient` is deprecated"
        )
        from starlette.testclient import TestClient

    return TestClient


test_client_class.__test__ = False  # type: ignore[attr-defined]  # a helper, not a test


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    backends = getattr(metafunc.module, "STORE_BACKENDS", None)
    if backends and "store_backend" in metafunc.fixturenames:
        metafunc.parametrize("store_backend", backends)


@pytest.fixture
def store_backend() -> str:
    """The database under the store: "sqlite" unless the module's STORE_BACKENDS parametrizes it."""
    return "sqlite"


@pytest.fixture
def store_url(store_backend: str, tmp_path: Path) -> Iterator[str]:
    """An empty database for a test that builds its own store: a SQLite file or a PostgreSQL db."""
    if store_backend == "sqlite":
        yield f"sqlite:///{tmp_path / 'data' / 'dwatch.sqlite3'}"
        return
    with private_database() as url:
        yield url


@pytest.fixture(scope="session")
def seeded_template(tmp_path_factory: pytest.TempPathFactory) -> Seeded:
    return seed_store(tmp_path_factory.mktemp("seed") / "data")


@pytest.fixture(scope="session")
def seeded_postgres_template(
    seeded_template: Seeded, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Seeded]:
    """The same crawl as ``seeded_template`` (same day), stored in a PostgreSQL database."""
    with private_database() as url:
        yield seed_store(tmp_path_factory.mktemp("seed-pg") / "data", today=seeded_template.today,
                         database_url=url)


@pytest.fixture
def seeded(request: pytest.FixtureRequest, store_backend: str, tmp_path: Path) -> Iterator[Seeded]:
    """A store crawled from tests/review/site/, in this test's own data directory (and database)."""
    data_dir = tmp_path / "data"
    if store_backend == "sqlite":
        template: Seeded = request.getfixturevalue("seeded_template")
        shutil.copytree(template.data_dir, data_dir)
        yield dataclasses.replace(template, settings=settings_for(data_dir), data_dir=data_dir)
        return
    template = request.getfixturevalue("seeded_postgres_template")
    shutil.copytree(template.data_dir, data_dir)
    with private_database(template=template.settings.database_url) as url:
        yield dataclasses.replace(template, settings=settings_for(data_dir, url), data_dir=data_dir)


@pytest.fixture
def client(seeded: Seeded) -> Iterator[TestClient]:
    """The web UI over ``seeded`` (no authentication configured), requests from 127.0.0.1."""
    from review.web import create_app

    app = create_app(seeded.settings)
    with test_client_class()(app, base_url=BASE_URL, client=LOOPBACK_CLIENT) as test_client:
        yield test_client
