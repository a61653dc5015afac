"""A reference dashboard in DuckDB: what the reports should show, computed another way.

    .venv/bin/python bench/duckdb_reference.py --database-url sqlite:///bench/data/events-1m.db \\
        --site-id 1 [--events-url duckdb:///bench/data/events-1m.duckdb]

Copies one site's raw events out of the event store (its file attached read-only) into plain
in-memory tables, text instead of codes, then times `reference_dashboard()` over the last 7,
30 and 365 local days of the data (median of --runs). None of the store's derived data is
used — no markers, visitor-day sums or rollups — except which session an event belongs to
(the store's session ids; tests/bench/test_generate.py checks those against the 30-minute
rule). Sessions' spans, pages, counts and bounces are recomputed here from their events, and
their context (source, country, browser ...) is their first event's.

Definitions (Plausible's, simplified), for a range [start, end) in UTC and filters on the
session's context:

* sessions in range: started_at in the range, matching every filter;
* events in range: date in the range, whose session matches every filter;
* visitors: distinct visitors of the events in range (a visitor id rotates every UTC day, so
  this is distinct (visitor, UTC day)); pageviews: their pageviews; visits: the sessions in
  range; bounce rate: % of them with at most one pageview; visit duration: the mean of their
  last event's time minus their first's, in seconds;
* daily series: the same per local day of the site's zone;
* breakdowns (top 10 by visitors, then pageviews, then value; NULL is a value: "direct",
  "unknown"): pages and custom event names over events in range; every other dimension over
  sessions in range, where pageviews is the sum of the sessions' pageviews.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sqlite3
import statistics
import sys
import time
from collections.abc import Iterator, Sequence
from datetime import UTC, date, datetime, timedelta
from datetime import time as clock_time
from typing import Any
from zoneinfo import ZoneInfo

import duckdb

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from flask_tracking.events import schema

PAGEVIEW_NAMES = ("pageview", "PageLoad")  # as the writer counts them (ingest/enrich.py)
# The session context the reference keeps: its column here, the store's column and dictionary.
CONTEXT = {
    "hostname": ("hostname", "hostname"),
    "referrer": ("referrer", "url"),
    "referrer_source": ("source", "source"),
    "utm_source": ("utm_source", "utm_source"),
    "utm_medium": ("utm_medium", "utm_medium"),
    "utm_campaign": ("utm_campaign", "utm_campaign"),
    "utm_term": ("utm_term", "utm_term"),
    "utm_content": ("utm_content", "utm_content"),
    "country_code": ("country", "country"),
    "region": ("region", "region"),
    "city": ("city", "city"),
    "browser": ("browser", "browser"),
    "os": ("os", "os"),
    "device": ("device", "device"),
    "screen_size": ("screen", "screen"),
}
CONTEXT_COLUMNS = tuple(CONTEXT)
# Dimensions broken down over sessions; pages and custom events are over events.
SESSION_BREAKDOWNS = {
    "entry_pages": "entry_page",
    "exit_pages": "exit_page",
    "sources": "referrer_source",
    "referrers": "referrer",
    "utm_sources": "utm_source",
    "utm_mediums": "utm_medium",
    "utm_campaigns": "utm_campaign",
    "countries": "country_code",
    "regions": "region",
    "cities": "city",
    "browsers": "browser",
    "operating_systems": "os",
    "devices": "device",
    "screen_sizes": "screen_size",
}
FILTER_COLUMNS = frozenset({*CONTEXT_COLUMNS, "entry_page", "exit_page"})
FILTER_OPS = ("is", "is_not", "contains")
TOP = 10
RANGES = (7, 30, 365)

Filter = tuple[str, str, str | None]


# -- loading ------------------------------------------------------------------------------


def load(database_url: str, events_url: str, site_id: int) -> duckdb.DuckDBPyConnection:
    """Return an in-memory DuckDB holding the site's events, sessions and time zone."""
    if not events_url.startswith("duckdb:///"):
        raise SystemExit("--events-url must be duckdb:///PATH")
    path = events_url.removeprefix("duckdb:///")
    if not os.path.isfile(path):
        raise SystemExit(f"no event store at {path}")
    with _reader(database_url) as read:
        (timezone,) = next(read("SELECT timezone FROM sites WHERE id = ?", (site_id,)))
    con = duckdb.connect()
    con.execute("ATTACH ? AS store (READ_ONLY)", [path])

    def text(table: str, column: str, dictionary: str) -> tuple[str, str]:
        """A LEFT JOIN decoding a code column into its text (NULL for "not set")."""
        number = schema.DICTIONARY_IDS[dictionary]
        alias = f"d_{table}_{column}"
        join = (
            f"LEFT JOIN store.dict {alias} ON {alias}.dictionary = {number} "
            f'AND {alias}.code = {table}."{column}"'
        )
        return f"{alias}.value", join

    def rows_of(name: str) -> str:
        return (
            f"(SELECT * FROM store.{name} WHERE site_id = {int(site_id)} UNION ALL "  # noqa: S608
            f"SELECT * FROM store.recent_{name} WHERE site_id = {int(site_id)})"
        )

    event, event_join = text("e", "name", "name")
    page, page_join = text("e", "page", "page")
    con.execute(
        "CREATE TABLE visits AS SELECT e.eid AS id, "  # noqa: S608 - our own names
        "make_timestamp(e.ts * 1000) AS date, "
        f"{event} AS event, {page} AS pathname, "
        "e.vd // 4 AS visitor_id, "  # (UTC day, visitor number): the daily-rotating visitor
        f"e.sid AS session_id FROM {rows_of('events')} e {event_join} {page_join}"
    )
    outputs, joins = [], []
    for column, (source, dictionary) in CONTEXT.items():
        value, join = text("s", source, dictionary)
        outputs.append(f'{value} AS "{column}"')
        joins.append(join)
    con.execute(
        f"CREATE TABLE context AS SELECT s.sid, {', '.join(outputs)} "  # noqa: S608
        f"FROM {rows_of('sessions')} s {' '.join(joins)}"
    )
    con.execute("DETACH store")
    pageview_names = ", ".join(f"'{name}'" for name in PAGEVIEW_NAMES)
    con.execute(
        f"""
        CREATE TABLE sessions AS
        WITH counted AS (
            SELECT session_id, min(visitor_id) AS visitor_id,
                   min(date) AS started_at, max(date) AS ended_at,
                   arg_min(pathname, (date, id)) AS entry_page,
                   arg_max(pathname, (date, id)) FILTER (WHERE event IN ({pageview_names}))
                       AS last_pageview_page,
                   count(*) FILTER (WHERE event IN ({pageview_names})) AS pageviews,
                   count(*) AS events
            FROM visits GROUP BY session_id
        )
        SELECT c.session_id AS id, c.visitor_id, c.started_at, c.ended_at, c.entry_page,
               coalesce(c.last_pageview_page, c.entry_page) AS exit_page,
               c.pageviews, c.events, c.pageviews <= 1 AS is_bounce,
               {", ".join(f'x."{column}"' for column in CONTEXT_COLUMNS)}
        FROM counted c JOIN context x ON x.sid = c.session_id
        """  # noqa: S608 - our own names
    )
    con.execute("DROP TABLE context")
    con.execute("CREATE TABLE site AS SELECT ? AS id, ? AS timezone", [site_id, timezone])
    return con


