"""Fixtures of the review web UI tests: a seeded store (seed.py) and a TestClient over the app.

``seeded`` is crawled once per test session (tests/review/seed.py) and copied into each test's
own tmp directory, so a test may write decisions without touching its neighbours.
``client`` talks to ``review.web.create_app(seeded.settings)`` (no auth) from 127.0.0.1 and to
Host 127.0.0.1:8765 (without auth the app answers loopback only), with the app's lifespan running.
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


@pytest.fixture(scope="session")
def seeded_template(tmp_path_factory: pytest.TempPathFactory) -> Seeded:
    return seed_store(tmp_path_factory.mktemp("seed") / "data")


@pytest.fixture
def seeded(seeded_template: Seeded, tmp_path: Path) -> Seeded:
    """A store crawled from tests/review/site/, in this test's own data directory."""
    data_dir = tmp_path / "data"
    shutil.copytree(seeded_template.data_dir, data_dir)
    return dataclasses.replace(seeded_template, settings=settings_for(data_dir), data_dir=data_dir)


@pytest.fixture
def client(seeded: Seeded) -> Iterator[TestClient]:
    """The web UI over ``seeded`` (no authentication configured), requests from 127.0.0.1."""
    from review.web import create_app

    app = create_app(seeded.settings)
    with test_client_class()(app, base_url=BASE_URL, client=LOOPBACK_CLIENT) as test_client:
        yield test_client
