"""Every metric defined once, as SQL over the event store's marked sessions and events.

The same functions serve filtered views (over `all_sessions`/`all_events`), the open days of
unfiltered ones, and the rollups of a day being closed (over its staged rows), so a rollup
always says what a raw query says.

- A visit is a session, counted in the period it started; bounces and duration are its own.
- Pageviews and custom events belong to the period they happened in.
- Visitors are counted per site-local day and summed over days (visitor ids are re-salted
  daily, so nothing finer exists). Within a day, a visitor counts where their first matching
  session started. Rows carry `vm` (their visitor-day holds several sessions): where it is
  false a row is its visitor-day's only session, so counting rows counts visitors; where it
  is true (about 1 % of sessions) visitors are a distinct count of `vd`. Pages and custom
  events count, per value, the first row of a visitor-day (`p1`, `n1`) the same way.

Filters select sessions: a session matches when its first event's context satisfies every
session-level filter, it holds an event satisfying every event-level filter (page, event
name), and for each goal filter an event that converts to that goal. Events carry their
session's context, so event panels apply session filters directly; only event filters of
another kind, and goals, need the session lookup.

Goals (reports/goals.py) are conditions on events: a pageview whose page matches a pattern
(the page dictionary's matching codes, found once), or a custom event of a name with an
optional property condition. A goal's unique conversions are its converting visitor-days
(visitors, counted as everywhere else), its total conversions the converting events.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import ColumnElement, and_, func, not_, null, or_, select, tuple_, union_all

from flask_tracking.events.encoding import Operator
from flask_tracking.events.sql import (
    count_where,
    first_by,
    intdiv,
    number,
    prop_key,
    prop_number,
    prop_text,
)
from flask_tracking.events.store import Readable
from flask_tracking.events.tables import tables
from flask_tracking.reports.dimensions import NONE, SESSION_DIMENSIONS, Dimension, Filter
from flask_tracking.reports.experiments import EXPOSURE
from flask_tracking.reports.goals import Goal
from flask_tracking.reports.ranges import zone_named

# The session columns whose panels are summed from the combinations of their values, in
# periods long enough for that to pay: over a month it saves less than the extra statement
# costs (docs/benchmarks.md).
NARROW = tuple(d.column for d in SESSION_DIMENSIONS if d.narrow)
NARROW_SPAN = timedelta(days=32)
SESSION_SPAN = timedelta(days=1)  # sessions never outlive a UTC day: look a day either side
DAY_MS = 86_400_000


@dataclass(slots=True)
class Counts:
    """What a period or a dimension value counts; sums of these are meaningful."""

    visitors: int = 0
    visits: int = 0
    pageviews: int = 0
    events: int = 0
    bounces: int = 0
    duration: float = 0.0  # seconds

    def add(self, other: Counts) -> None:
        """Add `other` into this one."""
        self.visitors += other.visitors
        self.visits += other.visits
        self.pageviews += other.pageviews
        self.events += other.events
        self.bounces += other.bounces
        self.duration += other.duration


@dataclass(slots=True)
class Conversions:
    """What a goal counts in a period; sums of these are meaningful."""

    visitors: int = 0  # unique conversions: converting visitor-days, summed over days
    conversions: int = 0  # converting events
    revenue: float = 0.0  # the sum of the revenue property over them
    valued: int = 0  # how many of them carried a numeric revenue property

    def add(self, other: Conversions) -> None:
        """Add `other` into this one."""
        self.visitors += other.visitors
        self.conversions += other.conversions
        self.revenue += other.revenue
        self.valued += other.valued


@dataclass(frozen=True)
class Scope:
    """A site's sessions and events in [start, end) (aware UTC) that satisfy `filters`."""

    site_id: int
    start: datetime
    end: datetime
    filters: tuple[Filter, ...] = ()
    timezone: str = "UTC"
    session_filters: tuple[Filter, ...] = field(init=False)
    event_filters: tuple[Filter, ...] = field(init=False)
    goals: tuple[Goal, ...] = field(init=False)  # of the goal filters, bound to definitions

    def __post_init__(self) -> None:
        sessions = tuple(f for f in self.filters if f.dimension.level == "session")
        object.__setattr__(self, "session_filters", sessions)
        object.__setattr__(
            self, "event_filters", tuple(f for f in self.filters if f.dimension.level == "event")
        )
        goals = []
        for flt in self.filters:
            if flt.dimension.level == "goal":
                if flt.goal is None:
                    raise ValueError(f"the goal filter {flt.text!r} is not bound to a goal")
                goals.append(flt.goal)
        object.__setattr__(self, "goals", tuple(goals))

    @property
    def start_ms(self) -> int:
        """Return the start in epoch milliseconds."""
        return int(self.start.timestamp() * 1000)

    @property
    def end_ms(self) -> int:
        """Return the end in epoch milliseconds."""
        return int(self.end.timestamp() * 1000)

    @property
    def zone(self) -> ZoneInfo:
        """Return the site's zone."""
        return zone_named(self.timezone)


