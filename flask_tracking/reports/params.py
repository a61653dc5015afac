"""A report's view as URL parameters, both ways: parse them into a query, and build links.

    period=30d | today | … | custom (with from=YYYY-MM-DD&to=YYYY-MM-DD)
    filter=country:is:FR (repeated; combined with AND)
    metric=visitors | visits | pageviews (the chart's)
    event=Signup (whose properties to show)
    funnel=Checkout (which of the site's funnels to show)
    compare=previous | year | custom (with compare_from=…&compare_to=…), match=weekday

The dashboard, its CSV export, shared links and the API all read these the same way.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import date, datetime

from werkzeug.datastructures import MultiDict

from flask_tracking.reports import stats
from flask_tracking.reports.dimensions import (
    CHART_METRICS,
    Filter,
    InvalidQuery,
    bind_goals,
    metric,
    parse_filters,
)
from flask_tracking.reports.goals import Goal
from flask_tracking.reports.ranges import (
    COMPARISONS,
    PRESETS,
    InvalidRange,
    comparison,
    parse_date,
    resolve,
)

DEFAULT_PERIOD = "30d"
DEFAULT_COMPARISON = "previous"
MAX_EVENT_NAME = 120


@dataclass(frozen=True, slots=True)
class View:
    """What the URL asks to see."""

    period: str = DEFAULT_PERIOD
    start: date | None = None
    end: date | None = None
    filters: tuple[Filter, ...] = ()
    metric: str = "visitors"
    event: str | None = None
    funnel: str | None = None
    compare: str = DEFAULT_COMPARISON
    compare_start: date | None = None
    compare_end: date | None = None
    match_weekday: bool = False
    imported: bool = True  # add imported aggregates (when the site has some, and no filter)

    def args(self, **changes: object) -> MultiDict[str, str]:
        """Return the URL parameters of this view with `changes` applied (for links)."""
        view = replace(self, **changes)  # type: ignore[arg-type]
        args: MultiDict[str, str] = MultiDict()
        if view.period != DEFAULT_PERIOD:
            args.add("period", view.period)
        if view.period == "custom" and view.start and view.end:
            args.add("from", view.start.isoformat())
            args.add("to", view.end.isoformat())
        for flt in view.filters:
            args.add("filter", flt.text)
        if view.metric != "visitors":
            args.add("metric", view.metric)
        if view.event:
            args.add("event", view.event)
        if view.funnel:
            args.add("funnel", view.funnel)
        if view.compare != DEFAULT_COMPARISON:
            args.add("compare", view.compare)
        if view.compare == "custom" and view.compare_start and view.compare_end:
            args.add("compare_from", view.compare_start.isoformat())
            args.add("compare_to", view.compare_end.isoformat())
        if view.match_weekday:
            args.add("match", "weekday")
        if not view.imported:
            args.add("imported", "0")
        return args

    def with_filter(self, flt: Filter) -> MultiDict[str, str]:
        """Return the parameters with `flt` added (replacing a filter on the same dimension)."""
        kept = tuple(f for f in self.filters if f.dimension != flt.dimension)
        return self.args(filters=(*kept, flt))

    def without_filter(self, flt: Filter) -> MultiDict[str, str]:
        """Return the parameters with `flt` removed."""
        return self.args(filters=tuple(f for f in self.filters if f != flt))


def parse_view(args: Mapping[str, str] | MultiDict[str, str]) -> View:
    """Read a View from request arguments; raise InvalidQuery or InvalidRange on bad values."""
    multi = args if isinstance(args, MultiDict) else MultiDict(args)
    period = multi.get("period") or DEFAULT_PERIOD
    if period not in PRESETS:
        raise InvalidRange(f"Unknown period {period[:40]!r}; choose one of {', '.join(PRESETS)}.")
    start = end = None
    if period == "custom":
        start_text, end_text = multi.get("from"), multi.get("to")
        if not start_text or not end_text:
            raise InvalidRange("A custom period needs from=YYYY-MM-DD and to=YYYY-MM-DD.")
        start, end = parse_date(start_text), parse_date(end_text)
    chart = metric(multi.get("metric") or "visitors", CHART_METRICS)
    event = multi.get("event") or None
    if event is not None and len(event) > MAX_EVENT_NAME:
        raise InvalidQuery(f"An event name has at most {MAX_EVENT_NAME} characters.")
    funnel = multi.get("funnel") or None
    if funnel is not None and len(funnel) > MAX_EVENT_NAME:
        raise InvalidQuery(f"A funnel's name has at most {MAX_EVENT_NAME} characters.")
    filters = parse_filters(multi.getlist("filter"))
    compare = multi.get("compare") or DEFAULT_COMPARISON
    if compare not in COMPARISONS:
        raise InvalidRange(
            f"Unknown comparison {compare[:40]!r}; choose one of {', '.join(COMPARISONS)}."
        )
    compare_start = compare_end = None
    if compare == "custom":
        first, last = multi.get("compare_from"), multi.get("compare_to")
        if not first or not last:
            raise InvalidRange("A chosen comparison needs compare_from= and compare_to= dates.")
        compare_start, compare_end = parse_date(first), parse_date(last)
    match = multi.get("match") or ""
    if match not in ("", "weekday"):
        raise InvalidQuery("match= is either absent or 'weekday'.")
    imported = multi.get("imported") or "1"
    if imported not in ("0", "1"):
        raise InvalidQuery("imported= is 1 (add imported data, the default) or 0 (leave it out).")
    return View(
        period,
        start,
        end,
        filters,
        chart,
        event,
        funnel,
        compare,
        compare_start,
        compare_end,
        match == "weekday",
        imported == "1",
    )


def query_for(
    site_id: int, timezone: str, view: View, now: datetime, goals: tuple[Goal, ...] = ()
) -> stats.ReportQuery:
    """Return the report query a view means for a site (with these goals) at `now`; a goal
    filter names one of `goals`."""
    first = stats.first_event(site_id, imported=view.imported) if view.period == "all" else None
    period = resolve(view.period, timezone, now, start=view.start, end=view.end, first_event=first)
    period = comparison(
        period,
        timezone,
        view.compare,
        match_weekday=view.match_weekday,
        start=view.compare_start,
        end=view.compare_end,
    )
    return stats.ReportQuery(
        site_id, timezone, period, bind_goals(view.filters, goals), goals, view.imported
    )


__all__ = ["InvalidQuery", "InvalidRange", "View", "parse_view", "query_for"]
