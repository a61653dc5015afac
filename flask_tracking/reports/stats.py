"""The reporting layer: (site, date range, filters) -> results, for pages, CSV and the API.

A period splits into local days. Unfiltered, a whole day that the store has closed is read
from its rollups, and everything else (the open days, partial days at the edges of a period
that does not fall on local midnights) from marked rows; filtered, everything is read from
marked rows (queries.py). Both paths are the same definitions, so they agree to the visitor.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Iterable
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import func, select

from flask_tracking.events import current_store
from flask_tracking.events.store import Readable
from flask_tracking.events.tables import tables
from flask_tracking.reports import rollups
from flask_tracking.reports.dimensions import (
    CHART_METRICS,
    GOAL,
    Dimension,
    Filter,
    InvalidQuery,
    metric,
)
from flask_tracking.reports.experiments import Counted, Experiment, ExperimentResult, judge
from flask_tracking.reports.funnels import Funnel, FunnelResult, Step
from flask_tracking.reports.goals import Goal
from flask_tracking.reports.queries import Conversions, Counts, Queries, Scope, by_day
from flask_tracking.reports.ranges import DateRange, buckets, local_midnight, zone_named
from flask_tracking.reports.results import (
    Aggregate,
    Breakdown,
    GoalMetrics,
    GoalResult,
    Metrics,
    Point,
    PropRow,
    Rates,
    Row,
    Series,
)

REALTIME_WINDOW = timedelta(minutes=5)
# Off, unfiltered reports read marked rows too, as filtered ones do: the tests compare the paths.
USE_ROLLUPS: ContextVar[bool] = ContextVar("flask_tracking_use_rollups", default=True)
SORTS = ("visitors", "visits", "pageviews", "events")
MAX_LIMIT = 1000
MAX_SEARCH = 200
DAY = timedelta(days=1)
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)

__all__ = [
    "Aggregate",
    "Breakdown",
    "FunnelResult",
    "GoalResult",
    "Metrics",
    "Point",
    "PropRow",
    "Rates",
    "Report",
    "ReportQuery",
    "Row",
    "Series",
]


@dataclass(frozen=True, slots=True)
class ReportQuery:
    """What a report is about: a site (in its zone), a period and filters."""

    site_id: int
    timezone: str
    range: DateRange
    filters: tuple[Filter, ...] = ()
    goals: tuple[Goal, ...] = ()  # the site's, for the goals report (filters come bound)
    # Add the days aggregate imports hold (imports/aggregates.py), when no filter is set.
    imported: bool = False

    def scope(self, period: DateRange | None = None) -> Scope:
        """Return the raw-query scope of this query, or of another period with its filters."""
        period = period or self.range
        return Scope(self.site_id, period.start, period.end, self.filters, self.timezone)


@dataclass(frozen=True)
class Parts:
    """How an unfiltered period is read: closed whole days from rollups, the rest raw."""

    days: tuple[int, int]  # the whole local days of the period: (first, last), inclusive
    whole: Scope | None  # those days' span, for the open days' marked rows
    edges: tuple[Scope, ...]  # partial days, read raw


class Report:
    """The reports of one query, sharing what they read. Build one per request."""

    def __init__(self, query: ReportQuery, store: Readable | None = None) -> None:
        self.query = query
        self.store = store or current_store()
        self.raw = Queries(self.store)
        t = tables("duckdb" if self.store.engine == "duckdb" else "clickhouse")
        # Sharing what filters' and goals' values stand for: each is looked up once.
        self.open = Queries(self.store, t.recent_sessions, t.recent_events, known=self.raw.known)
        self._days: dict[tuple[datetime, datetime], dict[int, Counts]] = {}
        self._visitors: int | None = None
        self._values: dict[str, dict[str, Counts]] = {}  # by dimension name
        self._open_from: int | None = None  # the site's first open-day event (-1: none)
        self._native_start: int | None = None  # the local day the site's own data starts
        self._has_imported: bool | None = None  # whether the site holds imported aggregates

    def __enter__(self) -> Report:
        return self

    def __exit__(self, *_exc: object) -> None:
        return None

    # -- periods ---------------------------------------------------------------------------

    def parts(self, period: DateRange) -> Parts:
        """Split an unfiltered period into whole local days and partial edges."""
        zone = zone_named(self.query.timezone)
        first = period.start.astimezone(zone).date()
        if local_midnight(first, zone) < period.start:
            first += DAY
        last = period.end.astimezone(zone).date() - DAY
        edges: list[Scope] = []
        site, tz = self.query.site_id, self.query.timezone
        if first > last:
            return Parts((1, 0), None, (Scope(site, period.start, period.end, (), tz),))
        start, stop = local_midnight(first, zone), local_midnight(last + DAY, zone)
        if period.start < start:
            edges.append(Scope(site, period.start, start, (), tz))
        if stop < period.end:
            edges.append(Scope(site, stop, period.end, (), tz))
        days = (_day_number(first), _day_number(last))
        return Parts(days, Scope(site, start, stop, (), tz), tuple(edges))

    def days(self, period: DateRange) -> dict[int, Counts]:
        """Return counts per local day of the period (partial days at its edges included)."""
        key = (period.start, period.end)
        if key not in self._days:
            self._days[key] = self._read_days(period)
        return self._days[key]

    def raw_only(self) -> bool:
        """Tell whether this report reads marked rows only (filtered, or rollups turned off)."""
        return bool(self.query.filters) or not USE_ROLLUPS.get()

    def with_imported(self) -> bool:
        """Tell whether imported aggregates count: asked for, and no filter (a filter cannot
        apply to them — the dashboard says they are left out)."""
        if not self.query.imported or self.query.filters:
            return False
        if self._has_imported is None:  # one indexed look in the app's database a report
            from flask_tracking.imports import aggregates

            self._has_imported = aggregates.has_any(self.query.site_id)
        return self._has_imported

    def _imported_span(self, period: DateRange) -> tuple[int, int]:
        """The whole local days of a period that imported aggregates may fill: those before
        the site's own data starts (read once a report), whatever was imported — so events
        loaded later for days an import holds (a row-level import) are never counted twice."""
        from flask_tracking.imports import aggregates

        if self._native_start is None:
            start = aggregates.native_start(self.query.site_id, self.query.timezone, self.store)
            self._native_start = 2**31 if start is None else aggregates.day_number(start)
        first, last = self.parts(period).days
        return first, min(last, self._native_start - 1)

    def _add_imported_days(self, period: DateRange, found: dict[int, Counts]) -> None:
        if self.with_imported():
            from flask_tracking.imports import aggregates

            for day, counts in aggregates.days(
                self.query.site_id, self._imported_span(period)
            ).items():
                found.setdefault(day, Counts()).add(counts)

    def _add_imported_values(self, dims: list[Dimension]) -> None:
        if self.with_imported() and dims:
            from flask_tracking.imports import aggregates

            span = self._imported_span(self.query.range)
            for name, values in aggregates.values(self.query.site_id, span, dims).items():
                into = self._values.setdefault(name, {})
                for value, counts in values.items():
                    into.setdefault(value, Counts()).add(counts)

    def _read_days(self, period: DateRange) -> dict[int, Counts]:
        found = self._native_days(period)
        self._add_imported_days(period, found)
        return found

    def _native_days(self, period: DateRange) -> dict[int, Counts]:
        if self.raw_only():
            return self.raw.by_day(self.query.scope(period))
        parts = self.parts(period)
        found = rollups.days(self.store, self.query.site_id, *parts.days)
        extra = [self.open.by_day(parts.whole)] if parts.whole else []
        extra += [self.raw.by_day(edge) for edge in parts.edges]
        for more in extra:
            for day, counts in more.items():
                found.setdefault(day, Counts()).add(counts)
        return found

    # -- reports ---------------------------------------------------------------------------

    def aggregate(self, *, compare: bool = True) -> Aggregate:
        """Return the top metrics of the period and, if `compare`, of the previous one."""
        current = Metrics.of(_sum(self.days(self.query.range).values()))
        previous = None
        if compare:
            previous = Metrics.of(_sum(self.days(self.query.range.previous()).values()))
        return Aggregate(current, previous)

    def timeseries(self, name: str = "visitors", *, compare: bool = True) -> Series:
        """Return `name` per bucket of the period (and the previous period's, bucket by bucket)."""
        name = metric(name, CHART_METRICS)
        period = self.query.range
        starts = buckets(period, self.query.timezone)
        values = self._bucketed(period, starts, name)
        before: list[int] | None = None
        if compare:
            previous = period.previous()
            shift = period.start - previous.start
            before = self._bucketed(previous, [start - shift for start in starts], name)
        points = [
            Point(start, value, None if before is None else before[index])
            for index, (start, value) in enumerate(zip(starts, values, strict=True))
        ]
        return Series(name, period.bucket, points)

    def _bucketed(self, period: DateRange, starts: list[datetime], name: str) -> list[int]:
        values = [0] * len(starts)
        if period.bucket == "hour":
            moments = {
                datetime.fromtimestamp(epoch, UTC): counts
                for epoch, counts in self.raw.by_hour(self.query.scope(period)).items()
            }
        else:
            zone = zone_named(self.query.timezone)
            moments = {
                max(local_midnight(EPOCH.date() + timedelta(days=day), zone), period.start): counts
                for day, counts in self.days(period).items()
            }
        for moment, counts in moments.items():
            index = bisect_right(starts, moment) - 1
            if index >= 0:
                values[index] += getattr(counts, name)
        return values

    def breakdown(
        self,
        dim: Dimension,
        *,
        limit: int = 10,
        offset: int = 0,
        sort: str = "visitors",
        search: str = "",
    ) -> Breakdown:
        """Return a ranked page of `dim`'s values, with shares of the period's visitors; with
        `search`, only the values whose text or name contains it (case-insensitive)."""
        _check_page(limit, offset, sort)
        if len(search) > MAX_SEARCH:
            raise InvalidQuery(f"A search is at most {MAX_SEARCH} characters.")
        if self._visitors is None:
            self._visitors = self.aggregate(compare=False).current.visitors
        values = self.values(dim)
        items: Iterable[tuple[str, Counts]] = values.items()
        if search:
            needle = search.casefold()
            items = [
                (value, counts)
                for value, counts in items
                if needle in value.casefold() or needle in dim.text(value).casefold()
            ]
        ranked = sorted(
            items, key=lambda item: (-getattr(item[1], sort), -item[1].visitors, item[0])
        )
        rows = [
            _row(dim, value, counts, self._visitors)
            for value, counts in ranked[offset : offset + limit]
        ]
        return Breakdown(dim, rows, len(ranked), limit, offset)

    def values(self, dim: Dimension) -> dict[str, Counts]:
        """Return every value of a dimension in the period with its counts."""
        if dim.name not in self._values:
            self.prefetch([dim])
        return self._values[dim.name]

    def prefetch(self, dims: Iterable[Dimension]) -> None:
        """Read the values of several dimensions at once, for the breakdowns to come: one pass
        over the sessions for all the session dimensions (a dashboard's dozen panels) and one
        over the events, where each breakdown alone would read them again; filtered, the
        period's days (totals and chart) come with the same passes."""
        dims = [dim for dim in dims if dim.name not in self._values]
        period = self.query.range
        if self.raw_only():
            # The period's days too (for the totals and the chart): the same passes.
            days = (period.start, period.end) not in self._days
            if not dims and not days:
                return
            slices, read = self.raw.read(self.query.scope(), dims, days=days)
            self._values.update(read)
            self._add_imported_values(dims)
            if days:
                found_days = by_day(slices)
                self._add_imported_days(period, found_days)
                self._days[(period.start, period.end)] = found_days
            return
        if not dims:
            return
        parts = self.parts(self.query.range)
        found = rollups.values_of(self.store, self.query.site_id, parts.days, dims)
        extra = [self.open.by_values(parts.whole, dims)] if parts.whole else []
        extra += [self.raw.by_values(edge, dims) for edge in parts.edges]
        for more in extra:
            for name, values in more.items():
                for value, counts in values.items():
                    found[name].setdefault(value, Counts()).add(counts)
        self._values.update(found)
        self._add_imported_values(dims)

    def funnel(self, funnel: Funnel, *, across_visits: bool = False) -> FunnelResult:
        """Return a funnel's steps over the period's matching visits (read raw: which events
        came in which order is in no rollup)."""
        found = self.raw.funnel(self.query.scope(), funnel.steps, across_visits=across_visits)
        steps = tuple(
            Step(goal, visits, visitors, median)
            for goal, (visits, visitors, median) in zip(funnel.steps, found, strict=True)
        )
        return FunnelResult(funnel, steps, across_visits)

    def goal_breakdown(
        self, *, limit: int = 10, offset: int = 0, sort: str = "visitors"
    ) -> Breakdown:
        """Return the goals as a breakdown: per goal, unique conversions as visitors,
        conversions as events, the conversion rate as the share."""
        _check_page(limit, offset, sort)
        rows = [
            Row(
                value=found.goal.name,
                label=found.goal.name,
                visitors=found.current.visitors,
                visits=0,
                pageviews=0,
                events=found.current.conversions,
                bounces=0,
                duration=0.0,
                share=found.current.rate,
            )
            for found in self.goals(compare=False)
        ]
        rows.sort(key=lambda row: (-getattr(row, sort), -row.visitors, row.value))
        return Breakdown(GOAL, rows[offset : offset + limit], len(rows), limit, offset)

    def goals(self, *, compare: bool = True) -> list[GoalResult]:
        """Return each of the site's goals with its conversions in the period (and the
        previous one), in the order the goals were defined.

        Unfiltered, whole closed days come from the goals' rollups (filled in by the writer
        after days close, and for days already closed when a goal is defined: until then a
        goal is read raw), the open days and partial edges from marked rows; filtered,
        everything from marked rows (one statement per goal). See docs/goals.md."""
        goals = self.query.goals
        if not goals:
            return []
        periods = [self.query.range] + ([self.query.range.previous()] if compare else [])
        found = []
        for period, conversions in zip(periods, self._conversions(periods, goals), strict=True):
            visitors = _sum(self.days(period).values()).visitors
            found.append({g.name: GoalMetrics.of(g, conversions[g.name], visitors) for g in goals})
        return [
            GoalResult(g, found[0][g.name], found[1][g.name] if compare else None) for g in goals
        ]

    def _meets_open_days(self, scope: Scope) -> bool:
        """Tell whether a span holds events of days not yet closed (read once a report)."""
        if self._open_from is None:
            self._open_from = self.open.first_row(self.query.site_id) or -1
        return self._open_from != -1 and self._open_from < scope.end_ms

    def _conversions(
        self, periods: list[DateRange], goals: tuple[Goal, ...]
    ) -> list[dict[str, Conversions]]:
        if self.raw_only():
            return [self.raw.goals(self.query.scope(period), goals) for period in periods]
        parts = [self.parts(period) for period in periods]
        rolled = rollups.goal_values(self.store, self.query.site_id, [p.days for p in parts], goals)
        results = []
        for period, part, ready_rows in zip(periods, parts, rolled, strict=True):
            # Goals not rolled up yet (just defined): the whole period raw, in one statement.
            late = [goal for goal in goals if rollups.goal_key(goal) not in ready_rows]
            result = self.raw.goals(self.query.scope(period), late)
            ready = [goal for goal in goals if goal not in late]
            extra = []
            if part.whole and self._meets_open_days(part.whole):
                extra.append(self.open.goals(part.whole, ready, one_pass=True))
            extra += [self.raw.goals(edge, ready) for edge in part.edges]
            for goal in ready:
                total = Conversions()
                total.add(ready_rows[rollups.goal_key(goal)])
                for more in extra:
                    total.add(more[goal.name])
                result[goal.name] = total
            results.append(result)
        return results

    def event_props(self, event: str, *, limit: int = 20) -> list[PropRow]:
        """Return the most frequent property values of custom event `event`."""
        pairs: dict[tuple[str, str], Counts] = {}
        if self.raw_only():
            pairs = self.raw.props(self.query.scope(), event)
        else:
            parts = self.parts(self.query.range)
            prefix = event + rollups.PROP_SEPARATOR
            rolled = rollups.values(
                self.store,
                self.query.site_id,
                parts.days,
                rollups.PROP,
                prefix,
            )
            for joined, counts in rolled.items():
                key, _, value = joined[len(prefix) :].partition(rollups.PROP_SEPARATOR)
                pairs.setdefault((key, value), Counts()).add(counts)
            extra = [self.open.props(parts.whole, event)] if parts.whole else []
            extra += [self.raw.props(edge, event) for edge in parts.edges]
            for more in extra:
                for pair, counts in more.items():
                    pairs.setdefault(pair, Counts()).add(counts)
        rows = [PropRow(key, value, c.visitors, c.events) for (key, value), c in pairs.items()]
        rows.sort(key=lambda r: (-r.events, -r.visitors, r.key, r.value))
        return rows[:limit]


def aggregate(query: ReportQuery, *, compare: bool = True) -> Aggregate:
    """Return the top metrics of the query's period (see Report.aggregate)."""
    return Report(query).aggregate(compare=compare)


def timeseries(query: ReportQuery, name: str = "visitors", *, compare: bool = True) -> Series:
    """Return a metric per bucket of the query's period (see Report.timeseries)."""
    return Report(query).timeseries(name, compare=compare)


def breakdown(
    query: ReportQuery,
    dim: Dimension,
    *,
    limit: int = 10,
    offset: int = 0,
    sort: str = "visitors",
    search: str = "",
) -> Breakdown:
    """Return a ranked page of a dimension's values (see Report.breakdown)."""
    return Report(query).breakdown(dim, limit=limit, offset=offset, sort=sort, search=search)


def event_props(query: ReportQuery, event: str, *, limit: int = 20) -> list[PropRow]:
    """Return a custom event's most frequent property values (see Report.event_props)."""
    return Report(query).event_props(event, limit=limit)


def realtime(site_id: int, now: datetime | None = None, store: Readable | None = None) -> int:
    """Return the visitors with an event in the last five minutes (from the newest rows)."""
    store = store or current_store()
    since = int(((now or datetime.now(UTC)) - REALTIME_WINDOW).timestamp() * 1000)
    r = tables("duckdb" if store.engine == "duckdb" else "clickhouse").recent.c
    found = store.fetch(
        select(func.count(r.visitor.distinct())).where(r.site_id == site_id, r.ts >= since)
    )
    return int(found[0][0] or 0)


def experiment_results(
    site_id: int,
    experiment: Experiment,
    *,
    now: datetime | None = None,
    store: Readable | None = None,
) -> ExperimentResult:
    """Return an experiment's results over its window: from its start to its end, or to now
    while it runs (read raw: who saw which variant first is in no rollup)."""
    now = now or datetime.now(UTC)
    start = experiment.start
    end = min(experiment.end, now) if experiment.end is not None else now
    if start is None or end <= start:
        return judge(experiment, {}, 0, {}, start=start, end=None if start is None else end)
    found, mixed, rows = Queries(store or current_store()).experiment(
        site_id,
        experiment.key,
        int(start.timestamp() * 1000),
        int(end.timestamp() * 1000),
        experiment.goals,
    )
    counted = {
        (variant, experiment.goals[index].name): Counted(*values)
        for (variant, index), values in rows.items()
    }
    return judge(experiment, found, mixed, counted, start=start, end=end)


def first_event(
    site_id: int, store: Readable | None = None, *, imported: bool = False
) -> datetime | None:
    """Return when the site's first stored session started (for the "all time" range); with
    `imported`, the first imported day's start if that is earlier."""
    found = Queries(store or current_store()).first_event(site_id)
    first = None if found is None else datetime.fromtimestamp(found / 1000, UTC)
    if imported:
        from flask_tracking.imports import aggregates

        day = aggregates.first_day(site_id)
        if day is not None:
            # Noon UTC falls on that date in every zone within twelve hours of UTC.
            moment = datetime(day.year, day.month, day.day, 12, tzinfo=UTC)
            first = moment if first is None else min(first, moment)
    return first


def _check_page(limit: int, offset: int, sort: str) -> None:
    if sort not in SORTS:
        raise InvalidQuery(f"Unknown sort {sort!r}; choose one of {', '.join(SORTS)}.")
    if not 1 <= limit <= MAX_LIMIT:
        raise InvalidQuery(f"The limit must be between 1 and {MAX_LIMIT}.")
    if offset < 0:
        raise InvalidQuery("The offset must not be negative.")


def _day_number(day: Any) -> int:
    return int((day - EPOCH.date()).days)


def _sum(counts: Iterable[Counts]) -> Counts:
    total = Counts()
    for one in counts:
        total.add(one)
    return total


def _row(dim: Dimension, value: str, counts: Counts, total_visitors: int) -> Row:
    return Row(
        value=value,
        label=dim.text(value),
        visitors=counts.visitors,
        visits=counts.visits,
        pageviews=counts.pageviews,
        events=counts.events,
        bounces=counts.bounces,
        duration=counts.duration,
        share=100.0 * counts.visitors / total_visitors if total_visitors else 0.0,
    )
