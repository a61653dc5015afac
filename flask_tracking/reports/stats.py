"""The reporting layer: (site, date range, filters) -> dataclasses, for pages, CSV and the API.

Unfiltered reports read rollups (reports/rollups.py) when the site's rollups are built in its
current zone and the range falls on their boundaries; anything else reads raw events through
reports/raw.py with the same definitions, so the two paths agree to the visitor.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Iterable
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, Select, func, select, union_all

from flask_tracking.extensions import db
from flask_tracking.reports import raw
from flask_tracking.reports.dimensions import (
    CHART_METRICS,
    NONE,
    Dimension,
    Filter,
    InvalidQuery,
    metric,
)
from flask_tracking.reports.ranges import (
    DateRange,
    as_utc,
    buckets,
    local_midnight,
    next_month,
    zone_named,
)
from flask_tracking.reports.rollups import COUNT_COLUMNS, PROP, PROP_SEPARATOR
from flask_tracking.tracking.analytics import RollupDay, RollupHour, RollupMonth, RollupState
from flask_tracking.tracking.models import Visit

REALTIME_WINDOW = timedelta(minutes=5)
SORTS = ("visitors", "visits", "pageviews", "events")
MAX_LIMIT = 1000


@dataclass(frozen=True, slots=True)
class ReportQuery:
    """What a report is about: a site (in its zone), a period and filters."""

    site_id: int
    timezone: str
    range: DateRange
    filters: tuple[Filter, ...] = ()

    def scope(self, period: DateRange | None = None) -> raw.Scope:
        """Return the raw-query scope of this query, or of another period with its filters."""
        period = period or self.range
        return raw.Scope(self.site_id, period.start, period.end, self.filters, self.timezone)


class Rates:
    """Bounce rate and visit duration, for anything that counts visits, bounces and duration."""

    __slots__ = ()
    visits: int
    bounces: int
    duration: float

    @property
    def bounce_rate(self) -> float:
        """Return the percentage of visits with at most one pageview."""
        return 100.0 * self.bounces / self.visits if self.visits else 0.0

    @property
    def visit_duration(self) -> float:
        """Return the mean visit duration in seconds."""
        return self.duration / self.visits if self.visits else 0.0


@dataclass(frozen=True, slots=True)
class Metrics(Rates):
    """The top metrics of a period."""

    visitors: int
    visits: int
    pageviews: int
    events: int
    bounces: int
    duration: float

    @classmethod
    def of(cls, counts: raw.Counts) -> Metrics:
        """Return the metrics of summed counts."""
        return cls(
            counts.visitors,
            counts.visits,
            counts.pageviews,
            counts.events,
            counts.bounces,
            counts.duration,
        )

    @property
    def views_per_visit(self) -> float:
        """Return pageviews per visit (0 without visits)."""
        return self.pageviews / self.visits if self.visits else 0.0

    def value(self, name: str) -> float:
        """Return the metric called `name` (one of dimensions.METRICS)."""
        return float(getattr(self, metric(name)))


@dataclass(frozen=True, slots=True)
class Aggregate:
    """A period's metrics and, when compared, the previous period's."""

    current: Metrics
    previous: Metrics | None

    def change(self, name: str) -> float | None:
        """Return the change of a metric in percent, or None when there is nothing to compare."""
        if self.previous is None:
            return None
        before, now = self.previous.value(name), self.current.value(name)
        if name == "bounce_rate":  # a rate changes in points, not in percent of itself
            return now - before if self.previous.visits and self.current.visits else None
        if before == 0:
            return None
        return 100.0 * (now - before) / before


@dataclass(frozen=True, slots=True)
class Point:
    """One bucket of a time series."""

    start: datetime
    value: int
    previous: int | None


@dataclass(frozen=True, slots=True)
class Series:
    """A metric per bucket, with the previous period's bucket of the same index."""

    metric: str
    bucket: str
    points: list[Point]


@dataclass(frozen=True, slots=True)
class Row(Rates):
    """One value of a breakdown."""

    value: str
    label: str
    visitors: int
    visits: int
    pageviews: int
    events: int
    bounces: int
    duration: float
    share: float  # of the period's visitors, in percent