@contextlib.contextmanager
def _reader(database_url: str) -> Iterator[Any]:
    """Yield read(query, params) -> rows from the SQL database (accounts and sites)."""
    if database_url.startswith("sqlite:///"):
        path = database_url.removeprefix("sqlite:///")  # relative: to the current directory
        if not os.path.isfile(path):
            raise SystemExit(f"no SQLite database at {path}")
        lite = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
        try:
            yield lambda query, params: iter(lite.execute(query, params).fetchall())
        finally:
            lite.close()
        return
    from sqlalchemy import create_engine, text

    url = database_url
    for prefix in ("postgres://", "postgresql://"):
        if url.startswith(prefix):  # psycopg 3, as the app uses
            url = "postgresql+psycopg://" + url.removeprefix(prefix)
    engine = create_engine(url)
    try:
        with engine.connect() as connection:

            def read(query: str, params: Sequence[Any]) -> Iterator[tuple[Any, ...]]:
                named = query.replace("?", ":p0")
                return iter(connection.execute(text(named), {"p0": params[0]}).all())

            yield read
    finally:
        engine.dispose()


# -- the dashboard --------------------------------------------------------------------------


def reference_dashboard(
    con: duckdb.DuckDBPyConnection,
    site_id: int,
    start_utc: datetime,
    end_utc: datetime,
    filters: Sequence[Filter] = (),
) -> dict[str, Any]:
    """Return the dashboard's aggregates for [start_utc, end_utc) (aware datetimes)."""
    (loaded,) = con.execute("SELECT id FROM site").fetchone() or (None,)
    if loaded != site_id:
        raise ValueError(f"this connection holds site {loaded}, not {site_id}")
    (timezone,) = con.execute("SELECT timezone FROM site").fetchone() or ("UTC",)
    start, end = _naive_utc(start_utc), _naive_utc(end_utc)
    # Views for this call: sessions matching the filters, then the two sets in range.
    con.execute(
        "CREATE OR REPLACE TEMP VIEW f_sessions AS "  # noqa: S608 - values escaped
        f"SELECT * FROM sessions WHERE {_filter_sql(filters)}"
    )
    pageview_names = ", ".join(f"'{name}'" for name in PAGEVIEW_NAMES)
    con.execute(
        "CREATE OR REPLACE TEMP VIEW r_sessions AS SELECT * FROM f_sessions "  # noqa: S608
        f"WHERE started_at >= TIMESTAMP '{start}' AND started_at < TIMESTAMP '{end}'"
    )
    con.execute(
        "CREATE OR REPLACE TEMP VIEW r_events AS "  # noqa: S608 - formatted datetimes
        f"SELECT v.*, v.event IN ({pageview_names}) AS is_pageview FROM visits v "
        f"WHERE v.date >= TIMESTAMP '{start}' AND v.date < TIMESTAMP '{end}' "
        + ("" if not filters else "AND v.session_id IN (SELECT id FROM f_sessions)")
    )
    visitors, pageviews = con.execute(
        "SELECT count(DISTINCT visitor_id), count(*) FILTER (WHERE is_pageview) FROM r_events"
    ).fetchone() or (0, 0)
    visits, bounce_rate, duration = con.execute(
        "SELECT count(*), 100.0 * avg(is_bounce::INTEGER), "
        "avg(epoch(ended_at) - epoch(started_at)) FROM r_sessions"
    ).fetchone() or (0, None, None)
    result: dict[str, Any] = {
        "visitors": visitors,
        "visits": visits,
        "pageviews": pageviews,
        "bounce_rate": bounce_rate,
        "visit_duration": duration,
        "series": _series(con, timezone, start_utc, end_utc),
        "pages": _top(
            con,
            "SELECT pathname AS value, count(DISTINCT visitor_id) AS visitors, "
            "count(*) AS pageviews FROM r_events WHERE is_pageview GROUP BY 1",
        ),
        "events": _top(
            con,
            "SELECT event AS value, count(DISTINCT visitor_id) AS visitors, "
            "count(*) AS pageviews FROM r_events WHERE NOT is_pageview GROUP BY 1",
        ),
    }
    for key, column in SESSION_BREAKDOWNS.items():
        result[key] = _top(
            con,
            f'SELECT "{column}" AS value, count(DISTINCT visitor_id) AS visitors, '  # noqa: S608
            "sum(pageviews)::BIGINT AS pageviews, count(*) AS visits FROM r_sessions GROUP BY 1",
        )
    return result


