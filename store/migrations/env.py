"""Alembic environment for the store.

The database comes from the Alembic config, in this order: ``config.attributes["connection"]``
(an open connection, used by ``store.upgrade_database`` and the tests),
``config.attributes["url"]``, the ``sqlalchemy.url`` main option, then DWATCH_DATABASE_URL.
Logging is left alone: only entry points configure it.
"""

from __future__ import annotations

import os

from alembic import context
from sqlalchemy.engine import Connection

from store.engine import make_engine
from store.models import Base

config = context.config
target_metadata = Base.metadata


def _url() -> str:
    url = config.attributes.get("url") or config.get_main_option("sqlalchemy.url")
    url = url or os.environ.get("DWATCH_DATABASE_URL")
    if not url:
        raise RuntimeError(
            "no database URL for the migrations: pass one to store.upgrade_database(url), "
            "or set DWATCH_DATABASE_URL"
        )
    return str(url) if isinstance(url, str) else url.render_as_string(hide_password=False)


def _configure(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )


def run_migrations_offline() -> None:
    context.configure(
        url=_url(),
        target_metadata=target_metadata,
        literal_binds=True,
        dialect_opts={"paramstyle": "named"},
    )
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        _configure(connection)
        with context.begin_transaction():
            context.run_migrations()
        return
    engine = make_engine(_url())
    try:
        with engine.connect() as connection:
            _configure(connection)
            with context.begin_transaction():
                context.run_migrations()
    finally:
        engine.dispose()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
