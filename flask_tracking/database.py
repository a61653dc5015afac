"""Database engine settings: SQLite in WAL mode with foreign keys; where migrations live.

SQLite allows one writer at a time. A transaction that begins with a plain (deferred) BEGIN,
reads, and only then writes cannot wait for the write lock: if another connection committed
since it started reading, its snapshot is stale and SQLite refuses at once with "database is
locked" — the busy timeout never applies. So every transaction that may write begins with
BEGIN IMMEDIATE, which takes the write lock first (waiting up to the busy timeout), and reads
keep their deferred BEGIN so that they never block anyone (WAL):

- a web request with an unsafe method (POST, PUT, PATCH, DELETE) writes: its transactions
  begin IMMEDIATE;
- anything else that writes does it inside `writing()` (the ingest writer, commands), or in
  its own short transaction with `write_transaction()` (a GET that records an API key's use).

PostgreSQL needs none of this: its row locks wait by themselves.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from contextvars import ContextVar
from typing import Any

from flask import Flask, g, request
from sqlalchemy import event
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection

from flask_tracking.extensions import db

MIGRATIONS_DIRECTORY = os.path.join(os.path.dirname(__file__), "migrations")
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
# Whether the transactions begun in this context may write (see the module docstring).
_write_intent: ContextVar[bool] = ContextVar("flask_tracking_write_intent", default=False)


def init_app(app: Flask) -> None:
    """Tune every new SQLite connection of this app's engine; mark requests that write."""
    with app.app_context():
        engine = db.engine
    if engine.dialect.name == "sqlite":
        busy_ms = int(float(app.config["SQLITE_BUSY_TIMEOUT"]) * 1000)
        event.listen(engine, "connect", lambda dbapi, record: _sqlite_pragmas(dbapi, busy_ms))
        event.listen(engine, "begin", _sqlite_begin)
    elif engine.dialect.name == "postgresql":
        event.listen(engine, "connect", _postgresql_utc)
    app.before_request(_mark_writing_request)
    app.teardown_request(_unmark_writing_request)


def _mark_writing_request() -> None:
    if request.method not in SAFE_METHODS:
        g.write_intent_token = _write_intent.set(True)


def _unmark_writing_request(_error: BaseException | None) -> None:
    token = g.pop("write_intent_token", None)
    if token is not None:
        _write_intent.reset(token)


@contextlib.contextmanager
def writing(intent: bool = True) -> Iterator[None]:
    """Begin the transactions of this block ready to write (BEGIN IMMEDIATE on SQLite)."""
    token = _write_intent.set(intent)
    try:
        yield
    finally:
        _write_intent.reset(token)


def reading() -> contextlib.AbstractContextManager[None]:
    """Begin the transactions of this block as plain reads, whatever the caller intends.

    For code with a session of its own (another app context) that may run inside a writing
    request: on SQLite a second connection of the same thread asking for the write lock would
    wait for the first one, that is for itself.
    """
    return writing(False)


@contextlib.contextmanager
def write_transaction() -> Iterator[None]:
    """Run the block in a short transaction of its own that may write, and commit it.

    The transaction open so far (a request's reads) is ended first: it cannot become a writer
    on SQLite. Objects loaded before are expired and reload on their next use.
    """
    db.session.commit()
    with writing():
        try:
            yield
            db.session.commit()
        except BaseException:
            db.session.rollback()
            raise


def _postgresql_utc(dbapi_connection: Any, _record: Any) -> None:
    """Make date() and date_trunc() on timestamptz columns work in UTC."""
    cursor = dbapi_connection.cursor()
    cursor.execute("SET TIME ZONE 'UTC'")
    cursor.close()
    dbapi_connection.commit()


def _sqlite_pragmas(dbapi_connection: Any, busy_ms: int) -> None:
    """Turn on foreign keys and WAL so readers never block the writer."""
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA foreign_keys=ON")
    # How long BEGIN IMMEDIATE (and a commit) waits for another writer before giving up.
    cursor.execute(f"PRAGMA busy_timeout={int(busy_ms)}")
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
    """Begin every transaction explicitly (see _sqlite_pragmas): IMMEDIATE when it may write."""
    # An in-memory database has one connection shared by every session (StaticPool), so a
    # second session may find the transaction already open.
    dbapi_connection = connection.connection.dbapi_connection
    if dbapi_connection is None or not dbapi_connection.in_transaction:
        connection.exec_driver_sql("BEGIN IMMEDIATE" if _write_intent.get() else "BEGIN")


def upsert(model: Any, values: dict[str, Any], keys: list[str], updates: dict[str, Any]) -> Any:
    """Return INSERT … ON CONFLICT (keys) DO UPDATE for SQLite or PostgreSQL."""
    dialect = postgresql if db.engine.dialect.name == "postgresql" else sqlite
    statement = dialect.insert(model).values(**values)
    return statement.on_conflict_do_update(index_elements=keys, set_=updates)
