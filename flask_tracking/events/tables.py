"""The store's tables as SQLAlchemy Core objects, for building queries, typed per engine.

Dimension columns are integer codes in DuckDB and text in ClickHouse; the queries that use
them go through `Encoding` (events/encoding.py), never through the column type.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Integer,
    MetaData,
    SmallInteger,
    String,
    Table,
    UnicodeText,
    union_all,
)
from sqlalchemy.types import TypeEngine

from flask_tracking.events import schema

_TYPES: dict[str, type[TypeEngine[Any]]] = {
    "int16": SmallInteger,
    "int32": Integer,
    "int64": BigInteger,
    "uint64": BigInteger,
    "bool": Boolean,
    "text": UnicodeText,
    "float64": BigInteger,
}


@dataclass(frozen=True)
class Tables:
    """Every table of the store, and the views that join open and closed days."""

    recent: Table
    events: Table
    sessions: Table
    recent_events: Table
    recent_sessions: Table
    recent_numbers: Table
    rollups: Table
    day_visitors: Table
    drops: Table
    usage: Table
    checkpoints: Table
    site_state: Table
    dictionary: Table
    all_events: Table
    all_sessions: Table


@cache
def tables(engine: str) -> Tables:
    """Return the tables with the column types of `engine` ("duckdb" or "clickhouse")."""
    metadata = MetaData()

    def make(name: str, columns: tuple[schema.Column, ...]) -> Table:
        return Table(name, metadata, *(_column(column, engine) for column in columns))

    built = {name: make(name, columns) for name, columns in schema.TABLES.items()}
    dictionary = Table(
        "dict",
        metadata,
        Column("dictionary", SmallInteger),
        Column("code", Integer),
        Column("value", UnicodeText),
    )
    # The views: tables of the same columns, defined in the engine as UNION ALL of the two.
    views = {
        "all_events": make("all_events", schema.EVENTS),
        "all_sessions": make("all_sessions", schema.SESSIONS),
    }
    return Tables(**built, dictionary=dictionary, **views)


def _column(column: schema.Column, engine: str) -> Column[object]:
    if column.is_dim:
        kind: TypeEngine[Any] = Integer() if engine == "duckdb" else String()
    else:
        kind = _TYPES[column.kind]()
    return Column(column.name, kind)


def view_sql(view: str, engine: str) -> str:
    """Return the SELECT of one of the views (all_events, all_sessions)."""
    source = {
        "all_events": ("events", "recent_events"),
        "all_sessions": ("sessions", "recent_sessions"),
    }
    names = [c.name for c in (schema.EVENTS if view == "all_events" else schema.SESSIONS)]
    t = tables(engine)
    closed, open_ = (getattr(t, name) for name in source[view])
    statement = union_all(
        closed.select().with_only_columns(*(closed.c[n] for n in names)),
        open_.select().with_only_columns(*(open_.c[n] for n in names)),
    )
    return str(statement)
