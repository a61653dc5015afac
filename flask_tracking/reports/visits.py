"""The raw events page: a page of stored events, newest first, and the last 30 days as the
dashboard counts them."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

from sqlalchemy import func, select

from flask_tracking.events import current_store
from flask_tracking.events.store import Readable
from flask_tracking.events.tables import tables
from flask_tracking.reports.dimensions import DIMENSIONS
from flask_tracking.reports.export import StoredEvent, read
from flask_tracking.reports.ranges import resolve, zone_named
from flask_tracking.reports.results import Metrics
from flask_tracking.reports.stats import Report, ReportQuery

TOP_N = 10
DAY_MS = 86_400_000


@dataclass(frozen=True, slots=True)
class VisitPage:
    """One page of stored events, newest first."""

    visits: list[StoredEvent]
    page: int
    per_page: int
    total: int

    @property
    def pages(self) -> int:
        """Return the number of pages (at least one)."""
        return max(1, -(-self.total // self.per_page))


@dataclass(frozen=True, slots=True)
class Ranked:
    """A value and its number (the panel says which: pageviews, visits or visitors)."""

    value: str
    count: int


@dataclass(frozen=True, slots=True)
class VisitSummary:
    """The dashboard's "Last N days" in the site's zone, in the dashboard's words and numbers
    (the reporting layer computes them): visitors, visits, pageviews and custom events are
    four different counts, never all "visits"."""

    start: date
    end: date
    timezone: str
    metrics: Metrics
    per_day: list[tuple[date, int]]  # pageviews per local day
    top_pages: list[Ranked]  # by pageviews (custom events are not hits on a page)
    top_referrers: list[Ranked]  # by visits they started
    top_locations: list[Ranked]  # countries by visitors
    top_browsers: list[Ranked]  # by visitors
    dropped: list[Ranked]


def visit_page(site_id: int, page: int, per_page: int, store: Readable | None = None) -> VisitPage:
    """Return page `page` (1-based) of a site's events, newest first."""
    store = store or current_store()
    e = _tables(store).all_events.c
    total = int(store.fetch(select(func.count()).where(e.site_id == site_id))[0][0] or 0)
    page = min(max(page, 1), max(1, -(-total // per_page)))
    rows = read(
        store, site_id, 0, 2**62, limit=per_page, newest_first=True, offset=(page - 1) * per_page
    )
    return VisitPage(rows, page, per_page, total)


def summarise(
    site_id: int,
    timezone: str = "UTC",
    days: int = 30,
    now: datetime | None = None,
    store: Readable | None = None,
) -> VisitSummary:
    """Return the last `days` local days (today included) as the dashboard counts them."""
    store = store or current_store()
    now = now or datetime.now(UTC)
    zone = zone_named(timezone)
    end = now.astimezone(zone).date()
    start = end - timedelta(days=days - 1)
    period = resolve("custom", timezone, now, start=start, end=end)
    with Report(ReportQuery(site_id, timezone, period), store) as report:
        metrics = report.aggregate(compare=False).current
        series = report.timeseries("pageviews", compare=False)

        def top(dim: str, sort: str, number: str) -> list[Ranked]:
            rows = report.breakdown(DIMENSIONS[dim], limit=TOP_N, sort=sort).rows
            return [Ranked(row.label, getattr(row, number)) for row in rows if row.value]

        top_pages = top("page", "pageviews", "pageviews")
        top_referrers = top("referrer", "visits", "visits")
        top_locations = top("country", "visitors", "visitors")
        top_browsers = top("browser", "visitors", "visitors")
    per_day = [(p.start.astimezone(zone).date(), p.value) for p in series.points]
    first_utc_day = int(period.start.timestamp() * 1000) // DAY_MS
    return VisitSummary(
        start=start,
        end=end,
        timezone=timezone,
        metrics=metrics,
        per_day=per_day,
        top_pages=top_pages,
        top_referrers=top_referrers,
        top_locations=top_locations,
        top_browsers=top_browsers,
        dropped=_dropped(store, site_id, first_utc_day),
    )


def _tables(store: Readable) -> Any:
    return tables("duckdb" if store.engine == "duckdb" else "clickhouse")


def _dropped(store: Readable, site_id: int, since: int) -> list[Ranked]:
    """Return how many events were not counted in the window, per reason."""
    d = _tables(store).drops.c
    total = func.sum(d.count).label("n")
    rows = store.fetch(
        select(d.reason, total)
        .where(d.site_id == site_id, d.day >= since)
        .group_by(d.reason)
        .order_by(total.desc(), d.reason)
    )
    return [Ranked(str(reason), int(n)) for reason, n in rows]


@dataclass(frozen=True, slots=True)
class Arrivals:
    """What a new site's setup page watches: stored events and the ones not counted."""

    events: int
    last: datetime | None
    dropped: list[Ranked]


def arrivals(site_id: int, now: datetime | None = None, store: Readable | None = None) -> Arrivals:
    """Return the site's stored events (how many, the newest's time) and, over today and
    yesterday (UTC), the events not counted per reason."""
    store = store or current_store()
    e = _tables(store).all_events.c
    count, last = store.fetch(select(func.count(), func.max(e.ts)).where(e.site_id == site_id))[0]
    now = now or datetime.now(UTC)
    yesterday = int(now.timestamp() * 1000) // DAY_MS - 1
    moment = None if last is None else datetime.fromtimestamp(int(last) / 1000, UTC)
    return Arrivals(int(count or 0), moment, _dropped(store, site_id, yesterday))
