"""Site-local days in SQL: a time zone's UTC offsets over a span of time, as one expression."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from functools import lru_cache
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import case, literal

from flask_tracking.events.sql import intdiv

DAY_MS = 86_400_000


def offset_ms(zone: ZoneInfo, ts_ms: int) -> int:
    """Return the zone's UTC offset at a moment, in milliseconds."""
    moment = datetime.fromtimestamp(ts_ms / 1000, UTC).astimezone(zone)
    return int((moment.utcoffset() or timedelta()).total_seconds() * 1000)


def local_day(zone: ZoneInfo, ts_ms: int) -> int:
    """Return the site-local day of a moment, in days since 1970-01-01."""
    return (ts_ms + offset_ms(zone, ts_ms)) // DAY_MS


@lru_cache(maxsize=256)
def offset_changes(zone: ZoneInfo, start_ms: int, end_ms: int) -> tuple[tuple[int, int], ...]:
    """Return (from ms, offset ms) for each offset the zone has in [start, end).

    Found by stepping a day at a time and bisecting to the millisecond of each change.
    """
    changes = [(start_ms, offset_ms(zone, start_ms))]
    at = start_ms
    while at < end_ms:
        step = min(at + DAY_MS, end_ms)
        if offset_ms(zone, step) != changes[-1][1]:
            before, after = at, step
            while after - before > 1:
                middle = (before + after) // 2
                if offset_ms(zone, middle) == changes[-1][1]:
                    before = middle
                else:
                    after = middle
            changes.append((after, offset_ms(zone, after)))
        at = step
    return tuple(changes)


def local_day_sql(ts: Any, zone: ZoneInfo, start_ms: int, end_ms: int) -> Any:
    """Return a SQL expression of the local day of `ts` (ms), valid for ts in [start, end)."""
    changes = offset_changes(zone, start_ms, end_ms)
    offset: Any = literal(changes[0][1])
    if len(changes) > 1:
        offset = case(
            *((ts < changes[i + 1][0], literal(changes[i][1])) for i in range(len(changes) - 1)),
            else_=literal(changes[-1][1]),
        )
    return intdiv(ts + offset, DAY_MS)


class DayCache:
    """Local days of moments for many sites' zones, cached per zone and UTC hour."""

    def __init__(self) -> None:
        self._offsets: dict[tuple[str, int], int] = {}

    def day(self, zone_name: str, ts_ms: int) -> int:
        """Return the local day of `ts_ms` in the named zone."""
        hour = ts_ms // 3_600_000
        key = (zone_name, hour)
        offset = self._offsets.get(key)
        if offset is None:
            zone = ZoneInfo(zone_name)
            first = offset_ms(zone, hour * 3_600_000)
            if offset_ms(zone, hour * 3_600_000 + 3_599_999) != first:
                return local_day(zone, ts_ms)  # the offset changes within this hour: no cache
            if len(self._offsets) > 100_000:
                self._offsets.clear()
            offset = self._offsets[key] = first
        return (ts_ms + offset) // DAY_MS
