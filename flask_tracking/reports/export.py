"""Raw events of a site and period, oldest first, read by keyset: (ts, id) after a position.

A page continues exactly after the last event of the previous one, however many events
arrive meanwhile, and each page is one range scan however deep into the period it is. `stream`
reads a whole period in such pages, holding one page in memory at a time. The raw visits page
and the tests read single events the same way (`StoredEvent`).

An event's own columns are its time, name, page, URL, referrer, screen width and properties;
its attribution and context (source, UTM tags, location, browser, device) are its visit's,
the values its session took from its first event.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import and_, or_, select

from flask_tracking.events import current_store
from flask_tracking.events.store import Readable
from flask_tracking.events.tables import tables
from flask_tracking.reports.ranges import DateRange, as_utc

# What an export holds of an event: everything but the visitor's IP address and coordinates,
# which stay on the server even when STORE_VISITOR_IP keeps them for the owner's own page.
COLUMNS = (
    "id",
    "date",
    "event",
    "url",
    "pathname",
    "hostname",
    "referrer",
    "referrer_source",
    "utm_source",
    "utm_medium",
    "utm_campaign",
    "utm_term",
    "utm_content",
    "country_code",
    "region",
    "city",
    "browser",
    "browser_version",
    "os",
    "os_version",
    "device",
    "screen_size",
    "screen_width",
    "visitor_id",
    "session_id",
    "props",
)
STREAM_CHUNK = 2000
DAY_MS = 86_400_000

Position = tuple[datetime, int]
# (store column, its dictionary) of an event's own values, then of its session's.
EVENT_DIMS = {
    "event": ("name", "name"),
    "url": ("url", "url"),
    "pathname": ("page", "page"),
    "referrer": ("ref", "url"),
    "ip_address": ("ip", "ip"),
}
SESSION_DIMS = {
    "hostname": ("hostname", "hostname"),
    "referrer_source": ("source", "source"),
    "utm_source": ("utm_source", "utm_source"),
    "utm_medium": ("utm_medium", "utm_medium"),
    "utm_campaign": ("utm_campaign", "utm_campaign"),
    "utm_term": ("utm_term", "utm_term"),
    "utm_content": ("utm_content", "utm_content"),
    "country_code": ("country", "country"),
    "country_name": ("country_name", "country_name"),
    "region": ("region", "region"),
    "city": ("city", "city"),
    "postal_code": ("postal", "postal"),
    "coordinates": ("coordinates", "coordinates"),
    "browser": ("browser", "browser"),
    "browser_version": ("browser_version", "browser_version"),
    "os": ("os", "os"),
    "os_version": ("os_version", "os_version"),
    "device": ("device", "device"),
    "screen_size": ("screen", "screen"),
}


class InvalidCursor(ValueError):
    """A cursor this server did not make."""


@dataclass(frozen=True)
class StoredEvent:
    """One stored event with its visit's context, as exports and the raw events page show it."""

    site_id: int
    id: int
    date: datetime
    event: str
    url: str
    pathname: str | None
    hostname: str | None
    referrer: str | None
    referrer_source: str | None
    utm_source: str | None
    utm_medium: str | None
    utm_campaign: str | None
    utm_term: str | None
    utm_content: str | None
    country_code: str | None
    country_name: str | None
    region: str | None
    city: str | None
    postal_code: str | None
    coordinates: str | None
    browser: str | None
    browser_version: str | None
    os: str | None
    os_version: str | None
    device: str | None
    screen_size: str | None
    screen_width: int | None
    visitor_id: int
    session_id: int
    props: dict[str, Any] | None
    ip_address: str | None

    @property
    def location(self) -> str:
        """Return "City, ZIP" with missing parts left out; never "None"."""
        return ", ".join(part for part in (self.city, self.postal_code) if part)

    @property
    def latitude(self) -> float | None:
        """Return the latitude of the visit's location, if known."""
        return float(self.coordinates.split(",")[0]) if self.coordinates else None

    @property
    def longitude(self) -> float | None:
        """Return the longitude of the visit's location, if known."""
        return float(self.coordinates.split(",")[1]) if self.coordinates else None

    def values(self) -> tuple[Any, ...]:
        """Return the exported columns (COLUMNS), in order."""
        return tuple(getattr(self, name) for name in COLUMNS)


