"""Database engine settings: SQLite in WAL mode with foreign keys; where migrations live."""

from __future__ import annotations

import os
from typing import Any

from flask import Flask
from sqlalchemy import event
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection

from flask_tracking.extensions import db

MIGRATIONS_DIRECTORY = os.path.join(os.path.dirname(__file__), "migrations")


def init_app(app: Flask) -> None:
    """Tune every new SQLite connection of this app's engine."""
    with app.app_context():
        engine = db.engine
    if engine.dialect.name == "sqlite":
        event.listen(engine, "connect", _sqlite_pragmas)
        event.listen(engine, "begin", _sqlite_begin)
    elif engine.dialect.name == "postgresql":
        event.listen(engine, "connect", _postgresql_utc)


def _postgresql_utc(dbapi_connection: Any, _record: Any) -> None:
    """Make date() and date_trunc() on timestamptz columns work in UTC."""
    cursor = dbapi_connection.cursor()
    cursor.execute("SET TIME ZONE 'UTC'")
    cursor.close()
    dbapi_connection.commit()


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    """Turn on foreign keys and WAL so readers never block the writer."""
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=5000")
    cursor.execute("PRAGMA journal_mode")
    if cursor.fetchone()[0] != "memory":
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()
    # pysqlite's own transaction handling starts transactions late and lets a SAVEPOINT commit
    # on release; take control of BEGIN instead (SQLAlchemy's documented recipe), so nested
    # transactions roll back as they should.
    dbapi_connection.isolation_level = None


def _sqlite_begin(connection: Connection) -> None:
    """Begin every transaction explicitly (see _sqlite_pragmas)."""
    # An in-memory database has one connection shared by every session (StaticPool), so a
    # second session may find the transaction already open.
    dbapi_connection = connection.connection.dbapi_connection
    if dbapi_connection is None or not dbapi_connection.in_transaction:
        connection.exec_driver_sql("BEGIN")


def upsert(model: Any, values: dict[str, Any], keys: list[str], updates: dict[str, Any]) -> Any:
    """Return INSERT … ON CONFLICT (keys) DO UPDATE for SQLite or PostgreSQL."""
    dialect = postgresql if db.engine.dialect.name == "postgresql" else sqlite
    statement = dialect.insert(model).values(**values)
    return statement.on_conflict_do_update(index_elements=keys, set_=updates)
