"""Aggregates computed from raw events and sessions: for filtered views and to build rollups.

One set of definitions serves both, so a rollup always says what a raw query would:

- A visit is a session; it belongs to the period in which it started. Bounces and duration
  are its own.
- Pageviews and custom events belong to the period in which they happened.
- Visitors are counted per local day of the site: a day's visitors are the distinct visitor
  ids active that day, and a longer period's are the sum of its days'. Visitor ids are
  re-salted every day for privacy, so nobody can be recognised across days anyway. Within a
  day a visitor counts in the hour of their first matching session. So counts add up across
  hours, days and months, and a rollup always equals the raw query over the same days.

Filters select sessions: a session matches when its first event's context satisfies every
session-level filter and it holds an event satisfying every event-level filter (page, event
name). Event-level breakdowns (pages, custom events) then count the matching sessions' events
that also satisfy the event-level filters of their own kind.

Only names from reports/dimensions.py reach SQL; user values are bound parameters.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, timedelta
from functools import lru_cache
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import BigInteger as SABigInteger
from sqlalchemy import (
    Column,
    ColumnElement,
    MetaData,
    Select,
    Subquery,
    Table,
    and_,
    case,
    cast,
    func,
    insert,
    literal_column,
    select,
)
from sqlalchemy import Float as SAFloat
from sqlalchemy import Integer as SAInteger

from flask_tracking.extensions import db
from flask_tracking.reports.dimensions import NONE, Dimension, Filter
from flask_tracking.reports.ranges import as_utc, zone_named
from flask_tracking.tracking.analytics import Session
from flask_tracking.tracking.models import Visit

PAGEVIEW_NAMES = ("pageview", "PageLoad")  # "PageLoad": the original tutorial's image snippet
SESSION_SPAN = timedelta(days=1)
_EPOCH_DAY = date(1970, 1, 1)  # visitor ids, and so sessions, never outlive a UTC day
EVENTS = Visit.__table__
SESSIONS = Session.__table__
# What event-level panels, charts and properties read from a filtered view's events.
MATERIALISED_EVENT_COLUMNS = (
    "id",
    "site_id",
    "session_id",
    "visitor_id",
    "date",
    "event",
    "pathname",
    "props",
)


@dataclass(slots=True)
class Counts:
    """What a period or a dimension value counts; sums of these are meaningful."""

    visitors: int = 0
    visits: int = 0
    pageviews: int = 0
    events: int = 0
    bounces: int = 0
    duration: float = 0.0

    def add(self, other: Counts) -> None:
        """Add `other` into this one."""
        self.visitors += other.visitors
        self.visits += other.visits
        self.pageviews += other.pageviews
        self.events += other.events
        self.bounces += other.bounces
        self.duration += other.duration


@dataclass(frozen=True, slots=True)
class Scope:
    """A site's events and sessions in [start, end) (aware UTC) that satisfy `filters`."""

    site_id: int
    start: datetime
    end: datetime
    filters: tuple[Filter, ...] = ()
    timezone: str = "UTC"
    # The tables to read: the real ones, or temporary copies holding only what the filters
    # select (see materialise()), in which case `prefiltered` skips re-applying them.
    sessions: Any = SESSIONS
    events: Any = EVENTS
    prefiltered: bool = False
    session_filters: tuple[Filter, ...] = field(init=False)
    event_filters: tuple[Filter, ...] = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(
            self,
            "session_filters",
            tuple(f for f in self.filters if f.dimension.level == "session"),
        )
        object.__setattr__(
            self, "event_filters", tuple(f for f in self.filters if f.dimension.level == "event")
        )

    @property
    def zone(self) -> ZoneInfo:
        """Return the zone whose local days count visitors."""
        return zone_named(self.timezone)


def totals(scope: Scope) -> Counts:
    """Return the scope's visitors, visits, pageviews, custom events, bounces and duration."""
    counts = Counts()
    visits, bounces, duration, visitors = db.session.execute(_session_counts(scope)).one()
    counts.visits, counts.bounces, counts.duration = (
        int(visits),
        int(bounces or 0),
        float(duration or 0),
    )
    counts.visitors = int(visitors or 0)
    pageviews, events = db.session.execute(_event_counts(scope, None)).one()
    counts.pageviews, counts.events = int(pageviews or 0), int(events or 0)
    return counts


def by_value(scope: Scope, dim: Dimension) -> dict[str, Counts]:
    """Return the scope's counts per value of `dim` (an absent value is NONE): one query."""
    return {value: counts for (_day, value), counts in _grouped(scope, dim, per_day=False).items()}


