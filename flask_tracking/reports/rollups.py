"""Rollups: per-site counts by local hour, and per local day and month by dimension value.

Unfiltered reports read these instead of raw events (reports/stats.py). They are computed
from raw events with the very queries filtered reports use (reports/raw.py), one local day at a
time, so a rollup can never disagree with a raw query over the same day.

How they stay current:
- the ingest writer marks each (site, UTC day) it stores events for in `rollup_dirty`, in the
  same transaction as the events;
- `refresh()` (run by the writer every ROLLUP_INTERVAL seconds, and by `drain`) recomputes the
  local days those UTC days touch, then their months, and clears the marks it has handled;
- rollups are keyed by the site's local days, so they are built for one zone: `rollup_states`
  records it. A site whose zone changed (or that has none recorded) is rebuilt whole, and
  reports read raw events for it until that is done;
- `flask-tracking rollups rebuild` recomputes everything from raw events.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import Date, and_, delete, func, insert, literal, select

from flask_tracking.database import upsert, write_transaction
from flask_tracking.extensions import db
from flask_tracking.reports import raw
from flask_tracking.reports.dimensions import DIMENSIONS
from flask_tracking.reports.ranges import as_utc, local_midnight, next_month, zone_named
from flask_tracking.tracking.analytics import (
    RollupDay,
    RollupDirty,
    RollupHour,
    RollupMonth,
    RollupState,
)
from flask_tracking.tracking.models import Site, Visit
from flask_tracking.users.models import utcnow

logger = logging.getLogger("flask_tracking.reports")
TOTAL = "total"
PROP = "prop"
# Separates event, property and value in a "prop" rollup value (never in user-visible text).
PROP_SEPARATOR = "\x1f"
COUNT_COLUMNS = ("visitors", "visits", "pageviews", "events", "bounces", "duration")


@dataclass(frozen=True, slots=True)
class RefreshResult:
    """What one refresh did."""

    days: int
    sites_rebuilt: int
    seconds: float


def local_days_of(utc_day: date, zone: ZoneInfo) -> set[date]:
    """Return the local days of `zone` that UTC day `utc_day` overlaps (one or two)."""
    start = datetime(utc_day.year, utc_day.month, utc_day.day, tzinfo=UTC)
    last = start + timedelta(days=1) - timedelta(microseconds=1)
    return {start.astimezone(zone).date(), last.astimezone(zone).date()}


def mark_dirty(pairs: Iterable[tuple[int, date]]) -> None:
    """Record that these (site, UTC day) pairs got events; call inside the storing transaction."""
    now = utcnow()
    for site_id, day in sorted(set(pairs)):
        db.session.execute(
            upsert(
                RollupDirty,
                {"site_id": site_id, "day": day, "marked_at": now},
                ["site_id", "day"],
                {"marked_at": now},
            )
        )


@dataclass(frozen=True, slots=True)
class Span:
    """A site's rollup rows for local days first..last, computed and ready to replace theirs."""

    site_id: int
    first: date
    last: date
    start: datetime  # first's local midnight, in UTC
    end: datetime  # the local midnight after last, in UTC
    hours: list[dict[str, object]]
    days: list[dict[str, object]]


