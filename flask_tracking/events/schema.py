"""The event store's tables, declared once; each engine renders its own DDL from them.

Three stages of the same events (docs/architecture/event-store.md says why):

- `recent`: what the writer appends, one row per stored event of the UTC days still open,
  enriched but not yet sessionised (the visitor hash, the event's own context).
- `events` and `sessions`: the same rows once their UTC day is over, with sessions, dense
  visitor-day ids and the "first of" markers that let reports count visitors with sums.
  `recent_events` and `recent_sessions` hold the open days in the same shape, refreshed every
  few seconds, so reports read closed and open days alike (`all_events`, `all_sessions`).
- `rollups`: per local day, dimension and value, the counts unfiltered reports read.

A dimension column ("dim") holds text. DuckDB stores an integer code from the `dict` table
(0 for "not set"); ClickHouse stores the text itself, LowCardinality, "" for "not set".
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Kind = Literal["dim", "int16", "int32", "int64", "uint64", "bool", "text", "float64"]


@dataclass(frozen=True, slots=True)
class Column:
    """A column: its name, logical kind, and for a "dim" the dictionary it draws from."""

    name: str
    kind: Kind
    dictionary: str = ""

    @property
    def is_dim(self) -> bool:
        """Tell whether the column holds a dimension value (text, or its code)."""
        return self.kind == "dim"


def dim(name: str, dictionary: str | None = None) -> Column:
    """A dimension column drawing from `dictionary` (by default its own name)."""
    return Column(name, "dim", dictionary or name)


# The event's own context as the writer enriches it (also what a session takes from its first
# event). `ref` is the event's referrer URL; a session's `referrer` is its first event's `ref`.
CONTEXT = (
    dim("source"),
    dim("utm_source"),
    dim("utm_medium"),
    dim("utm_campaign"),
    dim("utm_term"),
    dim("utm_content"),
    dim("country"),
    dim("country_name"),
    dim("region"),
    dim("city"),
    dim("postal"),
    dim("browser"),
    dim("browser_version"),
    dim("os"),
    dim("os_version"),
    dim("device"),
    dim("screen"),
    dim("hostname"),
    dim("coordinates"),  # "latitude,longitude" of the address's location, as GeoIP gives it
)
CONTEXT_NAMES = tuple(column.name for column in CONTEXT)

RECENT = (
    Column("site_id", "int32"),
    Column("ts", "int64"),  # epoch milliseconds
    Column("eid", "int64"),  # the event's id: given in order of arrival, per site, for good
    Column("visitor", "int64"),  # the salted visitor hash (it rotates every UTC day)
    Column("day", "int32"),  # the site-local day, in the site's zone when the writer stored it
    Column("pv", "bool"),  # a pageview (else a custom event)
    dim("name"),
    dim("page", "page"),
    dim("url", "url"),
    dim("ref", "url"),
    Column("width", "int32"),  # screen width in CSS pixels, 0 when unknown
    Column("props", "text"),  # JSON object, or "" for none
    dim("ip"),  # the truncated address, only with STORE_VISITOR_IP (else "not set")
    *CONTEXT,
)

# What a session keeps: its first event's context, and its entry and exit pages.
SESSION_CONTEXT = (
    dim("referrer", "url"),
    *CONTEXT,
    dim("entry", "page"),
    dim("exit", "page"),
)
# The session context copied onto every event, so that filters on it need no join.
EVENT_COPIES = (
    dim("source"),
    dim("referrer", "url"),
    dim("utm_source"),
    dim("utm_medium"),
    dim("utm_campaign"),
    dim("country"),
    dim("region"),
    dim("city"),
    dim("browser"),
    dim("os"),
    dim("device"),
    dim("screen"),
    dim("entry", "page"),
    dim("exit", "page"),
)

# Keys shared by sessions and events.
MARKED_KEYS = (
    Column("site_id", "int32"),
    Column("ts", "int64"),  # a session's start; an event's moment (epoch ms)
    Column("day", "int32"),  # the site-local day of `ts`, in days since 1970-01-01
    Column("sid", "int64"),  # the session: unique per site (see derive.py)
    Column("vd", "int64"),  # the visitor-day: one visitor on one site-local day
    Column("vm", "bool"),  # the visitor-day holds more than one session
)
SESSIONS = (
    *MARKED_KEYS,
    Column("v1", "bool"),  # the first session of its visitor-day
    Column("bounce", "bool"),  # at most one pageview
    Column("ms", "int64"),  # duration: last event's time minus the first's
    Column("pageviews", "int32"),
    Column("events", "int32"),
    *SESSION_CONTEXT,
)
EVENTS = (
    *MARKED_KEYS,
    Column("eid", "int64"),  # its id since it arrived: (ts, eid) orders events and exports
    Column("pv", "bool"),  # a pageview (else a custom event)
    Column("p1", "bool"),  # the first pageview of its page in its visitor-day
    Column("n1", "bool"),  # the first custom event of its name in its visitor-day
    dim("name"),
    dim("page", "page"),
    dim("url", "url"),
    dim("ref", "url"),
    Column("width", "int32"),
    Column("props", "text"),
    dim("ip"),
    *EVENT_COPIES,
)
COUNTS = (
    Column("visitors", "int64"),
    Column("visits", "int64"),
    Column("pageviews", "int64"),
    Column("events", "int64"),
    Column("bounces", "int64"),
    Column("ms", "int64"),
)
ROLLUPS = (
    Column("site_id", "int32"),
    Column("utc_day", "int32"),  # the UTC day whose rows these count (a local day meets two)
    Column("day", "int32"),
    Column("dimension", "int16"),  # reports/dimensions.py's numbering; 0 is the day's total
    Column("value", "text"),  # the text itself in every engine (rollups are small)
    *COUNTS,
)
DROPS = (
    Column("site_id", "int32"),
    Column("day", "int32"),  # UTC day
    Column("reason", "text"),
    Column("count", "int64"),
)
# Billable events: what the writer stored, per account (the sites' owner when stored) and UTC
# month (yyyymm), added in the transaction that stores them (billing/usage.py reads it). Keyed
# by account, not site, so deleting a site does not take its events off the month's bill.
USAGE = (
    Column("account_id", "int32"),
    Column("month", "int32"),
    Column("events", "int64"),
)
CHECKPOINTS = (
    Column("node", "text"),
    Column("segment", "text"),
    Column("offset", "int64"),
)
# The visitor hash behind each visitor number of recently closed days: a late event of such a
# day reopens it, and must find its visitor (kept LATE_DAYS, in derive.py).
DAY_VISITORS = (
    Column("site_id", "int32"),
    Column("utc_day", "int32"),
    Column("visitor", "int64"),
    Column("vnum", "int32"),
    Column("closed_at", "int64"),  # when the day was closed (epoch ms)
)
# The visitor number of each visitor hash of the open days, numbered in order of each
# visitor's first event in its UTC day: a number never changes as events arrive, so a
# refresh recomputes the marked rows of the visitors with new events only.
RECENT_NUMBERS = (
    Column("site_id", "int32"),
    Column("utc_day", "int64"),  # as wide as the ids computed from it
    Column("visitor", "int64"),
    Column("vnum", "int64"),
)
# Per site: the zone its closed rows are marked in, and the last UTC day closed.
SITE_STATE = (
    Column("site_id", "int32"),
    Column("timezone", "text"),
    Column("closed_through", "int32"),
)

TABLES: dict[str, tuple[Column, ...]] = {
    "recent": RECENT,
    "events": EVENTS,
    "sessions": SESSIONS,
    "recent_events": EVENTS,
    "recent_sessions": SESSIONS,
    "recent_numbers": RECENT_NUMBERS,
    "rollups": ROLLUPS,
    "day_visitors": DAY_VISITORS,
    "drops": DROPS,
    "usage": USAGE,
    "checkpoints": CHECKPOINTS,
    "site_state": SITE_STATE,
}
# Dictionaries of the "dim" columns (DuckDB's codes): a name for each, and its number.
DICTIONARIES = tuple(
    sorted({column.dictionary for table in TABLES.values() for column in table if column.is_dim})
)
DICTIONARY_IDS = {name: number for number, name in enumerate(DICTIONARIES, start=1)}