class Queries:
    """The metric queries of one store, over its live tables or a closing day's staged ones."""

    def __init__(
        self,
        store: Readable,
        sessions: Any = None,
        events: Any = None,
        *,
        known: dict[tuple[str, Operator, str], Any] | None = None,
    ) -> None:
        t = tables("duckdb" if store.engine == "duckdb" else "clickhouse")
        self.store = store
        self.encoding = store.encoding
        self.sessions = sessions if sessions is not None else t.all_sessions
        self.events = events if events is not None else t.all_events
        # What filters' and goals' values stand for (codes), found once; shareable.
        self.known: dict[tuple[str, Operator, str], Any] = {} if known is None else known

    # -- conditions -----------------------------------------------------------------------

    def condition(self, table: Any, flt: Filter) -> ColumnElement[bool]:
        """Return the SQL condition of one filter on a table's column for its dimension: any
        of its values (is, contains), or none of them (is not, does not contain)."""
        dim = flt.dimension
        operator: Operator = "contains" if flt.operator in ("contains", "not_contains") else "is"
        each = [self.compare(table, dim.column, dim.dictionary, operator, v) for v in flt.values]
        matched = each[0] if len(each) == 1 else or_(*each)
        return not_(matched) if flt.negative else matched

    def compare(
        self, table: Any, column: str, dictionary: str, operator: Operator, value: str
    ) -> ColumnElement[bool]:
        """Return the SQL condition `column operator value` on a dimension column."""
        key = (dictionary, operator, value)
        if key not in self.known:
            self.known[key] = self.encoding.resolve(self.store, *key)
        return self.encoding.condition(table.c[column], *key, self.known[key])

    def converts(self, goal: Goal) -> ColumnElement[bool]:
        """Return the condition of an event converting to `goal`."""
        e = self.events
        if goal.kind == "page":
            return and_(e.c.pv, self.compare(e, "page", "page", "matches", goal.regex))
        where = [~e.c.pv, self.compare(e, "name", "name", "is", goal.event)]
        if goal.prop_key:
            key = prop_key(self.store.engine, goal.prop_key)
            where.append(prop_text(e.c.props, key) == goal.prop_value)
        return and_(*where)

    def _sessions_with(self, scope: Scope, *conditions: ColumnElement[bool]) -> Any:
        """Sessions (of the scope's site, starting near it) holding an event that satisfies
        every condition."""
        e = self.events.c
        return select(e.sid).where(
            e.site_id == scope.site_id,
            e.ts >= int((scope.start - SESSION_SPAN).timestamp() * 1000),
            e.ts < int((scope.end + SESSION_SPAN).timestamp() * 1000),
            *conditions,
        )

    def _matching_sessions(self, scope: Scope) -> Any:
        """Sessions holding an event that satisfies every event-level filter."""
        return self._sessions_with(
            scope, *(self.condition(self.events, f) for f in scope.event_filters)
        )

    def _converted(self, scope: Scope, sid: Any) -> list[ColumnElement[bool]]:
        """One condition per goal filter: the session converted to that goal."""
        return [sid.in_(self._sessions_with(scope, self.converts(g))) for g in scope.goals]

    def session_where(self, scope: Scope) -> list[ColumnElement[bool]]:
        """Sessions that started in the scope and match its filters."""
        s = self.sessions.c
        where = [s.site_id == scope.site_id, s.ts >= scope.start_ms, s.ts < scope.end_ms]
        where += [self.condition(self.sessions, f) for f in scope.session_filters]
        if scope.event_filters:
            where.append(s.sid.in_(self._matching_sessions(scope)))
        return where + self._converted(scope, s.sid)

    def event_where(self, scope: Scope, kind: str | None) -> list[ColumnElement[bool]]:
        """Events in the scope whose session matches; of one kind ("page" for pageviews,
        "event" for custom events) satisfying that kind's own filters, or of both kinds."""
        e = self.events.c
        where = [e.site_id == scope.site_id, e.ts >= scope.start_ms, e.ts < scope.end_ms]
        where += [self.condition(self.events, f) for f in scope.session_filters]
        if kind is not None:
            where.append(e.pv if kind == "page" else ~e.pv)
            where += [
                self.condition(self.events, f)
                for f in scope.event_filters
                if f.dimension.name == kind
            ]
        # Only an event filter of another kind says something about the session, not the event.
        if any(kind is None or f.dimension.name != kind for f in scope.event_filters):
            where.append(e.sid.in_(self._matching_sessions(scope)))
        return where + self._converted(scope, e.sid)

    # -- queries --------------------------------------------------------------------------

    def totals(self, scope: Scope) -> Counts:
        """Return the scope's visitors, visits, pageviews, custom events, bounces, duration."""
        result = self.sessions_by(scope, [])
        counts = result.get((), Counts())
        found = self.counts_by(scope, [])
        if () in found:
            counts.pageviews, counts.events = found[()]
        return counts

    def own_filters(self, scope: Scope, kind: str) -> list[ColumnElement[bool]]:
        """The event filters on a kind's own dimension ("page" or "event")."""
        return [
            self.condition(self.events, f) for f in scope.event_filters if f.dimension.name == kind
        ]

    def counts_by(self, scope: Scope, keys: list[Any]) -> dict[tuple[Any, ...], tuple[int, int]]:
        """Return (pageviews, custom events) per key: events of matching sessions, pageviews
        satisfying the page filters, custom events the event-name filters."""
        e = self.events.c
        pageviews = and_(e.pv, *self.own_filters(scope, "page"))
        events = and_(~e.pv, *self.own_filters(scope, "event"))
        rows = self.store.fetch(
            select(*keys, count_where(pageviews), count_where(events))
            .where(*self.event_where(scope, None))
            .group_by(*keys)
        )
        return {tuple(row[:-2]): (int(row[-2] or 0), int(row[-1] or 0)) for row in rows}

    def sessions_by(self, scope: Scope, keys: list[Any]) -> dict[tuple[Any, ...], Counts]:
        """Return visits, bounces, duration, sessions' pageviews and visitors per key."""
        return self.sessions_by_each(scope, [keys])[0]

    def sessions_by_each(
        self, scope: Scope, key_sets: list[list[Any]]
    ) -> list[dict[tuple[Any, ...], Counts]]:
        """Return what `sessions_by` returns for each list of keys, reading the sessions once
        for all of them (GROUPING SETS): a dashboard's session panels cost one pass.

        Over more than a month (NARROW_SPAN), when the sessions are selected by their own
        columns only, the panels of dimensions with few values anywhere (NARROW) are counted
        from the sessions grouped first by the combination of those dimensions — tens of
        thousands of rows where a year holds a million sessions — and their sets summed from
        that; the others (pages, referrers, places, UTM tags, days) from the sessions
        directly. Selected by their events (a page filter, a goal) they are read once, in one
        statement: the lookup of matching sessions costs more than the combinations save."""
        s = self.sessions.c
        where = self.session_where(scope)
        result: list[dict[tuple[Any, ...], Counts]] = [{} for _ in key_sets]
        narrow_columns = {id(s[name]) for name in NARROW}
        narrow = [
            i for i, keys in enumerate(key_sets) if len(keys) == 1 and id(keys[0]) in narrow_columns
        ]
        if (
            len(narrow) < 2
            or scope.event_filters
            or scope.goals
            or scope.end - scope.start < NARROW_SPAN
        ):
            narrow = []
        direct = [i for i in range(len(key_sets)) if i not in narrow]
        aggregates = [
            func.count(),
            count_where(s.bounce),
            func.sum(s.ms),
            func.sum(s.pageviews),
            count_where(~s.vm),
        ]
        passes: list[tuple[list[int], list[list[Any]], list[Any], list[ColumnElement[bool]]]] = []
        if narrow:
            columns = [key_sets[i][0] for i in narrow]
            names = ["visits", "bounces", "ms", "pageviews", "single"]
            combinations = (
                select(*columns, *(a.label(n) for a, n in zip(aggregates, names, strict=True)))
                .where(*where)
                .group_by(*columns)
                .subquery()
            )
            c = combinations.c
            passes.append(
                (narrow, [[c[k.name]] for k in columns], [func.sum(c[n]) for n in names], [])
            )
        if direct:
            passes.append((direct, [key_sets[i] for i in direct], aggregates, where))
        for places, sets, sums, condition in passes:
            for index, key, (visits, bounces, ms, pageviews, single) in self._grouped(
                sets, sums, condition
            ):
                result[places[index]][key] = Counts(
                    visitors=int(single or 0),
                    visits=int(visits or 0),
                    pageviews=int(pageviews or 0),
                    bounces=int(bounces or 0),
                    duration=float(ms or 0) / 1000,
                )
        for index, key, (visitors,) in self._grouped(
            key_sets, [func.count(s.vd.distinct())], [*where, s.vm]
        ):
            result[index].setdefault(key, Counts()).visitors += int(visitors)
        return result

    def _grouped(
        self, key_sets: list[list[Any]], aggregates: list[Any], where: list[ColumnElement[bool]]
    ) -> Iterator[tuple[int, tuple[Any, ...], tuple[Any, ...]]]:
        """Run `aggregates` over the rows `where` selects, grouped by each list of keys in turn,
        in one statement; yield (which list, its key values, the aggregates) per group."""
        if len(key_sets) == 1:
            [keys] = key_sets
            statement = select(*keys, *aggregates).where(*where).group_by(*keys)
            for row in self.store.fetch(statement):
                yield 0, tuple(row[: len(keys)]), tuple(row[len(keys) :])
            return
        # Each set's keys, once: a key two sets share is one column of the statement.
        columns: list[Any] = []
        places: list[list[int]] = []
        for keys in key_sets:
            places.append([])
            for key in keys:
                found = next((i for i, c in enumerate(columns) if c is key), None)
                if found is None:
                    columns.append(key)
                    found = len(columns) - 1
                places[-1].append(found)
        width = len(columns)
        # GROUPING(all columns) has a bit per column, the first the highest, set where the
        # column is not a key of the row's set: it tells the sets apart.
        masks = {
            sum(1 << (width - 1 - i) for i in range(width) if i not in set(at)): index
            for index, at in enumerate(places)
        }
        if len(masks) != len(key_sets):
            raise ValueError("two sets of keys are the same")
        statement = (
            select(*columns, func.grouping(*columns), *aggregates)
            .where(*where)
            .group_by(func.grouping_sets(*(tuple_(*keys) for keys in key_sets)))
        )
        for row in self.store.fetch(statement):
            index = masks[int(row[width])]
            yield index, tuple(row[i] for i in places[index]), tuple(row[width + 1 :])

    def by_value(self, scope: Scope, dim: Dimension, *, slices: bool = False) -> dict[Any, Counts]:
        """Return counts per value of `dim` (NONE when not set); with `slices`, per (UTC day,
        local day, value), the keys of rollups."""
        return self.by_values(scope, [dim], slices=slices)[dim.name]

    def by_values(
        self, scope: Scope, dims: Iterable[Dimension], *, slices: bool = False
    ) -> dict[str, dict[Any, Counts]]:
        """Return `by_value` of each dimension, by name (see `read`)."""
        return self.read(scope, dims, slices=slices)[1]

    def read(
        self, scope: Scope, dims: Iterable[Dimension], *, slices: bool = False, days: bool = False
    ) -> tuple[dict[tuple[int, int], Counts], dict[str, dict[Any, Counts]]]:
        """Return, with `days`, what `by_slice` returns, and `by_value` of each dimension by
        name — together, as a dashboard wants them, in one pass over the sessions and one over
        the events (and one over each table's rows of visitor-days with several sessions).
        """
        dims = list(dims)
        found: dict[str, dict[tuple[Any, ...], Counts]] = {}
        session_dims = [d for d in dims if d.level == "session"]
        event_dims = [d for d in dims if d.level == "event"]
        s_slice, e_slice = slice_keys(self.sessions), slice_keys(self.events)
        extra = s_slice if slices else []
        key_sets = [[*extra, self.sessions.c[d.column]] for d in session_dims]
        if days:
            key_sets.append(s_slice)
        sessions = self.sessions_by_each(scope, key_sets) if key_sets else []
        found.update((d.name, per_key) for d, per_key in zip(session_dims, sessions, strict=False))
        extra = e_slice if slices else []
        kinds = [(_kind(d), [*extra, self.events.c[d.column]]) for d in event_dims]
        panels, counts = self.events_by_each(scope, kinds, e_slice if days else None)
        found.update((d.name, per_key) for d, per_key in zip(event_dims, panels, strict=True))
        by_slice: dict[tuple[int, int], Counts] = {}
        if days:
            for (utc, day), day_counts in sessions[-1].items():
                by_slice.setdefault((int(utc), int(day)), Counts()).add(day_counts)
            for (utc, day), (pageviews, events) in counts.items():
                day_counts = by_slice.setdefault((int(utc), int(day)), Counts())
                day_counts.pageviews, day_counts.events = pageviews, events
        return by_slice, self._named(dims, found, slices=slices)

    def _named(
        self,
        dims: list[Dimension],
        found: dict[str, dict[tuple[Any, ...], Counts]],
        *,
        slices: bool,
    ) -> dict[str, dict[Any, Counts]]:
        """Key each dimension's counts by the text of its value (one lookup per dictionary)."""
        codes: dict[str, set[Any]] = {}
        for dim in dims:
            codes.setdefault(dim.dictionary, set()).update(key[-1] for key in found[dim.name])
        texts = self.encoding.texts(self.store, codes)
        result: dict[str, dict[Any, Counts]] = {}
        for dim in dims:
            values, into = texts[dim.dictionary], result.setdefault(dim.name, {})
            for key, counts in found[dim.name].items():
                text = values.get(key[-1], NONE)
                target = (int(key[0]), int(key[1]), text) if slices else text
                into.setdefault(target, Counts()).add(counts)
        return result

    def events_by_each(
        self, scope: Scope, kinds: list[tuple[str, list[Any]]], days: list[Any] | None = None
    ) -> tuple[list[dict[tuple[Any, ...], Counts]], dict[tuple[Any, ...], tuple[int, int]]]:
        """Return, for each (kind, keys), pageviews (kind "page") or custom events ("event")
        and their visitors per key, and given `days` keys, (pageviews, custom events) per key
        of `days`: the events read once for all (and once more for the visitor-days with
        several sessions).

        Visitors per key count each visitor-day's first row of the key: grouped by page (or
        event name), that is `p1` (`n1`). One `WHERE` serves every kind: the events of the
        matching sessions (`event_where` of no kind); each kind counts its own rows (and the
        event filters on its own dimension) with `FILTER`.
        """
        e = self.events.c
        where = self.event_where(scope, None)
        own = {
            "page": and_(e.pv, *self.own_filters(scope, "page")),
            "event": and_(~e.pv, *self.own_filters(scope, "event")),
        }
        aggregates = [
            count_where(own["page"]),
            count_where(own["event"]),
            count_where(and_(own["page"], e.p1, ~e.vm)),
            count_where(and_(own["event"], e.n1, ~e.vm)),
        ]
        key_sets = [keys for _kind, keys in kinds] + ([days] if days is not None else [])
        panels: list[dict[tuple[Any, ...], Counts]] = [{} for _ in kinds]
        counts: dict[tuple[Any, ...], tuple[int, int]] = {}
        for index, key, row in self._grouped(key_sets, aggregates, where) if key_sets else ():
            pageviews, events, first_pages, first_events = (int(n or 0) for n in row)
            if index == len(kinds):
                counts[key] = (pageviews, events)
            elif kinds[index][0] == "page" and pageviews:
                panels[index][key] = Counts(visitors=first_pages, pageviews=pageviews)
            elif kinds[index][0] == "event" and events:
                panels[index][key] = Counts(visitors=first_events, events=events)
        if kinds:
            several = [[e.pv, *keys] for _kind, keys in kinds]
            vm_where = [*where, e.vm, or_(own["page"], own["event"])]
            for index, (pv, *values), (visitors,) in self._grouped(
                several, [func.count(e.vd.distinct())], vm_where
            ):
                if bool(pv) == (kinds[index][0] == "page"):
                    panels[index].setdefault(tuple(values), Counts()).visitors += int(visitors)
        return panels, counts

    def goals(
        self, scope: Scope, goals: Iterable[Goal], *, one_pass: bool = False
    ) -> dict[str, Conversions]:
        """Return each goal's conversions among the scope's events, by goal name, in one
        statement: a UNION ALL of `goal_slices`' statement per goal (without slices), or,
        `one_pass`, one pass whose aggregates pick each goal's rows with FILTER — slower on
        many rows, but planned several times faster (for the few rows of the open days)."""
        goals = list(goals)
        if not goals:
            return {}
        rows: list[tuple[Any, ...]]
        if one_pass:
            [row] = self.store.fetch(self._goals_in_one_pass(scope, goals))
            rows = [(i, *row[4 * i : 4 * i + 4]) for i in range(len(goals))]
        else:
            branches: list[Any] = [
                self._goal_statement(scope, goal, [], tag=index) for index, goal in enumerate(goals)
            ]
            statement: Any = branches[0]
            if len(branches) > 1:
                statement = union_all(*branches)
            rows = self.store.fetch(statement)
        result = {goal.name: Conversions() for goal in goals}
        for index, conversions, visitors, revenue, valued in rows:
            found = result[goals[int(index)].name]
            found.add(Conversions(int(visitors or 0), int(conversions or 0)))
            found.revenue += float(revenue or 0)
            found.valued += int(valued or 0)
        return result

    def _goals_in_one_pass(self, scope: Scope, goals: list[Goal]) -> Any:
        """One pass over the scope's events: each goal's condition (and revenue value)
        written once, as a column of a subquery the aggregates pick rows by — a page goal's
        codes repeated in every aggregate made a statement DuckDB took 15 ms to plan."""
        e = self.events.c
        columns: list[Any] = [e.vd]
        for index, goal in enumerate(goals):
            columns.append(self.converts(goal).label(f"g{index}"))
            if goal.has_revenue:
                amount = prop_number(e.props, prop_key(self.store.engine, goal.revenue_prop))
                columns.append(amount.label(f"r{index}"))
        rows = select(*columns).where(*self.event_where(scope, None)).subquery("converting")
        c = rows.c
        aggregates: list[Any] = []
        for index, goal in enumerate(goals):
            converts = c[f"g{index}"]
            value: Any = c[f"r{index}"] if goal.has_revenue else null()
            aggregates += [
                func.count().filter(converts),
                func.count(c.vd.distinct()).filter(converts),
                func.sum(value).filter(converts),
                func.count(value).filter(converts),
            ]
        return select(*aggregates).where(or_(*(c[f"g{i}"] for i in range(len(goals)))))

    def _goal_statement(
        self, scope: Scope, goal: Goal, keys: list[Any], *, tag: int | None = None
    ) -> Any:
        """SELECT [tag,] keys, conversions, visitors[, revenue, conversions with a value] of a
        goal's converting events in the scope, grouped by the keys; with a `tag` (a number
        telling UNION ALL branches apart) the revenue columns are there for every goal."""
        e = self.events.c
        aggregates: list[Any] = [func.count(), func.count(e.vd.distinct())]
        if goal.has_revenue:
            value = prop_number(e.props, prop_key(self.store.engine, goal.revenue_prop))
            aggregates += [func.sum(value), func.count(value)]
        elif tag is not None:
            aggregates += [null(), null()]
        tags = [] if tag is None else [number(tag)]
        statement = select(*tags, *keys, *aggregates).where(
            *self.event_where(scope, None), self.converts(goal)
        )
        return statement.group_by(*keys)

    def goal_slices(self, scope: Scope, goal: Goal) -> dict[tuple[int, int], Conversions]:
        """Return a goal's conversions among the scope's events per (UTC day, local day), the
        keys of rollups.

        A statement per goal whose WHERE keeps only that goal's rows (pages by their codes,
        found once; events by name, then the property) measured several times faster than
        one statement picking each goal's rows with FILTER from the union of them."""
        result: dict[tuple[int, int], Conversions] = {}
        for row in self.store.fetch(self._goal_statement(scope, goal, slice_keys(self.events))):
            key = (int(row[0]), int(row[1]))
            conversions, visitors, *revenue = row[2:]
            if not conversions:
                continue
            found = result.setdefault(key, Conversions())
            found.add(Conversions(int(visitors or 0), int(conversions)))
            if revenue:
                found.revenue += float(revenue[0] or 0)
                found.valued += int(revenue[1] or 0)
        return result

    def funnel(
        self, scope: Scope, steps: tuple[Goal, ...], *, across_visits: bool = False
    ) -> list[tuple[int, int, float | None]]:
        """Return, per step of a funnel, the visits (or, `across_visits`, visitor-days) that
        reached it in order, their visitors, and the median seconds from the previous step
        (reports/funnels.py says what "in order" means).

        The events of the scope's matching visits that convert to any step, each with a
        column per step, are read once; step k is then, per visit, the first such event of
        step k after (in (time, arrival) order) the one that reached step k-1: a chain of
        small GROUP BYs, one per step, in one statement."""
        e, s = self.events.c, self.sessions.c
        visits = select(s.sid, s.vd).where(*self.session_where(scope)).subquery("visits")
        unit = visits.c.vd if across_visits else visits.c.sid
        joined = self.events.join(visits, e.sid == visits.c.sid)
        window = [
            e.site_id == scope.site_id,
            e.ts >= scope.start_ms,
            e.ts < int((scope.end + SESSION_SPAN).timestamp() * 1000),
        ]
        # The entry: each unit's first event of step 1, grouped straight from the events.
        # (The first step is often the broad one — a section of the site —: its events are
        # never materialised; the later steps' few are, and joined to the units that entered.)
        entry = (
            select(
                unit.label("unit"),
                visits.c.vd.label("vd"),
                func.min(e.ts).label("ts"),
                first_by(e.eid, e.ts, e.eid).label("eid"),
            )
            .select_from(joined)
            .where(*window, self.converts(steps[0]))
            .group_by(unit, visits.c.vd)
            .cte("step0")
        )
        columns: list[Any] = [unit.label("unit"), visits.c.vd.label("vd"), e.ts, e.eid]
        columns += [self.converts(goal).label(f"s{index}") for index, goal in enumerate(steps)]
        rows = (
            select(*columns)
            .select_from(joined)
            .where(*window, or_(*(self.converts(goal) for goal in steps[1:])))
            .cte("funnel_events")
        )
        c = rows.c
        reached: list[Any] = [entry]
        for index in range(1, len(steps)):
            before = reached[-1].c
            keys = [c.unit, c.vd, before.ts.label("before")]
            step = (
                select(
                    *keys,
                    func.min(c.ts).label("ts"),
                    first_by(c.eid, c.ts, c.eid).label("eid"),
                )
                .select_from(rows.join(reached[-1], c.unit == before.unit))
                .where(
                    c[f"s{index}"],
                    or_(c.ts > before.ts, and_(c.ts == before.ts, c.eid > before.eid)),
                )
                .group_by(*keys)
                .cte(f"step{index}")
            )
            reached.append(step)
        branches: list[Any] = []
        for index, step in enumerate(reached):
            t = step.c
            units = func.count(t.unit.distinct()) if across_visits else func.count()
            waited = func.median(t.ts - t.before) if index else null()
            branches.append(select(number(index), units, func.count(t.vd.distinct()), waited))
        found = {int(row[0]): row[1:] for row in self.store.fetch(union_all(*branches))}
        return [
            (
                int(found[i][0] or 0),
                int(found[i][1] or 0),
                None if found[i][2] is None else float(found[i][2]) / 1000,
            )
            for i in range(len(steps))
        ]

    def experiment(
        self, site_id: int, key: str, start_ms: int, end_ms: int, goals: tuple[Goal, ...]
    ) -> tuple[dict[str, int], int, dict[tuple[str, int], tuple[int, int, float]]]:
        """Return an experiment's exposed visitors per variant, the visitors exposed to more
        than one variant (left out), and per (variant, goal index) the exposed visitors who
        converted at or after their first exposure, the conversions and their revenue — all
        within [start_ms, end_ms), in one statement (reports/experiments.py says why so).

        Exposures are the custom events named EXPOSURE whose `experiment` property is the
        key; a visitor (visitor-day) is one row of the `exposed` CTE, with its variant, how
        many variants it saw and when it first saw one."""
        e = self.events.c
        engine = self.store.engine
        variant = prop_text(e.props, prop_key(engine, "variant"))
        window = [e.site_id == site_id, e.ts >= start_ms, e.ts < end_ms]
        exposed = (
            select(
                e.vd,
                func.min(variant).label("variant"),
                func.count(variant.distinct()).label("variants"),
                func.min(e.ts).label("first"),
            )
            .where(
                *window,
                ~e.pv,
                self.compare(self.events, "name", "name", "is", EXPOSURE),
                prop_text(e.props, prop_key(engine, "experiment")) == key,
                variant.is_not(None),
            )
            .group_by(e.vd)
            .cte("exposed")
        )
        x = exposed.c
        branches: list[Any] = [
            select(number(-1), x.variant, func.count(), func.count(), number(0))
            .where(x.variants == 1)
            .group_by(x.variant),
            select(number(-2), null(), func.count(), func.count(), number(0)).where(x.variants > 1),
        ]
        for index, goal in enumerate(goals):
            value: Any = number(0)
            if goal.has_revenue:
                value = func.coalesce(
                    func.sum(prop_number(e.props, prop_key(engine, goal.revenue_prop))), 0
                )
            branches.append(
                select(number(index), x.variant, func.count(e.vd.distinct()), func.count(), value)
                .select_from(self.events.join(exposed, and_(e.vd == x.vd, e.ts >= x.first)))
                .where(*window, x.variants == 1, self.converts(goal))
                .group_by(x.variant)
            )
        arms: dict[str, int] = {}
        mixed = 0
        counted: dict[tuple[str, int], tuple[int, int, float]] = {}
        for tag, name, visitors, rows, revenue in self.store.fetch(union_all(*branches)):
            if int(tag) == -1:
                arms[str(name)] = int(visitors)
            elif int(tag) == -2:
                mixed = int(visitors or 0)
            else:
                counted[(str(name), int(tag))] = (int(visitors), int(rows), float(revenue or 0))
        return arms, mixed, counted

    def texts(self, dictionary: str, values: Iterable[Any]) -> dict[Any, str]:
        """Return the text of each stored value (a code in DuckDB, the text itself elsewhere)."""
        return self.encoding.texts(self.store, {dictionary: values})[dictionary]

    def by_day(self, scope: Scope) -> dict[int, Counts]:
        """Return counts per site-local day."""
        return by_day(self.by_slice(scope))

    def by_slice(self, scope: Scope) -> dict[tuple[int, int], Counts]:
        """Return counts per (UTC day, local day): a visitor-day lies in one UTC day, so local
        days' counts are sums of their slices'."""
        return self.read(scope, [], days=True)[0]

    def by_hour(self, scope: Scope) -> dict[int, Counts]:
        """Return counts per local hour, keyed by the hour's UTC start in epoch seconds.

        Local hours start the zone's UTC offset modulo an hour past UTC ones (30 minutes in
        India), taken at the scope's start. Within a day, a visitor counts in the hour of
        their first matching session.
        """
        offset = hour_offset(scope.zone, scope.start)
        s, e = self.sessions.c, self.events.c

        def hour(ts: Any) -> Any:
            return intdiv(intdiv(ts, 1000) - number(offset), 3600)

        result: dict[int, Counts] = {}

        def at(value: Any) -> Counts:
            return result.setdefault(int(value) * 3600 + offset, Counts())

        for (value,), counts in self.sessions_by(scope, [hour(s.ts)]).items():
            found = at(value)
            found.visits, found.bounces, found.duration = (
                counts.visits,
                counts.bounces,
                counts.duration,
            )
            found.visitors = 0
        where = self.session_where(scope)
        for value, found_number in self.store.fetch(
            select(hour(s.ts), func.count()).where(*where, ~s.vm).group_by(hour(s.ts))
        ):
            at(value).visitors += int(found_number)
        firsts = (
            select(s.vd, func.min(s.ts).label("first"))
            .where(*where, s.vm)
            .group_by(s.vd)
            .subquery()
        )
        for value, found_number in self.store.fetch(
            select(hour(firsts.c.first), func.count()).group_by(hour(firsts.c.first))
        ):
            at(value).visitors += int(found_number)
        for (value,), (pageviews, events) in self.counts_by(scope, [hour(e.ts)]).items():
            found = at(value)
            found.pageviews, found.events = pageviews, events
        return result

    def props(self, scope: Scope, event: str, *, slices: bool = False) -> dict[Any, Counts]:
        """Return, for custom event `event`, counts per (property, value) of its events (per
        (UTC day, local day, property, value) with `slices`)."""
        e = self.events.c
        where = [
            *self.event_where(scope, "event"),
            self.encoding.codes(e.name, "name", [event]),
            e.props != "",
        ]
        pairs = self.encoding.prop_pairs(self.events, where)
        keys = [pairs.c.key, pairs.c.value]
        if slices:
            keys = [intdiv(pairs.c.ts, DAY_MS), pairs.c.day, *keys]
        result: dict[Any, Counts] = {}
        for row in self.store.fetch(
            select(*keys, func.count(), func.count(pairs.c.vd.distinct())).group_by(*keys)
        ):
            *key, number, visitors = row
            name = (
                (int(key[0]), int(key[1]), *map(str, key[2:])) if slices else tuple(map(str, key))
            )
            result[name] = Counts(visitors=int(visitors), events=int(number))
        return result

    def events_with_props(self, scope: Scope) -> list[str]:
        """Return the names of the custom events of the scope that carry properties."""
        e = self.events.c
        rows = self.store.fetch(
            select(e.name).where(*self.event_where(scope, "event"), e.props != "").distinct()
        )
        texts = self.texts("name", [row[0] for row in rows])
        return sorted({texts.get(row[0], NONE) for row in rows} - {NONE})

    def first_row(self, site_id: int) -> int | None:
        """Return the moment (epoch ms) of the site's earliest event in these tables, if any
        (for the open days' tables: whether a period meets them at all)."""
        e = self.events.c
        found = self.store.fetch(select(func.min(e.ts)).where(e.site_id == site_id))
        return int(found[0][0]) if found and found[0][0] is not None else None

    def first_event(self, site_id: int) -> int | None:
        """Return when the site's first stored session started (epoch ms), if any."""
        s = self.sessions.c
        found = self.store.fetch(select(func.min(s.ts)).where(s.site_id == site_id))
        return int(found[0][0]) if found and found[0][0] is not None else None


def _total(found: Iterable[Conversions]) -> Conversions:
    total = Conversions()
    for one in found:
        total.add(one)
    return total


def by_day(slices: dict[tuple[int, int], Counts]) -> dict[int, Counts]:
    """Return counts per site-local day from counts per (UTC day, local day)."""
    result: dict[int, Counts] = {}
    for (_utc, day), counts in slices.items():
        result.setdefault(day, Counts()).add(counts)
    return result


def _kind(dim: Dimension) -> str:
    """The kind of events an event dimension counts: pageviews ("page"), custom events."""
    return "page" if dim.name == "page" else "event"


def slice_keys(table: Any) -> list[Any]:
    """The UTC day and the local day of a row (a session's start, an event's moment)."""
    return [intdiv(table.c.ts, DAY_MS), table.c.day]


def hour_offset(zone: ZoneInfo, moment: datetime) -> int:
    """Return how far past a UTC hour local hours start in `zone` at `moment`, in seconds."""
    return int((moment.astimezone(zone).utcoffset() or timedelta()).total_seconds()) % 3600
