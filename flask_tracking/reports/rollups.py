"""Rollups: per site, local day, dimension and value, the counts unfiltered reports read.

They are built when the event store closes a UTC day (or re-marks a site for a new zone),
from that day's marked rows, by the very queries reports run on raw rows (queries.py), one
row per local day *slice*: a local day meets two UTC days, and a visitor-day lies within one,
so a local day's counts are the sum of its slices' — visitors included. Reports sum the
rollups of closed days with the raw counts of the open ones (stats.py).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import func, select

from flask_tracking.events.store import Closing, Readable
from flask_tracking.events.tables import tables
from flask_tracking.reports.dimensions import DIMENSIONS, Dimension
from flask_tracking.reports.queries import Counts, Queries, Scope

TOTAL = 0
PROP = 100  # a custom event's property: value is "event\x1fkey\x1fvalue"
# Separates event, property and value in a PROP value (never in user-visible text).
PROP_SEPARATOR = "\x1f"
EVERYTHING = (datetime(1970, 1, 1, tzinfo=UTC), datetime(2200, 1, 1, tzinfo=UTC))


def build(store: Readable, staged: Closing) -> list[tuple[Any, ...]]:
    """Return the rollup rows of the staged marked rows: (site, day, dimension, value, counts)."""
    queries = Queries(store, staged.sessions, staged.events)
    sites = {
        int(row[0])
        for table in (staged.sessions, staged.events)
        for row in store.fetch(select(table.c.site_id).distinct())
    }
    rows: list[tuple[Any, ...]] = []
    for site_id in sorted(sites):
        scope = Scope(site_id, *EVERYTHING)
        for (utc, day), counts in queries.by_slice(scope).items():
            rows.append(_row(site_id, (utc, day), TOTAL, "", counts))
        by_dimension = queries.by_values(scope, DIMENSIONS.values(), slices=True)
        for dim in DIMENSIONS.values():
            for (utc, day, value), counts in by_dimension[dim.name].items():
                rows.append(_row(site_id, (utc, day), dim.number, value, counts))
        for event in queries.events_with_props(scope):
            found = queries.props(scope, event, slices=True)
            for (utc, day, key, value), counts in found.items():
                joined = PROP_SEPARATOR.join((event, key, value))
                rows.append(_row(site_id, (utc, day), PROP, joined, counts))
    return rows


def _row(
    site_id: int, utc_and_local_day: tuple[int, int], dimension: int, value: str, c: Counts
) -> tuple[Any, ...]:
    ms = round(c.duration * 1000)
    counts = (c.visitors, c.visits, c.pageviews, c.events, c.bounces, ms)
    return (site_id, *utc_and_local_day, dimension, value, *counts)


def _sums(rollups: Any) -> list[Any]:
    c = rollups.c
    return [
        func.sum(c[name]) for name in ("visitors", "visits", "pageviews", "events", "bounces", "ms")
    ]


def _counts(values: Any) -> Counts:
    visitors, visits, pageviews, events, bounces, ms = (int(v or 0) for v in values)
    return Counts(visitors, visits, pageviews, events, bounces, ms / 1000)


def days(store: Readable, site_id: int, first: int, last: int) -> dict[int, Counts]:
    """Return the rolled-up totals of local days first..last, per day."""
    r = tables(_kind(store)).rollups
    rows = store.fetch(
        select(r.c.day, *_sums(r))
        .where(r.c.site_id == site_id, r.c.dimension == TOTAL, r.c.day.between(first, last))
        .group_by(r.c.day)
    )
    return {int(day): _counts(values) for day, *values in rows}


def values(
    store: Readable, site_id: int, days: tuple[int, int], dimension: int, prefix: str = ""
) -> dict[str, Counts]:
    """Return the rolled-up counts of local days `days` (first, last) per value of a dimension
    number (of the PROP rollups, those whose value starts with `prefix`)."""
    return _values(store, site_id, days, [dimension], prefix)[dimension]


def values_of(
    store: Readable, site_id: int, days: tuple[int, int], dims: list[Dimension]
) -> dict[str, dict[str, Counts]]:
    """Return `values` of several dimensions, by name, in one query."""
    found = _values(store, site_id, days, [dim.number for dim in dims])
    return {dim.name: found[dim.number] for dim in dims}


def _values(
    store: Readable, site_id: int, days: tuple[int, int], numbers: list[int], prefix: str = ""
) -> dict[int, dict[str, Counts]]:
    first, last = days
    r = tables(_kind(store)).rollups
    where = [r.c.site_id == site_id, r.c.dimension.in_(numbers), r.c.day.between(first, last)]
    if prefix:
        where.append(func.substr(r.c.value, 1, len(prefix)) == prefix)
    rows = store.fetch(
        select(r.c.dimension, r.c.value, *_sums(r)).where(*where).group_by(r.c.dimension, r.c.value)
    )
    found: dict[int, dict[str, Counts]] = {number: {} for number in numbers}
    for dimension, value, *counts in rows:
        found[int(dimension)][str(value)] = _counts(counts)
    return found


def _kind(store: Readable) -> str:
    return "duckdb" if store.engine == "duckdb" else "clickhouse"
