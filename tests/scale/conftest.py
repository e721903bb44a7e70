"""Fixtures of the shared-frontier tests: Redis keys of the test's own, a private PostgreSQL database.

Redis and PostgreSQL come from tests/services.py: without DWATCH_TEST_REDIS_URL /
DWATCH_TEST_POSTGRES_URL the tests skip and say how to enable them (fail under
DWATCH_REQUIRE_SERVICES=1). Every test uses its own key prefix and deletes its keys afterwards,
so runs on one Redis database never see each other's queues.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator

import pytest
import redis

from crawler.frontier import Frontier, FrontierKeys
from tests.services import private_database, redis_url


@pytest.fixture
def frontier_url() -> str:
    return redis_url()


@pytest.fixture
def prefix(frontier_url: str) -> Iterator[str]:
    """A key prefix of this test's own; its keys are deleted afterwards."""
    value = f"dwt-{os.getpid()}-{secrets.token_hex(3)}"
    yield value
    client = redis.Redis.from_url(frontier_url)
    try:
        keys = list(client.scan_iter(match=f"{value}:*", count=1000))
        if keys:
            client.delete(*keys)
    finally:
        client.close()


@pytest.fixture
def frontier(frontier_url: str, prefix: str) -> Iterator[Frontier]:
    """A Frontier on the test Redis under the test's prefix, lease 5 s."""
    shared = Frontier(redis.Redis.from_url(frontier_url), FrontierKeys(prefix), lease_seconds=5)
    yield shared
    shared.close()


@pytest.fixture
def postgres_db() -> Iterator[str]:
    """A PostgreSQL database of this test's own (dropped afterwards)."""
    with private_database() as url:
        yield url
