"""The PostgreSQL and Redis servers some tests need, and what a test does when they are absent.

    url = postgres_url()              # the configured test database (checked: it answers)
    with private_database() as url:   # a database of its own, dropped afterwards
        ...
    url = redis_url()                 # the configured Redis database (checked: it answers PING)

The servers are named by DWATCH_TEST_POSTGRES_URL and DWATCH_TEST_REDIS_URL; ``make services``
(scripts/services.sh) installs and starts both on 127.0.0.1 and prints the two lines to export.
Without a URL the test skips and says how to enable it; with DWATCH_REQUIRE_SERVICES=1 (set by
.ci/run) it fails instead. A URL that is set but does not answer always fails: the run asked for
the server and would otherwise pass on less than it claims.

``private_database`` gives a test session (or a test) its own PostgreSQL database, created with
the configured role's CREATEDB right, so several test runs on one server (colleagues, CI jobs,
worker subprocesses) never drop each other's tables.
"""

from __future__ import annotations

import functools
import os
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from typing import NoReturn

import pytest
from sqlalchemy import Connection, Engine, create_engine, text
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError, DBAPIError

__all__ = [
    "POSTGRES_ENV",
    "REDIS_ENV",
    "REQUIRE_ENV",
    "postgres_url",
    "private_database",
    "redis_url",
    "services_required",
]

POSTGRES_ENV = "DWATCH_TEST_POSTGRES_URL"
REDIS_ENV = "DWATCH_TEST_REDIS_URL"
REQUIRE_ENV = "DWATCH_REQUIRE_SERVICES"
PRIVATE_PREFIX = "dwatch_t_"

HOW_TO_ENABLE = (
    "run `make services` (or `sudo scripts/services.sh`: installs and starts PostgreSQL and "
    "Redis on 127.0.0.1) and export the two lines it prints, e.g. "
    f"{POSTGRES_ENV}=postgresql+psycopg://dwatch:dwatch@127.0.0.1:5432/dwatch_test and "
    f"{REDIS_ENV}=redis://127.0.0.1:6379/15"
)


def services_required() -> bool:
    """True when DWATCH_REQUIRE_SERVICES=1: a missing server fails the test instead of skipping it."""
    return os.environ.get(REQUIRE_ENV) == "1"


def _missing(what: str, env: str) -> NoReturn:
    message = f"{what} tests not enabled: {env} is not set; to enable them, {HOW_TO_ENABLE}"
    if services_required():
        pytest.fail(f"{message} ({REQUIRE_ENV}=1: these tests must run)", pytrace=False)
    pytest.skip(message)


def _masked(url: URL) -> str:
    return url.render_as_string(hide_password=True)


@functools.cache
def _postgres_problem(url: str) -> str | None:
    """None when ``url`` answers ``SELECT 1``; else what went wrong (checked once per process)."""
    try:
        parsed = make_url(url)
    except ArgumentError as exc:
        return f"{POSTGRES_ENV}={url!r} is not a database URL ({exc})"
    if parsed.get_backend_name() != "postgresql":
        return f"{POSTGRES_ENV} must be a postgresql+psycopg:// URL, not {_masked(parsed)}"
    try:
        engine = create_engine(parsed)
    except ImportError as exc:
        return (f"the PostgreSQL driver is not installed ({exc}); "
                "install it with `.venv/bin/pip install -e '.[postgres]'`")
    try:
        with engine.connect() as connection:
            connection.execute(text("SELECT 1"))
    except DBAPIError as exc:
        return (f"PostgreSQL at {_masked(parsed)} does not answer: {str(exc.orig).strip()}; "
                "start it with `make services`")
    finally:
        engine.dispose()
    return None


def postgres_url() -> str:
    """The test PostgreSQL database (DWATCH_TEST_POSTGRES_URL), checked to answer; else skip/fail.

    Its tables belong to whoever runs there; tests that create or drop tables should take a
    ``private_database()`` instead.
    """
    url = os.environ.get(POSTGRES_ENV, "").strip()
    if not url:
        _missing("PostgreSQL", POSTGRES_ENV)
    problem = _postgres_problem(url)
    if problem is not None:
        pytest.fail(problem, pytrace=False)
    return url


def _admin_engine(url: URL) -> Engine:
    return create_engine(url, isolation_level="AUTOCOMMIT")


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _drop_stale(connection: Connection, mine: str) -> None:
    """Drop private databases left by test runs of this machine that were killed (pid gone)."""
    names = connection.execute(
        text("SELECT datname FROM pg_database WHERE datname LIKE :pattern"),
        {"pattern": PRIVATE_PREFIX.replace("_", r"\_") + "%"},
    ).scalars()
    for name in names:
        parts = name.removeprefix(PRIVATE_PREFIX).split("_")
        if name == mine or not parts[0].isdigit() or _pid_alive(int(parts[0])):
            continue
        try:   # without FORCE: a database somebody is still connected to is left alone
            connection.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}"')
        except DBAPIError:
            continue


def _drop(connection: Connection, name: str) -> None:
    """Drop database ``name`` after ending this role's sessions on it (workers a test left behind).

    Not ``WITH (FORCE)``: that refuses outright when an autovacuum worker (the superuser's) is
    on the database, while a plain DROP DATABASE stops autovacuum itself.
    """
    connection.execute(
        text("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
             "WHERE datname = :name AND usename = current_user AND pid <> pg_backend_pid()"),
        {"name": name},
    )
    connection.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}"')


@contextmanager
def private_database(template: str | None = None) -> Iterator[str]:
    """A new PostgreSQL database on the test server, dropped (connections and all) on exit.

    Empty, or a copy of the database of ``template`` (a URL from an earlier ``private_database``:
    nobody may be connected to it). Named ``dwatch_t_<pid>_<random>``; databases of earlier runs
    whose process is gone are dropped when a new one is made.
    """
    base = make_url(postgres_url())
    name = f"{PRIVATE_PREFIX}{os.getpid()}_{secrets.token_hex(4)}"
    copy_of = ""
    if template is not None:
        source = make_url(template).database
        if not source or not source.startswith(PRIVATE_PREFIX):
            raise ValueError(f"template {template!r} is not a database made by private_database()")
        copy_of = f' TEMPLATE "{source}"'
    admin = _admin_engine(base)
    try:
        with admin.connect() as connection:
            _drop_stale(connection, name)
            connection.exec_driver_sql(f'CREATE DATABASE "{name}"{copy_of}')
        try:
            yield base.set(database=name).render_as_string(hide_password=False)
        finally:
            with admin.connect() as connection:
                _drop(connection, name)
    finally:
        admin.dispose()


@functools.cache
def _redis_problem(url: str) -> str | None:
    import redis

    try:
        client = redis.Redis.from_url(url, socket_connect_timeout=5, socket_timeout=5)
    except ValueError as exc:
        return f"{REDIS_ENV}={url!r} is not a Redis URL ({exc}); use redis://127.0.0.1:6379/15"
    try:
        client.ping()
    except redis.RedisError as exc:
        return f"Redis at {url} does not answer PING: {exc}; start it with `make services`"
    finally:
        client.close()
    return None


def redis_url() -> str:
    """The test Redis database (DWATCH_TEST_REDIS_URL), checked to answer PING; else skip/fail."""
    url = os.environ.get(REDIS_ENV, "").strip()
    if not url:
        _missing("Redis", REDIS_ENV)
    problem = _redis_problem(url)
    if problem is not None:
        pytest.fail(problem, pytrace=False)
    return url
