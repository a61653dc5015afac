"""The open days' refresh: marking only what was appended gives exactly what marking every row
again gives — sessions, visitor-day ids and every marker — batch after batch, whatever the order
events arrive in.

Two stores receive the same batches: one refreshes incrementally (events/appended.py), the
other rebuilds every mark after each batch (derive.py over all rows). Their marked rows must
be equal after every batch.
"""

from __future__ import annotations

import random
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select

from flask_tracking.events import schema
from flask_tracking.events.embedded import EmbeddedStore
from flask_tracking.events.store import Batch
from flask_tracking.events.tables import tables

MINUTE = 60_000
# The day the United States moved their clocks forward (07:00 UTC): sites' local days and
# visitors' sessions cross local midnight and a DST change inside the UTC day.
DAY_START = int(datetime(2026, 3, 8, tzinfo=UTC).timestamp() * 1000)
ZONES = {1: ZoneInfo("America/New_York"), 2: ZoneInfo("Asia/Kolkata")}
GAPS = (0, 1, 1, 2, 5, 10, 29, 30, 31, 45, 120)  # minutes between a visitor's events


def local_day(site_id: int, ts: int) -> int:
    moment = datetime.fromtimestamp(ts / 1000, ZONES[site_id])
    return (moment.date() - datetime(1970, 1, 1).date()).days


class Traffic:
    """Random visitors of two sites over two UTC days, events mostly in order, some late."""

    def __init__(self, seed: int) -> None:
        self.rng = random.Random(seed)
        self.clock: dict[tuple[int, int], int] = {}
        self.made = 0

    def event(self) -> dict[str, Any]:
        rng = self.rng
        site = rng.choice((1, 2))
        visitor = rng.randrange(12) + 100 * rng.choice((0, 0, 0, 1))  # 1xx: the second day
        key = (site, visitor)
        if key not in self.clock:
            day = DAY_START + (86_400_000 if visitor >= 100 else 0)
            self.clock[key] = day + rng.randrange(0, 20 * 60) * MINUTE
        roll = rng.random()
        if roll < 0.06:  # late: maybe before its session, even before an earlier one
            ts = self.clock[key] - rng.randrange(0, 90) * MINUTE - rng.randrange(1000)
        elif roll < 0.16:  # a little late: within its session, before events stored already
            ts = self.clock[key] - rng.randrange(0, 5 * MINUTE)
        elif roll < 0.22:  # the same moment as the latest
            ts = self.clock[key]
        else:
            ts = self.clock[key] + rng.choice(GAPS) * MINUTE + rng.randrange(1000)
        day_start = DAY_START + (86_400_000 if visitor >= 100 else 0)
        ts = min(max(ts, day_start), day_start + 86_400_000 - 1)  # within its UTC day
        self.clock[key] = max(self.clock[key], ts)
        pv = rng.random() < 0.8
        self.made += 1
        row: dict[str, Any] = {name: None for name in schema.CONTEXT_NAMES}
        row.update(
            site_id=site,
            ts=ts,
            visitor=visitor * 7919 + site,
            day=local_day(site, ts),
            pv=pv,
            name="pageview" if pv else rng.choice(("signup", "buy")),
            page=rng.choice(("/", "/a", "/b", "/c")),
            url=None,
            ref=rng.choice((None, "https://news.example/", "https://search.example/")),
            width=rng.choice((0, 390, 1440)),
            props="",
            ip=None,
            source=rng.choice((None, "Search", "News")),
            country=rng.choice(("DE", "DE", "DE", "IN", None)),  # a GeoIP update mid-day
            browser=rng.choice(("Firefox", "Firefox", "Safari")),
            hostname="example.com",
        )
        row["url"] = "https://example.com" + row["page"]
        return row


def marked(store: EmbeddedStore) -> tuple[list[Any], list[Any]]:
    sessions, events = tables("duckdb").recent_sessions, tables("duckdb").recent_events
    return (
        store.fetch(select(sessions).order_by(*sessions.c)),
        store.fetch(select(events).order_by(events.c.site_id, events.c.eid)),
    )


@pytest.mark.parametrize("seed", range(1, 9))
def test_marking_what_was_appended_gives_what_a_rebuild_gives(seed: int) -> None:
    incremental, rebuilt = EmbeddedStore(":memory:"), EmbeddedStore(":memory:")
    traffic = Traffic(seed)
    offset = 0
    try:
        for _batch in range(12):
            rows = [traffic.event() for _ in range(traffic.rng.randrange(1, 60))]
            offset += len(rows)
            for store in (incremental, rebuilt):
                store.append(Batch("node", "segment", offset, [dict(row) for row in rows]))
            incremental.refresh()
            assert incremental._marked_through is not None  # an incremental refresh next time
            rebuilt._rewritten()
            rebuilt.refresh()
            assert marked(incremental) == marked(rebuilt)
        sessions, events = marked(incremental)
        assert len(events) == traffic.made
        # The traffic exercised what the incremental marking must get right.
        names = [column.name for column in schema.EVENTS]
        vm, p1 = names.index("vm"), names.index("p1")
        assert any(row[vm] for row in events) and not all(row[vm] for row in events)
        assert any(row[p1] for row in events) and not all(row[p1] for row in events)
        assert len({row[names.index("day")] for row in events}) >= 2  # local days differ
        assert len(sessions) > 20
    finally:
        incremental.close()
        rebuilt.close()
