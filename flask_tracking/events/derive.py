"""From appended events to sessions, visitor-days and markers: one SQL definition, every engine.

`marked(recent, where)` returns two SELECTs over the `recent` rows that `where` picks (whole
UTC days of one or more sites): the sessions, and the events with their session's context.
The same statements refresh the open days (`recent_sessions`, `recent_events`) and close a day
into `sessions` and `events`, so open and closed days follow the same definitions.

- A session is a visitor's events with gaps of at most 30 minutes. Visitor hashes rotate at
  UTC midnight, so a session never crosses it: a UTC day holds whole sessions.
- `sid` numbers a session: ((utc_day * 2^24 + visitor number in the day) * 64 + its rank).
- `vd` numbers a visitor-day, one visitor on one site-local day: a visitor's UTC day meets at
  most two local days, so ((utc_day * 2^24 + visitor number) * 4 + local - utc day + 1). Every
  visitor-day lies in one UTC day, so everything below is final once that day is.
- `vm`: the visitor-day holds events of more than one session. Where it is false, counting
  rows counts visitor-days; where true (about 1 % of sessions), reports count distinct `vd`.
- `v1`: the visitor-day's first session; `p1`/`n1`: the visitor-day's first pageview of a page,
  first custom event of a name. Unfiltered, visitors are sums of these.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sqlalchemy import Select, Table, and_, func, literal, select

from flask_tracking.events.schema import CONTEXT, CONTEXT_NAMES
from flask_tracking.events.sql import as_int, first_by, intdiv, last_by, number, previous

GAP_MS = 30 * 60 * 1000
DAY_MS = 86_400_000
VISITORS_PER_DAY = 2**24  # room for this many visitors of one site in one UTC day
SESSIONS_PER_VISITOR = 64  # a session lasts over 30 minutes: at most 48 in a UTC day
# How long after closing a UTC day its visitors stay known, for late events (a writer that was
# down a while): later than this, a late event reopens its day as a visitor of its own.
LATE_DAYS_MS = 7 * 86_400_000


def marked(
    recent: Table, where: Any, numbers: Table | None = None, visitors: Table | None = None
) -> tuple[Select[Any], Select[Any], Select[Any]]:
    """Return (sessions, events, visitors) SELECTs deriving the marked rows of `recent` WHERE
    `where`, and the visitor number each visitor hash got.

    `where` must pick whole visitor-days (whole UTC days, or every row of some visitors).
    Visitors are numbered within their site and UTC day by hash, unless `numbers` (a table
    like schema.RECENT_NUMBERS) holds the numbers to use. With `visitors` (a table of distinct
    site_id, utc_day, visitor), only their rows are marked.
    """
    r = recent.c
    order = (r.ts, r.eid)
    utc_day = intdiv(r.ts, DAY_MS)
    gap = r.ts - previous(r.ts).over(partition_by=(r.site_id, r.visitor), order_by=order)
    columns = [*recent.c, utc_day.label("utc_day"), as_int(gap > GAP_MS).label("new")]
    joins = []
    # Joins, not IN (subquery): DuckDB runs a tuple IN as a nested loop, and plans a join
    # with the numbers far better here than later against a CTE (which it ran out of memory on).
    for table in (visitors, numbers):
        if table is not None:
            c = table.c
            joins.append(
                (table, and_(c.site_id == r.site_id, c.visitor == r.visitor, c.utc_day == utc_day))
            )
    if numbers is not None:
        columns.append(numbers.c.vnum)
    rows = select(*columns).select_from(recent)
    for table, condition in joins:
        rows = rows.join(table, condition)
    e = rows.where(where).cte("e")
    numbered = (
        select(
            e,
            (
                func.sum(e.c.new).over(
                    partition_by=(e.c.site_id, e.c.visitor),
                    order_by=(e.c.ts, e.c.eid),
                    rows=(None, 0),
                )
                - 1
            ).label("sn"),
        )
    ).cte("numbered")
    n = numbered.c
    if numbers is None:
        distinct = select(e.c.site_id, e.c.utc_day, e.c.visitor).distinct().subquery("vs")
        v = select(
            distinct,
            func.row_number()
            .over(
                partition_by=(distinct.c.site_id, distinct.c.utc_day), order_by=distinct.c.visitor
            )
            .label("vnum"),
        ).cte("v")
        person = n.utc_day * VISITORS_PER_DAY + v.c.vnum
        joined: Any = numbered.join(
            v, and_(v.c.site_id == n.site_id, v.c.utc_day == n.utc_day, v.c.visitor == n.visitor)
        )
        found = select(v.c.site_id, v.c.utc_day, v.c.visitor, v.c.vnum)
    else:
        person = n.utc_day * VISITORS_PER_DAY + n.vnum
        joined = numbered
        found = select(n.site_id, n.utc_day, n.visitor, n.vnum).distinct()
    k = (
        select(
            *(column for column in numbered.c if column.name != "vnum"),
            (person * SESSIONS_PER_VISITOR + n.sn).label("sid"),
            (person * 4 + (n.day - n.utc_day + 1)).label("vd"),
        )
        .select_from(joined)
        .cte("k")
    )
    return _sessions(k), _events(k), found


def _session_rows(k: Any) -> Any:
    """One row per session: its span, counts, start's visitor-day and first event's context."""
    c = k.c
    order = (c.ts, c.eid)
    first_page = first_by(c.page, *order)
    return (
        select(
            c.site_id,
            c.sid,
            func.min(c.ts).label("start"),
            func.max(c.ts).label("stop"),
            first_by(c.day, *order).label("day"),
            first_by(c.vd, *order).label("vd"),
            func.count().filter(c.pv).label("pageviews"),
            func.count().label("events"),
            first_by(c.ref, *order).label("referrer"),
            *(first_by(c[name], *order).label(name) for name in CONTEXT_NAMES),
            first_page.label("entry"),
            func.coalesce(last_by(c.page, *order).filter(c.pv), first_page).label("exit"),
        )
        .group_by(c.site_id, c.sid)
        .cte("sess")
    )


def _multi(k: Any) -> Any:
    """Per visitor-day: whether events of more than one session are in it."""
    return (
        select(k.c.site_id, k.c.vd, (func.min(k.c.sid) != func.max(k.c.sid)).label("vm"))
        .group_by(k.c.site_id, k.c.vd)
        .cte("multi")
    )


def _sessions(k: Any) -> Select[Any]:
    sess = _session_rows(k)
    multi = _multi(k)
    s = sess.c
    first_of_day = func.row_number().over(partition_by=(s.site_id, s.vd), order_by=(s.start, s.sid))
    return select(
        s.site_id,
        s.start.label("ts"),
        s.day,
        s.sid,
        s.vd,
        multi.c.vm,
        (first_of_day == 1).label("v1"),
        (s.pageviews <= 1).label("bounce"),
        (s.stop - s.start).label("ms"),
        s.pageviews,
        s.events,
        s.referrer,
        *(s[name] for name in CONTEXT_NAMES),
        s.entry,
        s.exit,
    ).join_from(sess, multi, and_(multi.c.site_id == s.site_id, multi.c.vd == s.vd))


def _events(k: Any) -> Select[Any]:
    sess = _session_rows(k)
    multi = _multi(k)
    c = k.c
    order = (c.ts, c.eid)
    # The first pageview of a page, or custom event of a name, in the visitor-day: the row
    # whose uid is the first of its (page) or (name) group. Pageviews group by page alone.
    page_first = (
        select(c.site_id, c.vd, c.page, first_by(c.eid, *order).label("first"))
        .where(c.pv)
        .group_by(c.site_id, c.vd, c.page)
        .cte("page_first")
    )
    name_first = (
        select(c.site_id, c.vd, c.name, first_by(c.eid, *order).label("first"))
        .where(~c.pv)
        .group_by(c.site_id, c.vd, c.name)
        .cte("name_first")
    )
    s = sess.c
    return (
        select(
            c.site_id,
            c.ts,
            c.day,
            c.sid,
            c.vd,
            multi.c.vm,
            c.eid,
            c.pv,
            func.coalesce(page_first.c.first == c.eid, literal(False)).label("p1"),
            func.coalesce(name_first.c.first == c.eid, literal(False)).label("n1"),
            c.name,
            c.page,
            c.url,
            c.ref,
            c.width,
            c.props,
            c.ip,
            s.source,
            s.referrer,
            s.utm_source,
            s.utm_medium,
            s.utm_campaign,
            s.country,
            s.region,
            s.city,
            s.browser,
            s.os,
            s.device,
            s.screen,
            s.entry,
            s.exit,
        )
        .join_from(k, sess, and_(s.site_id == c.site_id, s.sid == c.sid))
        .join(multi, and_(multi.c.site_id == c.site_id, multi.c.vd == c.vd))
        .outerjoin(
            page_first,
            and_(
                page_first.c.site_id == c.site_id,
                page_first.c.vd == c.vd,
                page_first.c.page == c.page,
                c.pv,
            ),
        )
        .outerjoin(
            name_first,
            and_(
                name_first.c.site_id == c.site_id,
                name_first.c.vd == c.vd,
                name_first.c.name == c.name,
                ~c.pv,
            ),
        )
    )


def remarked(
    events: Table, sessions: Table, site_id: int, day_of: Callable[[Any], Any]
) -> tuple[Select[Any], Select[Any]]:
    """Return (sessions, events) SELECTs of a site's closed rows with new local days.

    For a new time zone: `day_of(ts)` is the SQL of a moment's new local day. Sessions keep
    everything that does not depend on the zone; visitor-days and markers are recomputed from
    the session numbers (`sid` holds the visitor's number in its UTC day).
    """
    e = events.c
    person = intdiv(e.sid, SESSIONS_PER_VISITOR)
    day = day_of(e.ts)
    rows = (
        select(
            *(column for column in events.c if column.name not in ("day", "vd", "vm", "p1", "n1")),
            day.label("day"),
            (person * 4 + (day - intdiv(e.ts, DAY_MS) + 1)).label("vd"),
        )
        .where(e.site_id == site_id)
        .cte("rows")
    )
    c = rows.c
    multi = (
        select(c.vd, (func.min(c.sid) != func.max(c.sid)).label("vm")).group_by(c.vd).cte("multi")
    )
    page_first = (
        select(c.vd, c.page, first_by(c.eid, c.ts, c.eid).label("first"))
        .where(c.pv)
        .group_by(c.vd, c.page)
        .cte("page_first")
    )
    name_first = (
        select(c.vd, c.name, first_by(c.eid, c.ts, c.eid).label("first"))
        .where(~c.pv)
        .group_by(c.vd, c.name)
        .cte("name_first")
    )
    marks = {
        "vm": multi.c.vm,
        "p1": func.coalesce(page_first.c.first == c.eid, literal(False)),
        "n1": func.coalesce(name_first.c.first == c.eid, literal(False)),
    }
    events_out = (
        select(
            *(
                marks[col.name].label(col.name) if col.name in marks else c[col.name]
                for col in events.c
            )
        )
        .join_from(rows, multi, multi.c.vd == c.vd)
        .outerjoin(page_first, and_(page_first.c.vd == c.vd, page_first.c.page == c.page, c.pv))
        .outerjoin(name_first, and_(name_first.c.vd == c.vd, name_first.c.name == c.name, ~c.pv))
    )
    s = sessions.c
    s_day = day_of(s.ts)
    s_vd = intdiv(s.sid, SESSIONS_PER_VISITOR) * 4 + (s_day - intdiv(s.ts, DAY_MS) + 1)
    starts = (
        select(
            *(column for column in sessions.c if column.name not in ("day", "vd", "vm", "v1")),
            s_day.label("day"),
            s_vd.label("vd"),
        )
        .where(s.site_id == site_id)
        .cte("starts")
    )
    first_of_day = func.row_number().over(
        partition_by=starts.c.vd, order_by=(starts.c.ts, starts.c.sid)
    )
    session_marks = {"vm": multi.c.vm, "v1": first_of_day == 1}
    sessions_out = select(
        *(
            session_marks[col.name].label(col.name)
            if col.name in session_marks
            else starts.c[col.name]
            for col in sessions.c
        )
    ).join_from(starts, multi, multi.c.vd == starts.c.vd)
    return sessions_out, events_out


def reopened(
    events: Table, sessions: Table, day_visitors: Table, site_id: int, utc_day: int
) -> Select[Any]:
    """Return a closed UTC day of a site as `recent` rows again, to close it anew with late
    events: each event with its session's context (exact wherever it matters: a session's
    context is its first event's), and its visitor's hash where it is still known."""
    e, s, v = events.c, sessions.c, day_visitors.c
    person = intdiv(e.sid, SESSIONS_PER_VISITOR)
    vnum = person - number(utc_day * VISITORS_PER_DAY)
    return (
        select(
            e.site_id,
            e.ts,
            e.eid,
            func.coalesce(v.visitor, -person).label("visitor"),
            e.day,
            e.pv,
            e.name,
            e.page,
            e.url,
            e.ref,
            e.width,
            e.props,
            e.ip,
            *(s[column.name] for column in CONTEXT),
        )
        .join_from(events, sessions, and_(s.site_id == e.site_id, s.sid == e.sid))
        .outerjoin(
            day_visitors,
            and_(v.site_id == e.site_id, v.utc_day == utc_day, v.vnum == vnum),
        )
        .where(
            e.site_id == site_id,
            e.ts >= utc_day * DAY_MS,
            e.ts < (utc_day + 1) * DAY_MS,
            s.ts >= utc_day * DAY_MS,
            s.ts < (utc_day + 1) * DAY_MS,
        )
    )


def new_numbers(recent: Table, numbers: Table, touched: Any) -> Select[Any]:
    """The numbers of the visitors in `touched` (site_id, utc_day, visitor) that `numbers` does
    not know yet: after the highest of their site and day, in order of first event."""
    r, n, t = recent.c, numbers.c, touched.c
    utc_day = intdiv(r.ts, DAY_MS)
    unknown = (
        select(t.site_id, t.utc_day, t.visitor)
        .except_(select(n.site_id, n.utc_day, n.visitor))
        .subquery("unknown")
    )
    u = unknown.c
    firsts = (
        select(r.site_id, utc_day.label("utc_day"), r.visitor, func.min(r.eid).label("first"))
        .join_from(
            recent,
            unknown,
            and_(u.site_id == r.site_id, u.visitor == r.visitor, u.utc_day == utc_day),
        )
        .group_by(r.site_id, utc_day, r.visitor)
        .subquery("firsts")
    )
    tops = (
        select(n.site_id, n.utc_day, func.max(n.vnum).label("top"))
        .group_by(n.site_id, n.utc_day)
        .subquery("tops")
    )
    f = firsts.c
    rank = func.row_number().over(
        partition_by=(f.site_id, f.utc_day), order_by=(f.first, f.visitor)
    )
    return select(
        f.site_id, f.utc_day, f.visitor, func.coalesce(tops.c.top, 0) + rank
    ).outerjoin_from(firsts, tops, and_(tops.c.site_id == f.site_id, tops.c.utc_day == f.utc_day))


def utc_days(recent: Table, site_id: int | None, first: int, last: int) -> Any:
    """The WHERE clause picking whole UTC days first..last (of one site, or all)."""
    condition = and_(recent.c.ts >= first * DAY_MS, recent.c.ts < (last + 1) * DAY_MS)
    if site_id is not None:
        condition = and_(recent.c.site_id == site_id, condition)
    return condition
