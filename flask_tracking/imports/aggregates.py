"""Aggregate imports: loading them beside the native data, reading them into reports, and
writing a site's numbers in Plausible's format.

The rule against double counting (Plausible's): an aggregate import keeps only the days before
the site's own data starts, and no day another aggregate import of the site already holds.
Reports add imported days to native ones when no filter is set and the view asks for them
(reports/stats.py); a filter cannot apply to aggregates, so filtered views leave them out and
the dashboard says so.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from datetime import UTC, date, datetime, timedelta
from typing import Any

from sqlalchemy import delete, func, select

from flask_tracking.events.store import Readable
from flask_tracking.extensions import db
from flask_tracking.imports.models import AGGREGATES, DONE, Import, ImportedDay
from flask_tracking.imports.plausible import TOTAL, Aggregates, Export, cells
from flask_tracking.reports.dimensions import DIMENSIONS, Dimension
from flask_tracking.reports.queries import Counts, Queries, Scope, slice_keys
from flask_tracking.reports.ranges import zone_named

EPOCH = date(1970, 1, 1)
EVERYTHING = (datetime(1970, 1, 1, tzinfo=UTC), datetime(2200, 1, 1, tzinfo=UTC))


def native_start(site_id: int, timezone: str, store: Readable) -> date | None:
    """The site's first local day with native data (sessions), if any."""
    first = Queries(store).first_event(site_id)
    if first is None:
        return None
    return datetime.fromtimestamp(first / 1000, UTC).astimezone(zone_named(timezone)).date()


def held_days(site_id: int) -> dict[date, int]:
    """The days aggregate imports of a site hold already, with the import holding each."""
    rows = db.session.execute(
        select(ImportedDay.day, ImportedDay.import_id)
        .where(ImportedDay.site_id == site_id, ImportedDay.dimension == TOTAL)
        .distinct()
    )
    return {day: import_id for day, import_id in rows}


def keep_new_days(site_id: int, found: Aggregates, start: date | None) -> None:
    """Apply the rule against double counting to what a file holds, saying what it drops."""
    held = held_days(site_id)
    late = [day for day in found.days if start is not None and day >= start]
    if late:
        found.skipped[f"days on or after {start}, when this site's own data starts"] += len(late)
    again = [day for day in found.days if day in held and day not in late]
    if again:
        found.skipped["days an earlier import holds already"] += len(again)
    orphans = {day for day, _dim, _value in found.counts} - set(found.days)
    found.without_days([*late, *again, *orphans])


def load(record: Import, found: Aggregates) -> None:
    """Store a file's aggregates under its import (in the caller's transaction)."""
    rows = [
        {
            "import_id": record.id,
            "site_id": record.site_id,
            "day": day,
            "dimension": dimension,
            "value": value[:2048],
            "visitors": c.visitors,
            "visits": c.visits,
            "pageviews": c.pageviews,
            "events": c.events,
            "bounces": c.bounces,
            "duration": c.duration,
        }
        for (day, dimension, value), c in sorted(found.counts.items())
    ]
    for start in range(0, len(rows), 5000):
        db.session.execute(ImportedDay.__table__.insert(), rows[start : start + 5000])
    days = found.days
    record.kind = AGGREGATES
    record.rows = found.visitors()
    record.first_day = days[0] if days else None
    record.last_day = days[-1] if days else None
    record.skipped_json = json.dumps(dict(found.skipped))
    record.status = DONE
    record.done_at = datetime.now(UTC)


def remove(record: Import) -> None:
    """Delete an aggregate import and its days (in the caller's transaction)."""
    db.session.execute(delete(ImportedDay).where(ImportedDay.import_id == record.id))
    db.session.delete(record)


# -- reading, for reports ---------------------------------------------------------------------


def day_number(day: date) -> int:
    return (day - EPOCH).days


def _between(site_id: int, days: tuple[int, int]) -> list[Any]:
    first, last = (EPOCH + timedelta(days=n) for n in days)
    return [ImportedDay.site_id == site_id, ImportedDay.day >= first, ImportedDay.day <= last]


def _sums() -> list[Any]:
    d = ImportedDay
    return [
        func.sum(d.visitors),
        func.sum(d.visits),
        func.sum(d.pageviews),
        func.sum(d.events),
        func.sum(d.bounces),
        func.sum(d.duration),
    ]


def _counts(row: Any) -> Counts:
    visitors, visits, pageviews, events, bounces, duration = (x or 0 for x in row)
    return Counts(int(visitors), int(visits), int(pageviews), int(events), int(bounces), duration)


def days(site_id: int, span: tuple[int, int]) -> dict[int, Counts]:
    """The imported totals per local day (day numbers, inclusive span)."""
    if span[0] > span[1]:
        return {}
    rows = db.session.execute(
        select(ImportedDay.day, *_sums())
        .where(*_between(site_id, span), ImportedDay.dimension == TOTAL)
        .group_by(ImportedDay.day)
    )
    return {day_number(row[0]): _counts(row[1:]) for row in rows}


def values(
    site_id: int, span: tuple[int, int], dims: Iterable[Dimension]
) -> dict[str, dict[str, Counts]]:
    """The imported counts of each dimension's values over the days, by dimension name."""
    dims = list(dims)
    found: dict[str, dict[str, Counts]] = {dim.name: {} for dim in dims}
    numbers = {dim.number: dim.name for dim in dims if dim.number > 0}
    if span[0] > span[1] or not numbers:
        return found
    rows = db.session.execute(
        select(ImportedDay.dimension, ImportedDay.value, *_sums())
        .where(*_between(site_id, span), ImportedDay.dimension.in_(numbers))
        .group_by(ImportedDay.dimension, ImportedDay.value)
    )
    for row in rows:
        found[numbers[row[0]]][row[1]] = _counts(row[2:])
    return found