def by_day_and_value(scope: Scope, dim: Dimension) -> dict[tuple[date, str], Counts]:
    """Return the scope's counts per local day and value of `dim` (for building rollups)."""
    return {
        (_EPOCH_DAY + timedelta(days=int(day or 0)), value): counts
        for (day, value), counts in _grouped(scope, dim, per_day=True).items()
    }


def _grouped(scope: Scope, dim: Dimension, *, per_day: bool) -> dict[tuple[Any, str], Counts]:
    result: dict[tuple[Any, str], Counts] = {}

    def at(day: Any, value: Any) -> Counts:
        key = (day, NONE if value is None else str(value))
        return result.setdefault(key, Counts())

    if dim.level == "session":
        table = scope.sessions
        column = table.c[dim.column]
        days = [_day_of_row(table, table.c.started_at, scope)] if per_day else []
        query = _session_counts(scope, *days, column, per_day=per_day).add_columns(
            func.sum(table.c.pageviews)
        )
        for row in db.session.execute(query):
            day = row[0] if per_day else None
            value, visits, bounces, duration, visitors, pageviews = row[len(days) :]
            counts = at(day, value)
            counts.visits, counts.bounces = int(visits), int(bounces or 0)
            counts.duration, counts.pageviews = float(duration or 0), int(pageviews or 0)
            counts.visitors = int(visitors)
        return result
    pageviews_only = dim.name == "page"
    table = scope.events
    column = table.c[dim.column]
    days = [_day_of_row(table, table.c.date, scope)] if per_day else []
    for row in db.session.execute(_events_by(scope, [*days, column], pageviews_only, per_day)):
        day = row[0] if per_day else None
        value, number, visitors = row[len(days) :]
        counts = at(day, value)
        if pageviews_only:
            counts.pageviews = int(number)
        else:
            counts.events = int(number)
        counts.visitors = int(visitors)
    return result


def by_hour(scope: Scope) -> dict[int, Counts]:
    """Return counts per local hour, keyed by the hour's UTC start in epoch seconds.

    Local hours start the zone's UTC offset modulo an hour past UTC ones (30 minutes in
    India), taken at the scope's start: a zone whose DST shift is not whole hours (Lord Howe
    Island) has its hours off by the shift for part of the year.
    """
    result: dict[int, Counts] = {}
    offset = hour_offset(scope.zone, scope.start)

    def at(hour: Any) -> Counts:
        return result.setdefault(int(hour) * 3600 + offset, Counts())

    started = _hour_of_row(scope.sessions, scope.sessions.c.started_at, offset)
    for hour, visits, bounces, duration, _days in db.session.execute(
        _session_counts(scope, started)
    ):
        counts = at(hour)
        counts.visits, counts.bounces, counts.duration = (
            int(visits),
            int(bounces or 0),
            float(duration or 0),
        )
    firsts = _first_sessions(scope, None)
    hour = _hour_of(firsts.c.first, offset)
    for value, visitors in db.session.execute(select(hour, func.count()).group_by(hour)):
        at(value).visitors = int(visitors)
    happened = _hour_of_row(scope.events, scope.events.c.date, offset)
    for value, pageviews, events in db.session.execute(_event_counts(scope, happened)):
        counts = at(value)
        counts.pageviews, counts.events = int(pageviews or 0), int(events or 0)
    return result


def props(scope: Scope, event: str) -> dict[tuple[str, str], Counts]:
    """Return, for custom event `event`, counts per (property, value) of the matching events."""
    result: dict[tuple[str, str], Counts] = {}
    for (_day, key, value), counts in props_by_day(scope, event).items():
        result.setdefault((key, value), Counts()).add(counts)
    return result


def props_by_day(scope: Scope, event: str) -> dict[tuple[date, str, str], Counts]:
    """Return, for custom event `event`, counts per local day, property and value."""
    events = scope.events.c
    query = (
        select(events.visitor_id, events.props, events.date)
        .where(*_event_window(scope), events.event == event, events.props.is_not(None))
        .where(*_event_conditions(scope, "event"))
    )
    if _session_match_needed(scope, "event"):
        query = query.where(scope.events.c.session_id.in_(_matching_session_ids(scope, wide=True)))
    result: dict[tuple[date, str, str], Counts] = {}
    seen: set[tuple[int | None, date, str, str]] = set()
    zone = scope.zone
    for visitor_id, values, moment in db.session.execute(query):
        if not isinstance(values, dict):
            continue
        day = as_utc(moment).astimezone(zone).date()
        for key, value in values.items():
            pair = (str(key), "" if value is None else str(value))
            counts = result.setdefault((day, *pair), Counts())
            counts.events += 1
            if (visitor_id, day, *pair) not in seen:
                seen.add((visitor_id, day, *pair))
                counts.visitors += 1
    return result