@dataclass(frozen=True, slots=True)
class Breakdown:
    """A ranked page of a dimension's values."""

    dimension: Dimension
    rows: list[Row]
    total: int  # how many distinct values there are
    limit: int
    offset: int


@dataclass(frozen=True, slots=True)
class PropRow:
    """One property value of a custom event."""

    key: str
    value: str
    visitors: int
    events: int


class Report:
    """The reports of one query, sharing what they read: hours once per period, one lookup of
    the rollup state. Build one per request; the functions below are one-shot shortcuts."""

    def __init__(self, query: ReportQuery) -> None:
        self.query = query
        self._hours: dict[tuple[datetime, datetime], dict[datetime, raw.Counts]] = {}
        self._built: bool | None = None
        self._visitors: int | None = None
        self._materialised: raw.Scope | None = None

    def __enter__(self) -> Report:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Drop the temporary tables a filtered report made (the request's rollback would)."""
        if self._materialised is not None:
            raw.drop(self._materialised)
            self._materialised = None

    def scope(self, period: DateRange | None = None) -> raw.Scope:
        """Return the raw-query scope of a period: for a filtered report, over temporary
        copies of what the filters select, made once for this period and the previous one."""
        period = period or self.query.range
        if not self.query.filters:
            return self.query.scope(period)
        if self._materialised is None:
            span = DateRange(
                self.query.range.previous().start, self.query.range.end, "", self.query.range.bucket
            )
            self._materialised = raw.materialise(self.query.scope(span))
        return replace(self._materialised, start=period.start, end=period.end)

    def aggregate(self, *, compare: bool = True) -> Aggregate:
        """Return the top metrics of the period and, if `compare`, of the previous one."""
        current = Metrics.of(_sum(self.hours(self.query.range).values()))
        previous = None
        if compare:
            previous = Metrics.of(_sum(self.hours(self.query.range.previous()).values()))
        return Aggregate(current, previous)

    def timeseries(self, name: str = "visitors", *, compare: bool = True) -> Series:
        """Return `name` per bucket of the period (and the previous period's, bucket by bucket)."""
        name = metric(name, CHART_METRICS)
        period = self.query.range
        starts = buckets(period, self.query.timezone)
        values = _bucketed(self.hours(period), starts, name)
        before: list[int] | None = None
        if compare:
            previous = period.previous()
            shift = period.start - previous.start
            before = _bucketed(self.hours(previous), [start - shift for start in starts], name)
        points = [
            Point(start, value, None if before is None else before[index])
            for index, (start, value) in enumerate(zip(starts, values, strict=True))
        ]
        return Series(name, period.bucket, points)

    def breakdown(
        self, dim: Dimension, *, limit: int = 10, offset: int = 0, sort: str = "visitors"
    ) -> Breakdown:
        """Return a ranked page of `dim`'s values, with shares of the period's visitors."""
        if sort not in SORTS:
            raise InvalidQuery(f"Unknown sort {sort!r}; choose one of {', '.join(SORTS)}.")
        if not 1 <= limit <= MAX_LIMIT:
            raise InvalidQuery(f"The limit must be between 1 and {MAX_LIMIT}.")
        if offset < 0:
            raise InvalidQuery("The offset must not be negative.")
        if self._visitors is None:
            self._visitors = self.aggregate(compare=False).current.visitors
        if self._days_from_rollups():
            found, total = self._rollup_values(dim.name, limit, offset, sort)
        else:
            values = raw.by_value(self.scope(), dim)
            ranked = sorted(
                values.items(),
                key=lambda item: (-getattr(item[1], sort), -item[1].visitors, item[0]),
            )
            found, total = ranked[offset : offset + limit], len(ranked)
        rows = [_row(dim, value, counts, self._visitors) for value, counts in found]
        return Breakdown(dim, rows, total, limit, offset)

    def event_props(self, event: str, *, limit: int = 20) -> list[PropRow]:
        """Return the most frequent property values of custom event `event`."""
        pairs: list[tuple[tuple[str, ...], raw.Counts]]
        if self._days_from_rollups():
            prefix = event + PROP_SEPARATOR
            found, _total = self._rollup_values(PROP, MAX_LIMIT, 0, "events", prefix=prefix)
            pairs = [
                (tuple(value[len(prefix) :].split(PROP_SEPARATOR, 1)), counts)
                for value, counts in found
            ]
        else:
            pairs = list(raw.props(self.scope(), event).items())
        rows = [
            PropRow(pair[0], pair[1], counts.visitors, counts.events)
            for pair, counts in pairs
            if len(pair) == 2
        ]
        rows.sort(key=lambda r: (-r.events, -r.visitors, r.key, r.value))
        return rows[:limit]

    def hours(self, period: DateRange) -> dict[datetime, raw.Counts]:
        """Return counts per local hour of `period`, from rollups when they cover it exactly."""
        key = (period.start, period.end)
        if key not in self._hours:
            self._hours[key] = self._read_hours(period)
        return self._hours[key]

    def _read_hours(self, period: DateRange) -> dict[datetime, raw.Counts]:
        query = self.query
        offset = raw.hour_offset(zone_named(query.timezone), period.start)
        if _on_hours(period, offset) and self._rollups_built():
            columns = [getattr(RollupHour, name) for name in COUNT_COLUMNS]
            rows = db.session.execute(
                select(RollupHour.start, *columns).where(
                    RollupHour.site_id == query.site_id,
                    RollupHour.start >= period.start,
                    RollupHour.start < period.end,
                )
            )
            return {as_utc(start): _counts(values) for start, *values in rows}
        hours = raw.by_hour(self.scope(period))
        return {datetime.fromtimestamp(epoch, UTC): counts for epoch, counts in hours.items()}

    def _rollups_built(self) -> bool:
        if self.query.filters:
            return False
        if self._built is None:
            built = db.session.scalar(
                select(RollupState.timezone).where(RollupState.site_id == self.query.site_id)
            )
            self._built = built == self.query.timezone
        return self._built

    def _days_from_rollups(self) -> bool:
        zone = zone_named(self.query.timezone)
        period = self.query.range
        first = period.start.astimezone(zone).date()
        last = period.end.astimezone(zone).date()
        on_days = local_midnight(first, zone) == period.start and (
            local_midnight(last, zone) == period.end
        )
        return on_days and self._rollups_built()

    def _rollup_values(
        self, dimension: str, limit: int, offset: int, sort: str, *, prefix: str = ""
    ) -> tuple[list[tuple[str, raw.Counts]], int]:
        """Return a ranked page of a dimension's values summed over months and days, and a count."""
        query = self.query
        zone = zone_named(query.timezone)
        first = query.range.start.astimezone(zone).date()
        stop = query.range.end.astimezone(zone).date()
        months = _whole_months(first, stop)
        parts: list[Select[Any]] = []

        def part(model: Any, column: Any, low: date, high: date) -> Select[Any]:
            where: list[ColumnElement[bool]] = [
                model.site_id == query.site_id,
                model.dimension == dimension,
                column >= low,
                column < high,
            ]
            if prefix:
                where.append(func.substr(model.value, 1, len(prefix)) == prefix)
            return select(model.value, *(getattr(model, name) for name in COUNT_COLUMNS)).where(
                *where
            )

        if months:
            parts.append(
                part(RollupMonth, RollupMonth.month, months[0], months[-1] + timedelta(days=1))
            )
            if first < months[0]:
                parts.append(part(RollupDay, RollupDay.day, first, months[0]))
            after = next_month(months[-1])
            if after < stop:
                parts.append(part(RollupDay, RollupDay.day, after, stop))
        else:
            parts.append(part(RollupDay, RollupDay.day, first, stop))
        rows = union_all(*parts).subquery() if len(parts) > 1 else parts[0].subquery()
        sums = [func.sum(rows.c[name]).label(name) for name in COUNT_COLUMNS]
        ranked = (
            select(rows.c.value, *sums, func.count().over().label("total"))
            .group_by(rows.c.value)
            .order_by(func.sum(rows.c[sort]).desc(), func.sum(rows.c.visitors).desc(), rows.c.value)
            .limit(limit)
            .offset(offset)
        )
        found: list[tuple[str, raw.Counts]] = []
        total = 0
        for value, *values, count in db.session.execute(ranked):
            found.append((value, _counts(values)))
            total = int(count)
        if not found and offset:  # past the end: the window count had no row to ride on
            distinct = select(rows.c.value).group_by(rows.c.value).subquery()
            total = int(db.session.scalar(select(func.count()).select_from(distinct)) or 0)
        return found, total


def aggregate(query: ReportQuery, *, compare: bool = True) -> Aggregate:
    """Return the top metrics of the query's period (see Report.aggregate)."""
    with Report(query) as report:
        return report.aggregate(compare=compare)


def timeseries(query: ReportQuery, name: str = "visitors", *, compare: bool = True) -> Series:
    """Return a metric per bucket of the query's period (see Report.timeseries)."""
    with Report(query) as report:
        return report.timeseries(name, compare=compare)


def breakdown(
    query: ReportQuery, dim: Dimension, *, limit: int = 10, offset: int = 0, sort: str = "visitors"
) -> Breakdown:
    """Return a ranked page of a dimension's values (see Report.breakdown)."""
    with Report(query) as report:
        return report.breakdown(dim, limit=limit, offset=offset, sort=sort)


def event_props(query: ReportQuery, event: str, *, limit: int = 20) -> list[PropRow]:
    """Return a custom event's most frequent property values (see Report.event_props)."""
    with Report(query) as report:
        return report.event_props(event, limit=limit)


def realtime(site_id: int, now: datetime | None = None) -> int:
    """Return the visitors with an event in the last five minutes (always from raw events)."""
    since = (now or datetime.now(UTC)) - REALTIME_WINDOW
    query = select(func.count(func.distinct(Visit.visitor_id))).where(
        Visit.site_id == site_id, Visit.date >= since
    )
    return int(db.session.scalar(query) or 0)


def first_event(site_id: int) -> datetime | None:
    """Return when the site's first stored event happened (for the "all time" range)."""
    return db.session.scalar(select(func.min(Visit.date)).where(Visit.site_id == site_id))


# -- the rollup path -------------------------------------------------------------------------


def _on_hours(period: DateRange, offset: int) -> bool:
    moments = (period.start, period.end)
    return all((int(moment.timestamp()) - offset) % 3600 == 0 for moment in moments)


def _whole_months(first: date, stop: date) -> list[date]:
    """Return the first days of the months lying entirely within local days [first, stop)."""
    month = first if first.day == 1 else next_month(first)
    months = []
    while next_month(month) <= stop:
        months.append(month)
        month = next_month(month)
    return months


def _counts(values: Iterable[Any]) -> raw.Counts:
    visitors, visits, pageviews, events, bounces, duration = values
    return raw.Counts(
        int(visitors or 0),
        int(visits or 0),
        int(pageviews or 0),
        int(events or 0),
        int(bounces or 0),
        float(duration or 0),
    )


def _sum(counts: Iterable[raw.Counts]) -> raw.Counts:
    total = raw.Counts()
    for one in counts:
        total.add(one)
    return total


def _bucketed(hours: dict[datetime, raw.Counts], starts: list[datetime], name: str) -> list[int]:
    values = [0] * len(starts)
    for moment, counts in hours.items():
        index = bisect_right(starts, moment) - 1
        if index >= 0:
            values[index] += getattr(counts, name)
    return values


def _row(dim: Dimension, value: str, counts: raw.Counts, total_visitors: int) -> Row:
    return Row(
        value=value,
        label=value if value != NONE else dim.none_label,
        visitors=counts.visitors,
        visits=counts.visits,
        pageviews=counts.pageviews,
        events=counts.events,
        bounces=counts.bounces,
        duration=counts.duration,
        share=100.0 * counts.visitors / total_visitors if total_visitors else 0.0,
    )
