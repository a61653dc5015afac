"""GET /sites/{site_id}/stats/…: the dashboard's reporting layer (reports/) as JSON.

Periods, time zones and filters are read by reports.params, exactly as the dashboard reads
its URL, so an API answer and the dashboard agree for the same view.
"""

from __future__ import annotations

from datetime import UTC, datetime

from werkzeug.datastructures import MultiDict
from werkzeug.wrappers import Response

from flask_tracking.api.auth import Call
from flask_tracking.api.errors import invalid
from flask_tracking.api.schemas import (
    AggregateQuery,
    AggregateResult,
    BreakdownQuery,
    BreakdownResult,
    BreakdownRow,
    MetricValue,
    PeriodOut,
    PointOut,
    PropertiesQuery,
    PropertiesResult,
    PropertyRow,
    RangeQuery,
    RealtimeResult,
    StatsQuery,
    TimeseriesQuery,
    TimeseriesResult,
)
from flask_tracking.api.spec import api, operation
from flask_tracking.reports import stats
from flask_tracking.reports.dimensions import GOAL, METRICS, InvalidQuery, dimension
from flask_tracking.reports.params import parse_view, query_for
from flask_tracking.reports.ranges import DateRange, InvalidRange
from flask_tracking.tracking.models import Site
from flask_tracking.users.apikeys import READ

TAG = "Stats"


@api.errorhandler(InvalidQuery)
@api.errorhandler(InvalidRange)
def bad_report(error: ValueError) -> Response:
    """A period, filter or option the reporting layer refuses: a 400 with its message."""
    return invalid({"query": str(error)}, str(error)).response()


def report_query(site: Site, query: RangeQuery, now: datetime | None = None) -> stats.ReportQuery:
    """Return the reporting layer's query for the site, period and filters asked for."""
    args: MultiDict[str, str] = MultiDict({"period": query.period})
    if query.from_ is not None:
        args["from"] = query.from_
    if query.to is not None:
        args["to"] = query.to
    if isinstance(query, StatsQuery):
        for text in query.filter:
            args.add("filter", text)
        args["imported"] = "1" if query.imported else "0"
    view = parse_view(args)
    return query_for(site.id, site.timezone, view, now or datetime.now(UTC), site.definitions)


def period_out(preset: str, period: DateRange, timezone: str) -> PeriodOut:
    """Return a resolved period for an answer."""
    return PeriodOut(
        preset=preset, start=period.start, end=period.end, timezone=timezone, bucket=period.bucket
    )


def _filters(q: stats.ReportQuery) -> list[str]:
    return [flt.text for flt in q.filters]


@operation(
    "GET",
    "/sites/{site_id}/stats/aggregate",
    scope=READ,
    tag=TAG,
    query=AggregateQuery,
    response=AggregateResult,
    summary="Top metrics of a period",
)
def aggregate(call: Call, query: AggregateQuery) -> AggregateResult:
    """The chosen metrics of the period (all of them by default) and, unless `compare=false`,
    the previous period of the same length with the change in percent (in points for
    `bounce_rate`). Durations are in seconds."""
    site = call.own_site()
    q = report_query(site, query)
    with stats.Report(q) as report:
        result = report.aggregate(compare=query.compare)
    names: list[str] = list(dict.fromkeys(query.metrics)) or list(METRICS)
    previous = result.previous
    return AggregateResult(
        site_id=site.id,
        period=period_out(query.period, q.range, site.timezone),
        previous_period=period_out("previous", q.range.previous(), site.timezone)
        if query.compare
        else None,
        filters=_filters(q),
        results={
            name: MetricValue(
                value=_number(result.current.value(name)),
                previous=None if previous is None else _number(previous.value(name)),
                change=_rounded(result.change(name)),
            )
            for name in names
        },
    )