def materialise(scope: Scope) -> Scope:
    """Copy what the scope's filters select into temporary tables; return a scope reading them.

    A filtered dashboard asks some twenty questions of the same sessions and events. Selecting
    them once (sessions through their start index, their events through the session index)
    and grouping the small copies is many times cheaper than filtering the whole range again
    for each panel. The copies live in this connection's transaction: drop() them, or the
    rollback at the end of the request does.
    """
    if not scope.filters or scope.prefiltered:
        return scope
    name = f"report_{uuid.uuid4().hex[:16]}"
    # Besides the columns, each copy keeps its rows' local day and epoch second, so that
    # grouping by them costs nothing more per panel.
    extra = [
        Column("local_day", SABigInteger),
        Column("epoch", SABigInteger),
        Column("visitor_day", SABigInteger),
    ]
    sessions = _temporary(f"{name}_s", SESSIONS.columns, [*extra, Column("seconds", SAFloat)])
    events = _temporary(f"{name}_e", [EVENTS.c[n] for n in MATERIALISED_EVENT_COLUMNS], extra)
    connection = db.session.connection()
    for table in (sessions, events):
        table.create(connection)
    started = SESSIONS.c.started_at
    chosen = select(
        *SESSIONS.columns,
        _local_day(started, scope),
        _epoch(started),
        _visitor_day(SESSIONS, started, scope),
        cast(_seconds(started, SESSIONS.c.ended_at), SAFloat),
    ).where(*_session_window(scope, wide=True), *_session_conditions(scope))
    names = [*SESSIONS.columns.keys(), "local_day", "epoch", "visitor_day", "seconds"]
    db.session.execute(insert(sessions).from_select(names, chosen))
    theirs = select(
        *(EVENTS.c[n] for n in MATERIALISED_EVENT_COLUMNS),
        _local_day(EVENTS.c.date, scope),
        _epoch(EVENTS.c.date),
        _visitor_day(EVENTS, EVENTS.c.date, scope),
    ).where(EVENTS.c.session_id.in_(select(sessions.c.id)))
    names = [*MATERIALISED_EVENT_COLUMNS, "local_day", "epoch", "visitor_day"]
    db.session.execute(insert(events).from_select(names, theirs))
    return replace(scope, sessions=sessions, events=events, prefiltered=True)


def drop(scope: Scope) -> None:
    """Drop the temporary tables of a materialised scope (nothing for a plain one)."""
    if scope.prefiltered:
        connection = db.session.connection()
        for table in (scope.events, scope.sessions):
            table.drop(connection, checkfirst=True)


def _temporary(name: str, columns: Any, extra: list[Column[Any]]) -> Table:
    return Table(
        name,
        MetaData(),
        *(Column(column.name, column.type) for column in columns),
        *(Column(column.name, column.type) for column in extra),
        prefixes=["TEMPORARY"],
    )


# -- building blocks ---------------------------------------------------------------------------


def condition(column: Any, flt: Filter) -> ColumnElement[bool]:
    """Return the SQL condition of one filter on `column` (the value is a bound parameter)."""
    if flt.operator == "contains":
        return column.icontains(flt.value, autoescape=True)  # type: ignore[no-any-return]
    if flt.value == NONE:
        return column.is_(None) if flt.operator == "is" else column.is_not(None)  # type: ignore[no-any-return]
    if flt.operator == "is":
        return column == flt.value  # type: ignore[no-any-return]
    return (column != flt.value) | column.is_(None)  # type: ignore[no-any-return]


def _session_window(scope: Scope, *, wide: bool = False) -> tuple[ColumnElement[bool], ...]:
    low = scope.start - SESSION_SPAN if wide else scope.start
    return (
        scope.sessions.c.site_id == scope.site_id,
        scope.sessions.c.started_at >= low,
        scope.sessions.c.started_at < scope.end,
    )


def _event_window(scope: Scope) -> tuple[ColumnElement[bool], ...]:
    return (
        scope.events.c.site_id == scope.site_id,
        scope.events.c.date >= scope.start,
        scope.events.c.date < scope.end,
    )


