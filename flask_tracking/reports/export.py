"""Raw events of a site and period, oldest first, read by keyset: (date, id) after a position.

A page continues exactly after the last event of the previous one, however many events
arrive meanwhile, and each page is one indexed range scan (ix_visits_site_date) however deep
into the period it is, unlike OFFSET. `stream` reads a whole period in such pages, holding one
page of plain rows (never ORM objects) in memory at a time.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Iterator
from datetime import datetime
from typing import Any

from sqlalchemy import and_, or_, select

from flask_tracking.extensions import db
from flask_tracking.reports.ranges import DateRange, as_utc
from flask_tracking.tracking.models import Visit

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

Position = tuple[datetime, int]


class InvalidCursor(ValueError):
    """A cursor this server did not make."""


def page(site_id: int, period: DateRange, after: Position | None, limit: int) -> list[Any]:
    """Return up to `limit` events of the period after `after`, oldest first, as rows."""
    columns = [getattr(Visit, name) for name in COLUMNS]
    start = period.start if after is None else max(period.start, after[0])
    # One lower bound, computed here: given two, SQLite bounds its index scan by the period's
    # start and filters its way to the cursor (a page at the end of a year took 8x longer).
    conditions = [Visit.site_id == site_id, Visit.date >= start, Visit.date < period.end]
    if after is not None:
        moment, last_id = after
        conditions.append(or_(Visit.date > moment, and_(Visit.date == moment, Visit.id > last_id)))
    query = select(*columns).where(*conditions).order_by(Visit.date, Visit.id).limit(limit)
    return list(db.session.execute(query))


def stream(site_id: int, period: DateRange, chunk: int = STREAM_CHUNK) -> Iterator[Any]:
    """Yield every event of the period, oldest first, reading `chunk` at a time."""
    after: Position | None = None
    while True:
        rows = page(site_id, period, after, chunk)
        yield from rows
        if len(rows) < chunk:
            return
        after = position(rows[-1])


def position(row: Any) -> Position:
    """Return where a row stands in the (date, id) order."""
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