def has_any(site_id: int) -> bool:
    """Tell whether a site holds imported aggregates at all."""
    return (
        db.session.scalar(select(ImportedDay.id).where(ImportedDay.site_id == site_id).limit(1))
        is not None
    )


def first_day(site_id: int) -> date | None:
    """The first imported day of a site, if any (for the "all time" range)."""
    return db.session.scalar(
        select(func.min(ImportedDay.day)).where(ImportedDay.site_id == site_id)
    )


# -- export in Plausible's format -------------------------------------------------------------

# Our single dimensions and the Plausible table each goes to (sources and locations go as
# combinations of several of ours, below).
SINGLE = {
    "page": "pages",
    "entry_page": "entry_pages",
    "exit_page": "exit_pages",
    "screen": "devices",
    "browser": "browsers",
    "os": "operating_systems",
    "event": "custom_events",
}
COMBINED = {
    "sources": ("source", "referrer", "utm_source", "utm_medium", "utm_campaign"),
    "locations": ("country", "region"),
}


def export(site_id: int, timezone: str, host: str, store: Readable) -> bytes:
    """A site's whole history (native and imported) as Plausible's export ZIP."""
    queries = Queries(store)
    scope = Scope(site_id, *EVERYTHING, (), timezone)
    totals: dict[date, Counts] = {}
    for (_utc, day), counts in queries.by_slice(scope).items():
        totals.setdefault(_date(day), Counts()).add(counts)
    per_value: dict[tuple[str, date, tuple[str, ...]], Counts] = {}
    found = queries.by_values(scope, [DIMENSIONS[n] for n in SINGLE], slices=True)
    for name, rows in found.items():
        for (_utc, local_day, value), counts in rows.items():
            per_value.setdefault((name, _date(local_day), (value,)), Counts()).add(counts)
    for table, names in COMBINED.items():
        for key, counts in _combinations(queries, scope, names).items():
            per_value.setdefault((table, key[0], tuple(key[1:])), Counts()).add(counts)
    _add_imported(site_id, totals, per_value)
    out = Export()
    for moment, counts in sorted(totals.items()):
        out.add("visitors", moment, (), counts)
    for (name, when, values), counts in per_value.items():
        table = SINGLE.get(name, name)
        out.add(table, when, _cells(table, name, values, host), counts)
    return out.zip()


def _cells(table: str, name: str, texts: tuple[str, ...], host: str) -> list[Any]:
    """The value columns of a row of a Plausible table."""
    if table == "sources":
        source, referrer, *utm = texts
        return [*cells("source", source), referrer, *utm, "", ""]
    if table == "locations":
        return [*texts, 0]
    if table == "pages":
        return [host, texts[0]]
    if table in ("browsers", "operating_systems"):
        return [texts[0], ""]
    if table == "custom_events":
        return [texts[0], "", ""]
    return list(cells(name, texts[0]))


def _date(day: Any) -> date:
    return EPOCH + timedelta(days=int(day))


def _combinations(
    queries: Queries, scope: Scope, names: tuple[str, ...]
) -> dict[tuple[Any, ...], Counts]:
    """Session counts per local day and combination of several dimensions' values (text)."""
    dims = [DIMENSIONS[name] for name in names]
    keys = [*slice_keys(queries.sessions), *(queries.sessions.c[d.column] for d in dims)]
    found = queries.sessions_by(scope, keys)
    wanted: dict[str, set[Any]] = {}
    for key in found:
        for dim, code in zip(dims, key[2:], strict=True):
            wanted.setdefault(dim.dictionary, set()).add(code)
    texts = queries.encoding.texts(queries.store, wanted)
    result: dict[tuple[Any, ...], Counts] = {}
    for key, counts in found.items():
        named = tuple(
            texts[d.dictionary].get(code, "") for d, code in zip(dims, key[2:], strict=True)
        )
        result.setdefault((_date(key[1]), *named), Counts()).add(counts)
    return result


def _add_imported(
    site_id: int,
    totals: dict[date, Counts],
    per_value: dict[tuple[str, date, tuple[str, ...]], Counts],
) -> None:
    """Add a site's imported aggregates to an export (each dimension on its own: imports keep
    no combinations)."""
    combined_of = {name: table for table, names in COMBINED.items() for name in names}
    names = {dim.number: dim.name for dim in DIMENSIONS.values()}
    rows = db.session.execute(
        select(ImportedDay).where(ImportedDay.site_id == site_id).order_by(ImportedDay.id)
    ).scalars()
    for row in rows:
        counts = Counts(
            row.visitors, row.visits, row.pageviews, row.events, row.bounces, row.duration
        )
        if row.dimension == TOTAL:
            totals.setdefault(row.day, Counts()).add(counts)
            continue
        name = names.get(row.dimension)
        if name in SINGLE:
            per_value.setdefault((name, row.day, (row.value,)), Counts()).add(counts)
        elif name in ("source", "country"):  # one dimension of a combination stands for it
            table = combined_of[name]
            texts = (row.value, *([""] * (len(COMBINED[table]) - 1)))
            per_value.setdefault((table, row.day, texts), Counts()).add(counts)


def imports_of(site_id: int) -> list[Import]:
    """A site's imports, the newest first."""
    return list(
        db.session.scalars(
            select(Import).where(Import.site_id == site_id).order_by(Import.id.desc())
        )
    )