def _session_conditions(scope: Scope) -> list[ColumnElement[bool]]:
    if scope.prefiltered:
        return []
    conditions = [condition(scope.sessions.c[f.dimension.column], f) for f in scope.session_filters]
    if scope.event_filters:
        holding = select(scope.events.c.session_id).where(
            scope.events.c.site_id == scope.site_id,
            scope.events.c.date >= scope.start - SESSION_SPAN,
            scope.events.c.date < scope.end + SESSION_SPAN,
            *(condition(scope.events.c[f.dimension.column], f) for f in scope.event_filters),
        )
        conditions.append(scope.sessions.c.id.in_(holding))
    return conditions


def _event_conditions(scope: Scope, kind: str) -> list[ColumnElement[bool]]:
    """Event-level filters on the dimension `kind` ("page" or "event") apply to events."""
    return [
        condition(scope.events.c[f.dimension.column], f)
        for f in scope.event_filters
        if f.dimension.name == kind
    ]


def _other_event_filters(scope: Scope, kind: str) -> bool:
    if scope.prefiltered:
        return False
    return any(f.dimension.name != kind for f in scope.event_filters)


def _session_match_needed(scope: Scope, kind: str) -> bool:
    """Tell whether events must be matched to sessions (session filters, or another kind's)."""
    if scope.prefiltered:
        return False
    return bool(scope.session_filters) or _other_event_filters(scope, kind)


def _matching_session_ids(scope: Scope, *, wide: bool) -> Select[Any]:
    return select(scope.sessions.c.id).where(
        *_session_window(scope, wide=wide), *_session_conditions(scope)
    )


def _seconds(start: Any, end: Any) -> ColumnElement[Any]:
    if db.engine.dialect.name == "postgresql":
        return func.extract("epoch", end - start)
    return (func.julianday(end) - func.julianday(start)) * 86400.0


def _int(number: int) -> ColumnElement[Any]:
    """Inline one of our own integers: a bound parameter would make PostgreSQL see a GROUP BY
    expression and its select-list twin as different."""
    return literal_column(str(int(number)), SAInteger)


def _epoch(column: Any) -> ColumnElement[Any]:
    if db.engine.dialect.name == "postgresql":
        return cast(func.floor(func.extract("epoch", column)), SABigInteger)
    return cast(func.strftime("%s", column), SAInteger)


def _hour_of(column: Any, offset: int) -> ColumnElement[Any]:
    """Return the local hour holding `column`, as whole hours since the epoch (shifted)."""
    shifted = _epoch(column) - _int(offset)
    # Integer division: both sides are integers, and every stored moment is after 1970.
    return shifted // _int(3600)


def _hour_of_row(table: Any, column: Any, offset: int) -> ColumnElement[Any]:
    """Like _hour_of, from the copy's precomputed epoch when the table is a filtered copy."""
    if "epoch" in table.c:
        return (table.c.epoch - _int(offset)) // _int(3600)  # type: ignore[no-any-return]
    return _hour_of(column, offset)


def _local_day(column: Any, scope: Scope) -> ColumnElement[Any]:
    """Return the site-local day holding `column`, as whole days since the epoch."""
    changes = offset_changes(scope.zone, scope.start, scope.end)
    offset: ColumnElement[Any] = _int(changes[0][1])
    if len(changes) > 1:
        epoch = _epoch(column)
        offset = case(
            *(
                (epoch < _int(changes[i + 1][0]), _int(changes[i][1]))
                for i in range(len(changes) - 1)
            ),
            else_=_int(changes[-1][1]),
        )
    return (_epoch(column) + offset) // _int(86400)


def _duration(table: Any) -> ColumnElement[Any]:
    """Return a session's seconds, precomputed in a filtered copy."""
    if "seconds" in table.c:
        return table.c.seconds  # type: ignore[no-any-return]
    return cast(_seconds(table.c.started_at, table.c.ended_at), SAFloat)


def _visitor_day(table: Any, column: Any, scope: Scope) -> ColumnElement[Any]:
    """Return a number unique to a (visitor id, local day) pair, to count visitors per day.

    Visitor ids are random 64-bit numbers, so moving one by the day number (towards zero, so
    it never overflows) collides with another pair no more often than two ids would.
    """
    if "visitor_day" in table.c:
        return table.c.visitor_day  # type: ignore[no-any-return]
    day = _day_of_row(table, column, scope)
    visitor = table.c.visitor_id
    return case((visitor > 0, visitor - day), else_=visitor + day)


def _day_of_row(table: Any, column: Any, scope: Scope) -> ColumnElement[Any]:
    """Like _local_day, from the copy's precomputed day when the table is a filtered copy."""
    if "local_day" in table.c:
        return table.c.local_day  # type: ignore[no-any-return]
    return _local_day(column, scope)