def _naive_utc(moment: datetime) -> str:
    if moment.tzinfo is None:
        raise ValueError("range boundaries must be timezone-aware")
    return moment.astimezone(UTC).replace(tzinfo=None).isoformat(sep=" ")


def _filter_sql(filters: Sequence[Filter]) -> str:
    """Return the WHERE condition of the filters, values inlined as escaped literals.

    Inlined because DuckDB cannot prepare CREATE VIEW; columns come from a fixed set.
    """
    clauses = ["TRUE"]
    for column, op, value in filters:
        if column not in FILTER_COLUMNS:
            raise ValueError(f"cannot filter on {column!r}")
        if op not in FILTER_OPS:
            raise ValueError(f"unknown filter operator {op!r}; use one of {FILTER_OPS}")
        literal = "NULL" if value is None else "'" + str(value).replace("'", "''") + "'"
        if op == "contains":
            clauses.append(f'contains("{column}", {literal})')  # NULL never contains anything
        elif op == "is":
            clauses.append(f'"{column}" IS NOT DISTINCT FROM {literal}')  # None: IS NULL
        else:
            clauses.append(f'"{column}" IS DISTINCT FROM {literal}')  # NULL is "not the value"
    return " AND ".join(clauses)


def _series(
    con: duckdb.DuckDBPyConnection, timezone: str, start_utc: datetime, end_utc: datetime
) -> list[Any]:
    """Visitors, visits and pageviews per local day of the site's zone, empty days included.

    The local midnights are computed here (zoneinfo, DST included) and rows find their day
    with an ASOF join: converting every timestamp with AT TIME ZONE costs far more.
    """
    zone = ZoneInfo(timezone)
    day = start_utc.astimezone(zone).date()
    last = (end_utc - timedelta(microseconds=1)).astimezone(zone).date()
    values = []
    while day <= last:
        starts = max(local_midnight(day, zone), start_utc).astimezone(UTC).replace(tzinfo=None)
        values.append(f"(DATE '{day}', TIMESTAMP '{starts.isoformat(sep=' ')}')")
        day += timedelta(days=1)
    rows = con.execute(
        f"""
        WITH days(day, starts) AS (VALUES {", ".join(values)}),
        e AS (
            SELECT d.day, count(DISTINCT visitor_id) AS visitors,
                   count(*) FILTER (WHERE is_pageview) AS pageviews
            FROM r_events ASOF JOIN days d ON r_events.date >= d.starts GROUP BY 1
        ),
        s AS (
            SELECT d.day, count(*) AS visits
            FROM r_sessions ASOF JOIN days d ON r_sessions.started_at >= d.starts GROUP BY 1
        )
        SELECT days.day, coalesce(e.visitors, 0), coalesce(s.visits, 0), coalesce(e.pageviews, 0)
        FROM days LEFT JOIN e USING (day) LEFT JOIN s USING (day) ORDER BY days.day
        """  # noqa: S608 - dates and timestamps formatted here
    ).fetchall()
    return [
        {"day": day, "visitors": visitors, "visits": visits, "pageviews": pageviews}
        for day, visitors, visits, pageviews in rows
    ]


