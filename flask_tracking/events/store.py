"""What every event store engine offers the write path and the read path.

The writer hands over a `Batch` (events enriched, drop counts, the spool position it reached)
and the store keeps all of it, or none. Reports send SQLAlchemy statements built on
`tables(engine)` with the engine's `encoding`. Derivation (sessions, markers, rollups) runs in
the process that writes.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from sqlalchemy.engine import Dialect

from flask_tracking.events.encoding import Encoding

Row = dict[str, Any]


@dataclass(frozen=True)
class Batch:
    """One spool batch: the events to store, the drops to count, and how far it reached."""

    node: str
    segment: str
    offset: int  # the spool offset after the batch's last line
    rows: list[Row] = field(default_factory=list)  # the `recent` columns, dims as text
    drops: Counter[tuple[int, int, str]] = field(default_factory=Counter)  # (site, UTC day, why)
    usage: Counter[tuple[int, int]] = field(default_factory=Counter)  # (account, yyyymm)

    @property
    def token(self) -> str:
        """A name unique to this batch (ClickHouse deduplicates inserts by it)."""
        return f"{self.node}:{self.segment}:{self.offset}"


@dataclass(frozen=True)
class Closing:
    """Marked rows being stored (a UTC day closing, a site re-marked), staged as tables the
    rollup builder reads."""

    sessions: Any  # a Table
    events: Any  # a Table


# Builds the rollup rows of a staged day: (site_id, day, dimension, value, counts…) tuples.
RollupBuilder = Callable[["Readable", Closing], list[tuple[Any, ...]]]


class Readable(Protocol):
    """What queries need of a store: its engine, dialect and encoding, and SELECTs."""

    @property
    def engine(self) -> str:
        """The engine's name: "duckdb" or "clickhouse"."""

    @property
    def dialect(self) -> Dialect:
        """The SQLAlchemy dialect its statements compile with."""

    @property
    def encoding(self) -> Encoding:
        """How dimension values are written and matched (codes or text)."""

    def fetch(self, statement: Any) -> list[tuple[Any, ...]]:
        """Run a SELECT (SQLAlchemy statement) and return its rows."""


class Store(Readable, Protocol):
    """A store as every process of the app sees it (the web workers reach it remotely)."""

    def delete_site(self, site_id: int) -> None:
        """Delete everything of a site."""

    def zones(self) -> dict[int, str]:
        """Return the zone each site's stored rows are marked in."""

    def close(self) -> None:
        """Release the engine's resources."""


class EventStore(Store, Protocol):
    """The store as its owner (the writer) sees it: DuckDB in a file or ClickHouse."""

    def append(self, batch: Batch) -> None:
        """Store a batch's events, drop counts and spool position, all or nothing."""

    def offsets(self) -> dict[str, int]:
        """Return how far each spool segment is stored (segment names are unique)."""

    def forget(self, segment: str) -> None:
        """Drop the checkpoint of a spool segment that was stored and deleted."""

    def derive(self, now_ms: int, rollups: RollupBuilder) -> int:
        """Refresh the open days' marked rows; close the UTC days that ended; return closed."""

    def rezone(self, site_id: int, zone_name: str, rollups: RollupBuilder) -> None:
        """Recompute a site's local days, markers and rollups for a new time zone."""

    def add_rollups(self, rows: list[tuple[Any, ...]]) -> None:
        """Store rollup rows of closed days computed after they closed (goals'), replacing
        any row of the same site, slice, dimension and value."""

    def visitors_seen(self, site_id: int, page: str, start_ms: int, end_ms: int) -> list[int]:
        """Return the visitor-days of a site with an event on `page` in [start_ms, end_ms)."""

    def visitors_of_events(self, site_id: int, first_eid: int, last_eid: int) -> list[int]:
        """Return the visitor-days of a site's events with ids in [first_eid, last_eid]."""

    def erase_visitors(self, site_id: int, vds: list[int], rollups: RollupBuilder) -> int:
        """Delete every row of these visitor-days, recount their days; return rows deleted."""