def hour_offset(zone: ZoneInfo, moment: datetime) -> int:
    """Return how far past a UTC hour local hours start in `zone` at `moment`, in seconds."""
    return int((moment.astimezone(zone).utcoffset() or timedelta()).total_seconds()) % 3600


@lru_cache(maxsize=256)
def offset_changes(zone: ZoneInfo, start: datetime, end: datetime) -> tuple[tuple[int, int], ...]:
    """Return (from epoch second, UTC offset in seconds) for each offset `zone` has in the range.

    Found by stepping a day at a time and bisecting to the second of each change (DST).
    """

    def offset_at(second: int) -> int:
        moment = datetime.fromtimestamp(second, UTC).astimezone(zone)
        return int((moment.utcoffset() or timedelta()).total_seconds())

    low, high = int(start.timestamp()) - 86400, int(end.timestamp()) + 86400
    changes = [(low, offset_at(low))]
    second = low
    while second < high:
        step = min(second + 86400, high)
        if offset_at(step) != changes[-1][1]:
            before, after = second, step  # the change lies in (before, after]
            while after - before > 1:
                middle = (before + after) // 2
                if offset_at(middle) == changes[-1][1]:
                    before = middle
                else:
                    after = middle
            changes.append((after, offset_at(after)))
        second = step
    return tuple(changes)


def _session_counts(scope: Scope, *keys: Any, per_day: bool = False) -> Select[Any]:
    """visits, bounces, duration, visitor-days [grouped by keys] of the matching sessions.

    Grouped `per_day` (the first key is the local day), visitor ids alone are visitor-days.
    """
    table = scope.sessions
    visitors = table.c.visitor_id if per_day else _visitor_day(table, table.c.started_at, scope)
    columns: list[Any] = [
        func.count(),
        func.sum(case((table.c.is_bounce, 1), else_=0)),
        func.sum(_duration(table)),
        func.count(func.distinct(visitors)),
    ]
    query = select(*keys, *columns).where(*_session_window(scope), *_session_conditions(scope))
    return query.group_by(*keys) if keys else query


def _first_sessions(scope: Scope, key: Any) -> Subquery:
    """Each visitor's first matching session start per local day (and value of `key`)."""
    keys: list[Any] = [
        scope.sessions.c.visitor_id,
        _day_of_row(scope.sessions, scope.sessions.c.started_at, scope).label("local_day"),
        *([key.label("value")] if key is not None else []),
    ]
    return (
        select(*keys, func.min(scope.sessions.c.started_at).label("first"))
        .where(*_session_window(scope), *_session_conditions(scope))
        .group_by(*keys)
        .subquery()
    )


def _is_pageview(scope: Scope) -> ColumnElement[bool]:
    return scope.events.c.event.in_(PAGEVIEW_NAMES)  # type: ignore[no-any-return]


def _event_counts(scope: Scope, key: Any) -> Select[Any]:
    """pageviews, custom events [grouped by key] of the matching sessions' events in scope."""
    pageviews = and_(_is_pageview(scope), *_event_conditions(scope, "page"))
    events = and_(~_is_pageview(scope), *_event_conditions(scope, "event"))
    query = select(
        *([key] if key is not None else []),
        func.sum(case((pageviews, 1), else_=0)),
        func.sum(case((events, 1), else_=0)),
    ).where(*_event_window(scope))
    if scope.filters and not scope.prefiltered:
        query = query.where(scope.events.c.session_id.in_(_matching_session_ids(scope, wide=True)))
    return query.group_by(key) if key is not None else query


def _event_scope(scope: Scope, pageviews_only: bool) -> list[ColumnElement[bool]]:
    kind = "page" if pageviews_only else "event"
    conditions: list[ColumnElement[bool]] = [
        *_event_window(scope),
        _is_pageview(scope) if pageviews_only else ~_is_pageview(scope),
        *_event_conditions(scope, kind),
    ]
    if _session_match_needed(scope, kind):
        conditions.append(scope.events.c.session_id.in_(_matching_session_ids(scope, wide=True)))
    return conditions


def _events_by(
    scope: Scope, keys: list[Any], pageviews_only: bool, per_day: bool = False
) -> Select[Any]:
    """Events (and distinct visitor-days) per key, of the kind the breakdown counts."""
    table = scope.events
    visitor_days = table.c.visitor_id if per_day else _visitor_day(table, table.c.date, scope)
    return (
        select(*keys, func.count(), func.count(func.distinct(visitor_days)))
        .where(*_event_scope(scope, pageviews_only))
        .group_by(*keys)
    )