def compute_days(site_id: int, tz: str, first: date, last: date) -> Span:
    """Count a site's local days first..last from raw events (reads only).

    One query per dimension for the whole span, grouped by day and value: a month reads each
    row a few times, not once per dimension and day.
    """
    zone = zone_named(tz)
    start, end = local_midnight(first, zone), local_midnight(last + timedelta(days=1), zone)
    scope = raw.Scope(site_id, start, end, timezone=tz)
    hours = raw.by_hour(scope)
    totals: dict[date, raw.Counts] = {}
    for epoch, counts in hours.items():
        day = datetime.fromtimestamp(epoch, UTC).astimezone(zone).date()
        totals.setdefault(day, raw.Counts()).add(counts)
    hour_rows: list[dict[str, object]] = [
        {"site_id": site_id, "start": datetime.fromtimestamp(epoch, UTC), **_values(counts)}
        for epoch, counts in sorted(hours.items())
    ]
    rows = [_day_row(site_id, day, TOTAL, "", counts) for day, counts in totals.items()]
    if hours:
        for dim in DIMENSIONS.values():
            values = raw.by_day_and_value(scope, dim)
            rows += [_day_row(site_id, d, dim.name, v, c) for (d, v), c in values.items()]
        for event in _events_with_props(scope):
            for (day, key, value), counts in raw.props_by_day(scope, event).items():
                joined = PROP_SEPARATOR.join((event, key, value))
                rows.append(_day_row(site_id, day, PROP, joined, counts))
    return Span(site_id, first, last, start, end, hour_rows, rows)


def store_days(span: Span) -> None:
    """Replace the span's rollups with its rows, then the sums of the months it touches.

    Call inside a write transaction: it only deletes and inserts, so it is short.
    """
    site_id = span.site_id
    db.session.execute(
        delete(RollupHour).where(
            RollupHour.site_id == site_id,
            RollupHour.start >= span.start,
            RollupHour.start < span.end,
        )
    )
    db.session.execute(
        delete(RollupDay).where(
            RollupDay.site_id == site_id, RollupDay.day >= span.first, RollupDay.day <= span.last
        )
    )
    if span.hours:
        db.session.execute(insert(RollupHour.__table__), span.hours)
    if span.days:
        db.session.execute(insert(RollupDay.__table__), span.days)
    month = span.first.replace(day=1)
    while month <= span.last:
        build_month(site_id, month)
        month = next_month(month)


def build_day(site_id: int, tz: str, day: date) -> None:
    """Replace a site's rollups of local day `day` (in zone `tz`) with raw events' counts."""
    build_days(site_id, tz, day, day)


def build_days(site_id: int, tz: str, first: date, last: date) -> None:
    """Replace a site's rollups of local days first..last (and their months), and commit."""
    span = compute_days(site_id, tz, first, last)
    with write_transaction():
        store_days(span)


def build_month(site_id: int, first: date) -> None:
    """Replace a site's rollups of the local month starting `first` with its days' sums."""
    following = next_month(first)
    db.session.execute(
        delete(RollupMonth).where(RollupMonth.site_id == site_id, RollupMonth.month == first)
    )
    sums = [func.sum(getattr(RollupDay, name)) for name in COUNT_COLUMNS]
    source = (
        select(
            RollupDay.site_id,
            RollupDay.dimension,
            RollupDay.value,
            literal(first, Date).label("month"),
            *sums,
        )
        .where(RollupDay.site_id == site_id, RollupDay.day >= first, RollupDay.day < following)
        .group_by(RollupDay.site_id, RollupDay.dimension, RollupDay.value)
    )
    names = ["site_id", "dimension", "value", "month", *COUNT_COLUMNS]
    db.session.execute(insert(RollupMonth.__table__).from_select(names, source))


def rebuild_site(site_id: int, tz: str) -> int:
    """Recompute all of a site's rollups in zone `tz`; return the local days built.

    The site's state row is removed first and written last, so reports read raw events for
    it while the rebuild runs, and never a mix of two zones. Each month is counted by reading
    and then stored in a short write transaction of its own.
    """
    zone = zone_named(tz)
    with write_transaction():
        db.session.execute(delete(RollupState).where(RollupState.site_id == site_id))
        for model in (RollupHour, RollupDay, RollupMonth):
            db.session.execute(delete(model).where(model.site_id == site_id))
    first, last = db.session.execute(
        select(func.min(Visit.date), func.max(Visit.date)).where(Visit.site_id == site_id)
    ).one()
    days = 0
    if first is not None:
        day = as_utc(first).astimezone(zone).date()
        stop = as_utc(last).astimezone(zone).date()
        while day <= stop:  # a calendar month at a time: short transactions, bounded memory
            month_end = min(next_month(day) - timedelta(days=1), stop)
            build_days(site_id, tz, day, month_end)
            days += (month_end - day).days + 1
            day = month_end + timedelta(days=1)
    with write_transaction():
        db.session.execute(delete(RollupDirty).where(RollupDirty.site_id == site_id))
        db.session.execute(delete(RollupState).where(RollupState.site_id == site_id))
        db.session.add(RollupState(site_id=site_id, timezone=tz, built_at=utcnow()))
    return days


