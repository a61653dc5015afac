"""What one dashboard shows, read in one go from the reporting layer (no SQL here)."""

from __future__ import annotations

from bisect import bisect_right
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from flask_tracking.reports import stats
from flask_tracking.reports.dimensions import DIMENSIONS
from flask_tracking.reports.funnels import Funnel
from flask_tracking.reports.params import View
from flask_tracking.reports.ranges import zone_named

# Panels as the page groups them: (title, dimensions shown as tabs of the panel).
PANELS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("Pages", ("page", "entry_page", "exit_page")),
    ("Sources", ("source", "referrer", "utm_source", "utm_medium", "utm_campaign")),
    ("Locations", ("country", "region", "city")),
    ("Devices", ("browser", "os", "device", "screen")),
    ("Custom events", ("event",)),
)
PANEL_ROWS = 10
MAP_ROWS = 300  # every country, for the map


@dataclass(frozen=True, slots=True)
class Card:
    """A top metric as the page shows it."""

    name: str
    label: str
    lower_is_better: bool = False


CARDS = (
    Card("visitors", "Unique visitors"),
    Card("visits", "Visits"),
    Card("pageviews", "Pageviews"),
    Card("views_per_visit", "Views per visit"),
    Card("bounce_rate", "Bounce rate", lower_is_better=True),
    Card("visit_duration", "Visit duration"),
)


@dataclass(frozen=True, slots=True)
class DashboardData:
    """Everything a dashboard page (or its CSV export) needs."""

    view: View
    query: stats.ReportQuery
    aggregate: stats.Aggregate
    series: stats.Series
    labels: list[str]
    breakdowns: dict[str, stats.Breakdown]
    event: str | None
    props: list[stats.PropRow] | None
    realtime: int
    goals: list[stats.GoalResult]
    funnel: stats.FunnelResult | None = None
    cards: tuple[Card, ...] = CARDS
    # The chart's buckets that have begun (later ones are the future: not drawn, not zeros),
    # and whether the last of them is still running (drawn apart: it is not a drop).
    begun: int = 0
    partial: bool = False
    ticks: tuple[str, ...] = ()  # the buckets' names on the chart's axis, shorter than labels

    @property
    def chart(self) -> dict[str, Any]:
        """Return the chart's data for the page's script (future buckets are null)."""
        return {
            "metric": self.series.metric,
            "labels": self.labels,
            "ticks": self.ticks,
            "current": [p.value if i < self.begun else None for i, p in enumerate(self.points)],
            "previous": [p.previous for p in self.points],
            "partial": self.partial,
            "compared": self.query.range.previous().label,
        }

    @property
    def points(self) -> list[stats.Point]:
        """Return the chart's buckets."""
        return self.series.points

    @property
    def countries(self) -> dict[str, int]:
        """Return visitors per country code, for the map."""
        return {row.value: row.visitors for row in self.breakdowns["country"].rows if row.value}


def build(
    view: View,
    query: stats.ReportQuery,
    *,
    rows: int = PANEL_ROWS,
    funnel: tuple[Funnel, bool] | None = None,
    now: datetime | None = None,
) -> DashboardData:
    """Read every panel of the dashboard for `query` (and a funnel, followed across visits
    or not, when one is asked for)."""
    with stats.Report(query) as report:
        report.prefetch(DIMENSIONS[name] for _title, names in PANELS for name in names)
        aggregate = report.aggregate()
        series = report.timeseries(view.metric)
        breakdowns = {
            name: report.breakdown(DIMENSIONS[name], limit=MAP_ROWS if name == "country" else rows)
            for _title, names in PANELS
            for name in names
        }
        props = report.event_props(view.event) if view.event else None
        goals = report.goals()
        found = report.funnel(funnel[0], across_visits=funnel[1]) if funnel else None
    return DashboardData(
        view=view,
        query=query,
        aggregate=aggregate,
        series=series,
        labels=bucket_labels(series, query.timezone),
        breakdowns=breakdowns,
        event=view.event,
        props=props,
        realtime=stats.realtime(query.site_id),
        goals=goals,
        funnel=found,
        ticks=tuple(bucket_labels(series, query.timezone, short=True)),
        **progress(series, query.range.end, now or datetime.now(UTC)),
    )


def progress(series: stats.Series, end: datetime, now: datetime) -> dict[str, Any]:
    """Return how many of the series' buckets have begun at `now` and whether the last of
    them is still running (`end` closes the last bucket)."""
    starts = [point.start for point in series.points]
    begun = bisect_right(starts, now)
    ends = [*starts[1:], end]
    return {"begun": begun, "partial": begun > 0 and now < ends[begun - 1]}


LABELS = {"hour": "%a %H:%M", "day": "%a %d %b", "week": "Week of %d %b", "month": "%b %Y"}
# On the axis, where dozens share the width: "Week of 29 Dec" for every tick ran together.
TICKS = {"hour": "%H:%M", "day": "%d %b", "week": "%d %b", "month": "%b %Y"}


def bucket_labels(series: stats.Series, tz: str, *, short: bool = False) -> list[str]:
    """Return each bucket's name in the site's zone: Mon 14:00, Mon 08 Mar, Week of 02 Mar,
    Mar 2026 (`short`: 14:00, 08 Mar, 02 Mar, Mar 2026 — the axis's ticks)."""
    zone = zone_named(tz)
    format = (TICKS if short else LABELS)[series.bucket]
    return [_local(p.start, zone).strftime(format) for p in series.points]


def _local(moment: datetime, zone: object) -> datetime:
    return moment.astimezone(zone)  # type: ignore[arg-type]