@operation(
    "GET",
    "/sites/{site_id}/stats/timeseries",
    scope=READ,
    tag=TAG,
    query=TimeseriesQuery,
    response=TimeseriesResult,
    summary="A metric per hour, day, week or month",
)
def timeseries(call: Call, query: TimeseriesQuery) -> TimeseriesResult:
    """The metric for every bucket of the period, empty buckets included. The bucket follows
    the period's length: hours up to 2 days, days up to 92, weeks up to 366, then months;
    each bucket starts at a local midnight (or hour) of the site's zone, given in UTC."""
    site = call.own_site()
    q = report_query(site, query)
    with stats.Report(q) as report:
        series = report.timeseries(query.metric, compare=query.compare)
    return TimeseriesResult(
        site_id=site.id,
        period=period_out(query.period, q.range, site.timezone),
        filters=_filters(q),
        metric=series.metric,
        bucket=series.bucket,
        points=[PointOut(start=p.start, value=p.value, previous=p.previous) for p in series.points],
    )


@operation(
    "GET",
    "/sites/{site_id}/stats/breakdown",
    scope=READ,
    tag=TAG,
    query=BreakdownQuery,
    response=BreakdownResult,
    summary="One dimension, ranked and paginated",
)
def breakdown(call: Call, query: BreakdownQuery) -> BreakdownResult:
    """The dimension's values ranked by `sort`, `limit` at a time from `offset`. `share` is
    the percentage of the period's visitors; an empty `value` means "not set" (direct traffic,
    unknown country…), and filters on it with `dimension:is:`. With `dimension=goal`, a row
    per goal of the site: `visitors` are its unique conversions, `events` its conversions,
    `share` its conversion rate; filter on one with `goal:is:<name>`."""
    site = call.own_site()
    q = report_query(site, query)
    with stats.Report(q) as report:
        if query.dimension == GOAL.name:
            found = report.goal_breakdown(limit=query.limit, offset=query.offset, sort=query.sort)
        else:
            found = report.breakdown(
                dimension(query.dimension),
                limit=query.limit,
                offset=query.offset,
                sort=query.sort,
                search=query.search,
            )
    following = found.offset + len(found.rows)
    return BreakdownResult(
        site_id=site.id,
        period=period_out(query.period, q.range, site.timezone),
        filters=_filters(q),
        dimension=found.dimension.name,
        total=found.total,
        limit=found.limit,
        offset=found.offset,
        next_offset=following if following < found.total else None,
        results=[
            BreakdownRow(
                value=row.value,
                label=row.label,
                visitors=row.visitors,
                visits=row.visits,
                pageviews=row.pageviews,
                events=row.events,
                bounce_rate=round(row.bounce_rate, 2),
                visit_duration=round(row.visit_duration, 2),
                share=round(row.share, 2),
            )
            for row in found.rows
        ],
    )


@operation(
    "GET",
    "/sites/{site_id}/stats/properties",
    scope=READ,
    tag=TAG,
    query=PropertiesQuery,
    response=PropertiesResult,
    summary="A custom event's property values",
)
def properties(call: Call, query: PropertiesQuery) -> PropertiesResult:
    """The most frequent (property, value) pairs sent with custom event `event`."""
    site = call.own_site()
    q = report_query(site, query)
    with stats.Report(q) as report:
        rows = report.event_props(query.event, limit=query.limit)
    return PropertiesResult(
        site_id=site.id,
        period=period_out(query.period, q.range, site.timezone),
        filters=_filters(q),
        event=query.event,
        results=[
            PropertyRow(property=row.key, value=row.value, visitors=row.visitors, events=row.events)
            for row in rows
        ],
    )


@operation(
    "GET",
    "/sites/{site_id}/stats/realtime",
    scope=READ,
    tag=TAG,
    response=RealtimeResult,
    summary="Current visitors",
)
def realtime(call: Call) -> RealtimeResult:
    """Distinct visitors with an event stored in the last five minutes (never from rollups)."""
    site = call.own_site()
    now = datetime.now(UTC)
    return RealtimeResult(
        site_id=site.id,
        visitors=stats.realtime(site.id, now),
        window_seconds=int(stats.REALTIME_WINDOW.total_seconds()),
        at=now,
    )


def _number(value: float) -> int | float:
    """Counts as integers, rates and durations to 4 decimals."""
    return int(value) if value.is_integer() else round(value, 4)


def _rounded(value: float | None) -> float | None:
    return None if value is None else round(value, 2)
