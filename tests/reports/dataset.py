"""A small hand-built data set around a DST change, stored through the real writer.

The site is in America/New_York; DST started on 2026-03-08 at 02:00 EST (07:00 UTC), so that
local day lasts 23 hours: [2026-03-08 05:00 UTC, 2026-03-09 04:00 UTC).

Visitor A (GB, Firefox on Windows)
  S1  03-08 04:30Z /  (from Google), 04:40Z /pricing     local 03-07 23:30 EST, 2 pageviews
  S2  03-08 05:20Z /pricing (direct)                      local 03-08 00:20 EST, bounce
Visitor B (US, New York, Safari on iPhone)
  S3  03-08 06:50Z /blog (from Hacker News), 07:10Z /,     local 01:50 EST .. 03:15 EDT
      07:15Z custom event Signup {"plan": "pro"} on /      25 minutes, 2 pageviews
Visitor C (SE, Chrome on Windows)
  S4  03-09 03:30Z /blog?utm_source=newsletter…           local 03-08 23:30 EDT, bounce
  S5  03-09 04:10Z /docs (direct)                          local 03-09 00:10 EDT, bounce
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from flask import Flask

from flask_tracking.ingest.records import EventRecord

TIMEZONE = "America/New_York"
FIREFOX = "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:133.0) Gecko/20100101 Firefox/133.0"
SAFARI = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Version/18.1 Mobile/15E148 Safari/604.1"
)
CHROME = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/131.0.0.0 Safari/537.36"
)
A = {"ip": "81.2.69.142", "user_agent": FIREFOX, "width": 1440}
B = {"ip": "24.24.24.24", "user_agent": SAFARI, "width": 390}
C = {"ip": "89.160.20.112", "user_agent": CHROME, "width": 1920}


def utc(day: int, hour: int, minute: int) -> datetime:
    """Return 2026-03-`day` hour:minute UTC."""
    return datetime(2026, 3, day, hour, minute, tzinfo=UTC)


EVENTS: list[tuple[dict[str, Any], datetime, str, dict[str, Any]]] = [
    (A, utc(8, 4, 30), "/", {"referrer": "https://www.google.com/"}),
    (A, utc(8, 4, 40), "/pricing", {}),
    (A, utc(8, 5, 20), "/pricing", {}),
    (B, utc(8, 6, 50), "/blog", {"referrer": "https://news.ycombinator.com/item?id=1"}),
    (B, utc(8, 7, 10), "/", {}),
    (B, utc(8, 7, 15), "/", {"name": "Signup", "props": {"plan": "pro"}}),
    (C, utc(9, 3, 30), "/blog?utm_source=newsletter&utm_medium=email&utm_campaign=spring", {}),
    (C, utc(9, 4, 10), "/docs", {}),
]


def spool(
    app: Flask, site_id: int, who: dict[str, Any], at: datetime, path: str, **extra: Any
) -> None:
    """Spool one event as the collector would have, at a chosen time."""
    fields = {"name": "pageview", **who, **extra}
    record = EventRecord(
        event_id=uuid.uuid4().hex,
        site_id=site_id,
        timestamp_ms=int(at.timestamp() * 1000),
        url="https://example.com" + path,
        **fields,
    )
    app.extensions["ingest"].spool.append(record.to_line())


def load(app: Flask, site_id: int) -> None:
    """Spool the whole data set (the caller drains)."""
    for who, at, path, extra in EVENTS:
        spool(app, site_id, who, at, path, **extra)
