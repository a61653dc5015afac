"""The raw visits page: a page of stored events, newest first, and 30-day aggregates."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

from sqlalchemy import func, select

from flask_tracking.events import current_store
from flask_tracking.events.sql import intdiv
from flask_tracking.events.store import Readable
from flask_tracking.events.tables import tables
from flask_tracking.reports.export import StoredEvent, read

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
    """A value and how many events had it."""

    value: str
    count: int


@dataclass(frozen=True, slots=True)
class VisitSummary:
    """Aggregates over a window of days ending today (UTC)."""

    start: date
    end: date
    total: int
    per_day: list[tuple[date, int]]
    top_pages: list[Ranked]
    top_referrers: list[Ranked]
    top_locations: list[Ranked]
    top_browsers: list[Ranked]
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
    site_id: int, days: int = 30, now: datetime | None = None, store: Readable | None = None
) -> VisitSummary:
    """Return events per UTC day and top values over the last `days` days."""
    store = store or current_store()
    t = _tables(store)
    now = now or datetime.now(UTC)
    end = now.date()
    start = end - timedelta(days=days - 1)
    since = int(datetime(start.year, start.month, start.day, tzinfo=UTC).timestamp() * 1000)
    e = t.all_events.c
    day = intdiv(e.ts, DAY_MS)
    counts = {
        int(number): int(count)
        for number, count in store.fetch(
            select(day, func.count()).where(e.site_id == site_id, e.ts >= since).group_by(day)
        )
    }
    first = (start - date(1970, 1, 1)).days
    per_day = [(start + timedelta(days=n), counts.get(first + n, 0)) for n in range(days)]
    events = [e.site_id == site_id, e.ts >= since]
    return VisitSummary(
        start=start,
        end=end,
        total=sum(counts.values()),
        per_day=per_day,
        top_pages=_top(store, e.url, "url", events),
        top_referrers=_top(store, e.ref, "url", events),
        top_locations=_top_locations(store, site_id, since),
        top_browsers=_top(store, e.browser, "browser", events),
        dropped=_dropped(store, site_id, first),
    )


def _tables(store: Readable) -> Any:
    return tables("duckdb" if store.engine == "duckdb" else "clickhouse")


def _top(store: Readable, column: Any, dictionary: str, where: list[Any]) -> list[Ranked]:
    """Rank a column's values by how many events have them (grouped by the stored value, then
    turned into text: an engine groups its own values fastest)."""
    grouped = (
        select(column.label("stored"), func.count().label("n"))
        .where(*where, store.encoding.condition(column, dictionary, "is_not", ""))
        .group_by(column)
        .subquery()
    )
    text = store.encoding.text(grouped.c.stored, dictionary)
    rows = store.fetch(
        select(text.label("value"), grouped.c.n).order_by(grouped.c.n.desc(), text).limit(TOP_N)
    )
    return [Ranked(str(value), int(n)) for value, n in rows]


def _top_locations(store: Readable, site_id: int, since: int) -> list[Ranked]:
    """Rank the visits' places: the city, else the country's name (events counted)."""
    t = _tables(store)
    e, s = t.all_events.c, t.all_sessions.c
    text = store.encoding.text
    grouped = (
        select(s.city, s.country_name, func.count().label("n"))
        .join_from(t.all_events, t.all_sessions, (s.site_id == e.site_id) & (s.sid == e.sid))
        .where(e.site_id == site_id, e.ts >= since, s.ts >= since - DAY_MS)
        .group_by(s.city, s.country_name)
        .subquery()
    )
    g = grouped.c
    place = func.coalesce(
        func.nullif(text(g.city, "city"), ""), func.nullif(text(g.country_name, "country_name"), "")
    )
    places = select(place.label("place"), g.n).subquery()
    total = func.sum(places.c.n)
    rows = store.fetch(
        select(places.c.place, total)
        .where(places.c.place.is_not(None))
        .group_by(places.c.place)
        .order_by(total.desc(), places.c.place)
        .limit(TOP_N)
    )
    return [Ranked(str(value), int(n)) for value, n in rows]


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