def _top(con: duckdb.DuckDBPyConnection, grouped: str) -> list[dict[str, Any]]:
    cursor = con.execute(
        f"SELECT * FROM ({grouped}) "  # noqa: S608 - our own SQL
        f"ORDER BY visitors DESC, pageviews DESC, value ASC NULLS FIRST LIMIT {TOP}"
    )
    names = [column[0] for column in cursor.description or ()]
    return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]


# -- the command line -----------------------------------------------------------------------


def data_end(con: duckdb.DuckDBPyConnection) -> tuple[datetime, str]:
    """Return the local midnight (as aware UTC) after the last event, and the zone."""
    (timezone,) = con.execute("SELECT timezone FROM site").fetchone() or ("UTC",)
    (last,) = con.execute("SELECT max(date) FROM visits").fetchone() or (None,)
    if last is None:
        raise SystemExit("the site has no visits")
    zone = ZoneInfo(timezone)
    day = last.replace(tzinfo=UTC).astimezone(zone).date() + timedelta(days=1)
    return local_midnight(day, zone), timezone


def local_midnight(day: date, zone: ZoneInfo) -> datetime:
    """Return a local day's first instant in UTC."""
    return datetime.combine(day, clock_time(0), tzinfo=zone).astimezone(UTC)


def default_events_url(database_url: str) -> str:
    """The store bench/generate.py makes beside an SQLite database."""
    if not database_url.startswith("sqlite:///"):
        raise SystemExit("--events-url is needed when --database-url is not an SQLite file")
    return "duckdb:///" + os.path.splitext(database_url.removeprefix("sqlite:///"))[0] + ".duckdb"


def main(argv: list[str] | None = None) -> None:
    """Load, then time the reference dashboard over 7, 30 and 365 local days."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database-url", required=True)
    parser.add_argument("--events-url", help="default: the .duckdb file beside an SQLite database")
    parser.add_argument("--site-id", type=int, default=1)
    parser.add_argument("--runs", type=int, default=5, help="runs per range; the median counts")
    parser.add_argument(
        "--filter",
        action="append",
        default=[],
        metavar="COLUMN:OP:VALUE",
        help="e.g. country_code:is:DE (repeatable)",
    )
    args = parser.parse_args(argv)
    filters = [tuple(text.split(":", 2)) for text in args.filter]
    if any(len(f) != 3 for f in filters):
        parser.error("--filter takes COLUMN:OP:VALUE")

    events_url = args.events_url or default_events_url(args.database_url)
    began = time.perf_counter()
    con = load(args.database_url, events_url, args.site_id)
    loaded = time.perf_counter() - began
    (visits,) = con.execute("SELECT count(*) FROM visits").fetchone() or (0,)
    (sessions,) = con.execute("SELECT count(*) FROM sessions").fetchone() or (0,)
    print(f"loaded {visits:,} visits and {sessions:,} sessions in {loaded:.1f} s")
    end, timezone = data_end(con)
    zone = ZoneInfo(timezone)
    for days in RANGES:
        start = local_midnight(end.astimezone(zone).date() - timedelta(days=days), zone)
        timings, result = [], {}
        for _ in range(args.runs):
            began = time.perf_counter()
            result = reference_dashboard(con, args.site_id, start, end, filters)
            timings.append(time.perf_counter() - began)
        print(
            f"{days:>3}d: median {statistics.median(timings) * 1000:,.0f} ms over {args.runs} "
            f"runs; visitors {result['visitors']:,}, visits {result['visits']:,}, "
            f"pageviews {result['pageviews']:,}, bounce rate {result['bounce_rate'] or 0:.1f}%, "
            f"visit duration {result['visit_duration'] or 0:.0f} s"
        )
    con.close()


if __name__ == "__main__":
    main(sys.argv[1:])
