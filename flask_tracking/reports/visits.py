"""The visits report: a page of raw visits and 30-day aggregates."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, func, select

from flask_tracking.extensions import db
from flask_tracking.tracking.analytics import DroppedCount
from flask_tracking.tracking.models import Visit

TOP_N = 10


@dataclass(frozen=True, slots=True)
class VisitPage:
    """One page of visits, newest first."""

    visits: list[Visit]
    page: int
    per_page: int
    total: int

    @property
    def pages(self) -> int:
        """Return the number of pages (at least one)."""
        return max(1, -(-self.total // self.per_page))


@dataclass(frozen=True, slots=True)
class Ranked:
    """A value and how many visits had it."""

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


def visit_page(site_id: int, page: int, per_page: int) -> VisitPage:
    """Return page `page` (1-based) of a site's visits, newest first."""
    total = db.session.scalar(select(func.count()).where(Visit.site_id == site_id)) or 0
    page = min(max(page, 1), max(1, -(-total // per_page)))
    rows = db.session.scalars(
        select(Visit)
        .where(Visit.site_id == site_id)
        .order_by(Visit.date.desc(), Visit.id.desc())
        .limit(per_page)
        .offset((page - 1) * per_page)
    )
    return VisitPage(list(rows), page, per_page, total)


def summarise(site_id: int, days: int = 30, now: datetime | None = None) -> VisitSummary:
    """Return visits per day and top values over the last `days` days."""
    now = now or datetime.now(UTC)
    end = now.date()
    start = end - timedelta(days=days - 1)
    since = datetime(start.year, start.month, start.day, tzinfo=UTC)
    in_window = (Visit.site_id == site_id, Visit.date >= since)
    counts = _per_day(in_window)
    per_day = [
        (start + timedelta(days=n), counts.get(start + timedelta(days=n), 0)) for n in range(days)
    ]
    location = func.coalesce(Visit.city, Visit.country_name)
    return VisitSummary(
        start=start,
        end=end,
        total=sum(counts.values()),
        per_day=per_day,
        top_pages=_top(Visit.url, in_window),
        top_referrers=_top(Visit.referrer, in_window),
        top_locations=_top(location, in_window),
        top_browsers=_top(Visit.browser, in_window),
        dropped=_dropped(site_id, start),
    )


def _dropped(site_id: int, since: date) -> list[Ranked]:
    """Return how many events were not counted in the window, per reason."""
    total = func.sum(DroppedCount.count).label("n")
    rows = db.session.execute(
        select(DroppedCount.reason, total)
        .where(DroppedCount.site_id == site_id, DroppedCount.day >= since)
        .group_by(DroppedCount.reason)
        .order_by(total.desc(), DroppedCount.reason)
    )
    return [Ranked(reason, int(n)) for reason, n in rows]


def _per_day(where: tuple[ColumnElement[bool], ...]) -> dict[date, int]:
    day = func.date(Visit.date)
    rows = db.session.execute(select(day, func.count()).where(*where).group_by(day))
    return {_as_date(value): count for value, count in rows}


def _as_date(value: Any) -> date:
    # SQLite returns 'YYYY-MM-DD' text, PostgreSQL a date.
    return value if isinstance(value, date) else date.fromisoformat(str(value))


def _top(column: Any, where: tuple[ColumnElement[bool], ...]) -> list[Ranked]:
    count = func.count().label("n")
    rows = db.session.execute(
        select(column, count)
        .where(*where, column.is_not(None))
        .group_by(column)
        .order_by(count.desc(), column)
        .limit(TOP_N)
    )
    return [Ranked(str(value), n) for value, n in rows]
