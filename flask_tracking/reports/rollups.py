"""Rollups: per site, local day, dimension and value, the counts unfiltered reports read.

They are built when the event store closes a UTC day (or re-marks a site for a new zone),
from that day's marked rows, by the very queries reports run on raw rows (queries.py), one
row per local day *slice*: a local day meets two UTC days, and a visitor-day lies within one,
so a local day's counts are the sum of its slices' — visitors included. Reports sum the
rollups of closed days with the raw counts of the open ones (stats.py).

Goals (reports/goals.py) are rolled up too, but not when a day closes: a goal can be defined
at any time and must count the days already closed. The writer fills them in after each
derive (`fill_goals`): for each goal of a site, the closed slices that lack its rows get them,
one row per slice that has a TOTAL row — with zeros where nothing converted — so a goal's
rows are complete exactly when they cover the TOTAL rows' slices. Reports check that
(`goal_values`) and read a goal raw until then. A day reopened for late events or a site
re-marked for a new zone loses its rollups, goals' included, and gets them back the same way.
A goal row's value is the goal's key (a digest of what it counts, so renaming a goal keeps
its rows), and its columns say: visitors = unique conversions, events = conversions, visits =
conversions carrying a revenue value, ms = their revenue in thousandths.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import and_, func, or_, select

from flask_tracking.events.store import Closing, EventStore, Readable
from flask_tracking.events.tables import tables
from flask_tracking.reports.dimensions import DIMENSIONS, Dimension
from flask_tracking.reports.goals import Goal
from flask_tracking.reports.queries import Conversions, Counts, Queries, Scope

TOTAL = 0
PROP = 100  # a custom event's property: value is "event\x1fkey\x1fvalue"
GOAL = 101  # a goal: value is goal_key(goal)
DAY_MS = 86_400_000
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


def goal_key(goal: Goal) -> str:
    """Return the key of a goal's rollups: a digest of what it counts (not of its name)."""
    what = [goal.kind, goal.path, goal.event, goal.prop_key, goal.prop_value, goal.revenue_prop]
    return hashlib.sha256(json.dumps(what).encode()).hexdigest()[:24]


def missing_goal_slices(
    store: Readable, site_id: int, goals: Iterable[Goal]
) -> dict[str, list[tuple[int, int]]]:
    """Return, per goal key, the closed (UTC day, local day) slices of a site that have no
    row of the goal yet (every goal key of `goals`, even those with nothing missing)."""
    r = tables(_kind(store)).rollups.c
    keys = sorted({goal_key(goal) for goal in goals})
    if not keys:
        return {}
    slices = {
        (int(utc), int(day))
        for utc, day in store.fetch(
            select(r.utc_day, r.day).where(r.site_id == site_id, r.dimension == TOTAL)
        )
    }
    have: dict[str, set[tuple[int, int]]] = {key: set() for key in keys}
    for value, utc, day in store.fetch(
        select(r.value, r.utc_day, r.day).where(
            r.site_id == site_id, r.dimension == GOAL, r.value.in_(keys)
        )
    ):
        have[str(value)].add((int(utc), int(day)))
    return {key: sorted(slices - have[key]) for key in keys}


def goal_rows(
    store: Readable, site_id: int, goal: Goal, wanted: list[tuple[int, int]]
) -> list[tuple[Any, ...]]:
    """Return the rollup rows of a goal for the wanted closed slices of a site (zeros where
    nothing converted), read from the closed marked rows, a run of UTC days at a time."""
    t = tables(_kind(store))
    queries = Queries(store, t.sessions, t.events)
    found: dict[tuple[int, int], Conversions] = {}
    days = sorted({utc for utc, _day in wanted})
    runs: list[list[int]] = []
    for day in days:
        if runs and day == runs[-1][-1] + 1:
            runs[-1].append(day)
        else:
            runs.append([day])
    for run in runs:
        start = datetime(1970, 1, 1, tzinfo=UTC) + timedelta(days=run[0])
        scope = Scope(site_id, start, start + timedelta(days=len(run)))
        found.update(queries.goal_slices(scope, goal))
    key = goal_key(goal)
    rows = []
    for utc, day in wanted:
        c = found.get((utc, day), Conversions())
        counts = (c.visitors, c.valued, 0, c.conversions, 0, round(c.revenue * 1000))
        rows.append((site_id, utc, day, GOAL, key, *counts))
    return rows


def goal_values(
    store: Readable, site_id: int, periods: list[tuple[int, int]], goals: Iterable[Goal]
) -> list[dict[str, Conversions]]:
    """Return, for each period of local days (first, last), by goal key, the rolled-up
    conversions of the goals whose rows cover every closed slice of those days; the others
    are left out (their rows are still being filled in: read them raw). One query for all."""
    table = tables(_kind(store)).rollups
    r = table.c
    keys = sorted({goal_key(goal) for goal in goals})
    names = ("visitors", "visits", "events", "ms")
    columns: list[Any] = [r.value]
    for first, last in periods:
        inside = r.day.between(first, last)
        columns += [func.count().filter(inside), *(func.sum(r[n]).filter(inside) for n in names)]
    rows = store.fetch(
        select(*columns)
        .where(
            r.site_id == site_id,
            r.day.between(min(p[0] for p in periods), max(p[1] for p in periods)),
            or_(r.dimension == TOTAL, and_(r.dimension == GOAL, r.value.in_(keys))),
        )
        .group_by(r.value)
    )
    width = 1 + len(names)
    found: list[dict[str, Conversions]] = [{} for _ in periods]
    slices = [0] * len(periods)
    for value, *counts in rows:  # TOTAL's value is "": it counts the slices
        if value == "":
            slices = [int(counts[i * width] or 0) for i in range(len(periods))]
    for value, *counts in rows:
        for index in range(len(periods)):
            count, visitors, valued, events, ms = (
                int(n or 0) for n in counts[index * width : (index + 1) * width]
            )
            if value != "" and count == slices[index]:
                found[index][str(value)] = Conversions(visitors, events, ms / 1000, valued)
    for index, count in enumerate(slices):
        if not count:  # nothing closed in the period: every goal's rollups are complete
            found[index].update((key, Conversions()) for key in keys)
    return found


def _kind(store: Readable) -> str:
    return "duckdb" if store.engine == "duckdb" else "clickhouse"


def fill_goals(store: EventStore, goals: dict[int, tuple[Goal, ...]]) -> int:
    """Give every goal of every site (`goals`: site id -> its goals) rows for the closed
    slices that lack them; return how many rows were added. The writer runs it after each
    derive; it costs a query per site when nothing is missing."""
    added = 0
    for site_id, site_goals in sorted(goals.items()):
        missing = missing_goal_slices(store, site_id, site_goals)
        for goal in site_goals:
            wanted = missing.pop(goal_key(goal), [])  # two goals may count the same
            if wanted:
                rows = goal_rows(store, site_id, goal, wanted)
                store.add_rollups(rows)
                added += len(rows)
    return added