def read(
    store: Readable,
    site_id: int,
    start_ms: int,
    end_ms: int,
    *,
    after: Position | None = None,
    limit: int = 100,
    newest_first: bool = False,
    offset: int = 0,
) -> list[StoredEvent]:
    """Return up to `limit` events of the span after `after` (oldest first, or newest first)."""
    t = tables("duckdb" if store.engine == "duckdb" else "clickhouse")
    e = t.all_events.c
    text = store.encoding.text
    event_id = e.eid
    where = [e.site_id == site_id, e.ts >= start_ms, e.ts < end_ms]
    if after is not None:
        moment = int(after[0].timestamp() * 1000)
        where[1] = e.ts >= max(start_ms, moment)  # one lower bound: the index range starts here
        where.append(or_(e.ts > moment, and_(e.ts == moment, event_id > after[1])))
    order = (e.ts.desc(), e.eid.desc()) if newest_first else (e.ts, e.eid)
    rows = store.fetch(
        select(
            e.ts,
            event_id,
            e.sid,
            e.vd,
            e.width,
            e.props,
            *(text(e[column], dictionary) for column, dictionary in EVENT_DIMS.values()),
        )
        .where(*where)
        .order_by(*order)
        .limit(limit)
        .offset(offset)
    )
    if not rows:
        return []
    sessions = _sessions(
        store, site_id, {int(row[2]) for row in rows}, min(int(r[0]) for r in rows)
    )
    found = []
    for ts, number, sid, vd, width, props, *own in rows:
        event = dict(zip(EVENT_DIMS, own, strict=True))
        context = sessions.get(int(sid), {})
        found.append(
            StoredEvent(
                site_id=site_id,
                id=int(number),
                date=datetime.fromtimestamp(int(ts) / 1000, UTC),
                event=event["event"],
                url=event["url"],
                pathname=event["pathname"] or None,
                referrer=event["referrer"] or None,
                ip_address=event["ip_address"] or None,
                screen_width=int(width) or None,
                visitor_id=int(vd),
                session_id=int(sid),
                props=json.loads(props) if props else None,
                **{name: context.get(name) or None for name in SESSION_DIMS},
            )
        )
    return found


def _sessions(
    store: Readable, site_id: int, sids: set[int], earliest: int
) -> dict[int, dict[str, Any]]:
    """Return the context of the given sessions (they started at most a day before `earliest`)."""
    t = tables("duckdb" if store.engine == "duckdb" else "clickhouse")
    s = t.all_sessions.c
    text = store.encoding.text
    rows = store.fetch(
        select(
            s.sid, *(text(s[column], dictionary) for column, dictionary in SESSION_DIMS.values())
        ).where(s.site_id == site_id, s.ts >= earliest - DAY_MS, s.sid.in_(sorted(sids)))
    )
    return {int(sid): dict(zip(SESSION_DIMS, values, strict=True)) for sid, *values in rows}


def page(site_id: int, period: DateRange, after: Position | None, limit: int) -> list[StoredEvent]:
    """Return up to `limit` events of the period after `after`, oldest first."""
    return read(
        current_store(), site_id, _ms(period.start), _ms(period.end), after=after, limit=limit
    )


def stream(site_id: int, period: DateRange, chunk: int = STREAM_CHUNK) -> Iterator[StoredEvent]:
    """Yield every event of the period, oldest first, reading `chunk` at a time."""
    after: Position | None = None
    while True:
        rows = page(site_id, period, after, chunk)
        yield from rows
        if len(rows) < chunk:
            return
        after = position(rows[-1])


def position(row: StoredEvent) -> Position:
    """Return where a row stands in the (time, id) order."""
    return as_utc(row.date), int(row.id)


def cursor_of(at: Position) -> str:
    """Return an opaque cursor for a position."""
    text = f"{at[0].isoformat()}|{at[1]}"
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


def parse_cursor(cursor: str) -> Position:
    """Return the position of a cursor made by cursor_of; raise InvalidCursor otherwise."""
    try:
        text = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        moment, last_id = text.split("|")
        at = datetime.fromisoformat(moment)
        number = int(last_id)
        if at.tzinfo is None or not 0 < number < 2**63:
            raise ValueError(text)
        return as_utc(at), number
    except (ValueError, OverflowError, binascii.Error, UnicodeDecodeError):
        raise InvalidCursor("This cursor is not one the API returned.") from None


def _ms(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)