def rebuild(site_ids: Iterable[int] | None = None) -> int:
    """Rebuild the rollups of the given sites (all when None); return the local days built."""
    query = select(Site.id, Site.timezone).order_by(Site.id)
    if site_ids is not None:
        query = query.where(Site.id.in_(list(site_ids)))
    return sum(rebuild_site(site_id, tz) for site_id, tz in db.session.execute(query).all())


def refresh() -> RefreshResult:
    """Recompute what the dirty marks point at; rebuild sites whose zone has no rollups."""
    began = time.monotonic()
    marks = db.session.execute(
        select(RollupDirty.site_id, RollupDirty.day, RollupDirty.marked_at)
    ).all()
    if not marks:
        return RefreshResult(0, 0, time.monotonic() - began)
    site_ids = sorted({site_id for site_id, _day, _at in marks})
    named = select(Site.id, Site.timezone).where(Site.id.in_(site_ids))
    zones = {site_id: tz for site_id, tz in db.session.execute(named)}
    states = select(RollupState.site_id, RollupState.timezone).where(
        RollupState.site_id.in_(site_ids)
    )
    built = {site_id: tz for site_id, tz in db.session.execute(states)}
    days = rebuilt = 0
    for site_id in site_ids:
        tz = zones.get(site_id)
        if tz is None:  # deleted meanwhile: its marks went with it
            continue
        if built.get(site_id) != tz:
            days += rebuild_site(site_id, tz)
            rebuilt += 1
            continue
        zone = zone_named(tz)
        own = [(day, at) for sid, day, at in marks if sid == site_id]
        local = sorted({d for day, _at in own for d in local_days_of(day, zone)})
        spans = [compute_days(site_id, tz, day, day) for day in local]
        with write_transaction():
            for span in spans:
                store_days(span)
            for day, at in own:  # a mark renewed meanwhile has a later time and stays
                db.session.execute(
                    delete(RollupDirty).where(
                        and_(
                            RollupDirty.site_id == site_id,
                            RollupDirty.day == day,
                            RollupDirty.marked_at == at,
                        )
                    )
                )
        days += len(local)
    return RefreshResult(days, rebuilt, time.monotonic() - began)


def invalidate(site_id: int) -> None:
    """Make a site's rollups unusable and due for a rebuild (after its zone changed)."""
    db.session.execute(delete(RollupState).where(RollupState.site_id == site_id))
    mark_dirty([(site_id, datetime.now(UTC).date())])


def _events_with_props(scope: raw.Scope) -> list[str]:
    query = (
        select(Visit.event)
        .where(
            Visit.site_id == scope.site_id,
            Visit.date >= scope.start,
            Visit.date < scope.end,
            Visit.event.not_in(raw.PAGEVIEW_NAMES),
            Visit.props.is_not(None),
        )
        .distinct()
    )
    return list(db.session.scalars(query))


def _values(counts: raw.Counts) -> dict[str, float | int]:
    return {name: getattr(counts, name) for name in COUNT_COLUMNS}


def _day_row(
    site_id: int, day: date, dimension: str, value: str, counts: raw.Counts
) -> dict[str, object]:
    return {"site_id": site_id, "day": day, "dimension": dimension, "value": value} | _values(
        counts
    )
