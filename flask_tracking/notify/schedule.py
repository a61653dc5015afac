"""When a scheduled report is due, in the site's own time (pure: no database, no clock).

A report is sent at a local hour of the site's zone on its day — every day, on a weekday, or
on the first of the month — and covers the period just finished: yesterday, the seven days
before, or the month before. Local times are wall-clock times, so across a DST change a
report is never skipped or doubled: an hour that does not exist that day (the spring jump)
sends at the first instant after the jump; an hour that happens twice (autumn) sends at the
first of the two.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Literal
from zoneinfo import ZoneInfo

Frequency = Literal["daily", "weekly", "monthly"]
FREQUENCIES: tuple[Frequency, ...] = ("daily", "weekly", "monthly")


@dataclass(frozen=True)
class Due:
    """A report to send: the local days it covers [first, last] and when it was due (UTC)."""

    first: date
    last: date
    send_at: datetime


def send_instant(day: date, hour: int, zone: ZoneInfo) -> datetime:
    """The UTC instant of local `hour`:00 on `day`. fold=0 reads a wall time with the offset
    in force before a change: an hour that happens twice is its first occurrence, and an hour
    that a spring jump skips (which begins on a whole hour everywhere) lands on the jump
    itself, the first instant after it (02:00 in Berlin on the last Sunday of March: 03:00)."""
    return datetime.combine(day, time(hour), tzinfo=zone).astimezone(UTC)


def period_sent_on(frequency: Frequency, day: date) -> tuple[date, date]:
    """The local days [first, last] that a report sent on `day` covers."""
    last = day - timedelta(days=1)
    if frequency == "daily":
        return last, last
    if frequency == "weekly":
        return day - timedelta(days=7), last
    first = (day.replace(day=1) - timedelta(days=1)).replace(day=1)
    return first, last


def _send_days(frequency: Frequency, weekday: int, today: date) -> list[date]:
    """Today's and the previous scheduled send day, latest first."""
    if frequency == "daily":
        return [today, today - timedelta(days=1)]
    if frequency == "weekly":
        latest = today - timedelta(days=(today.weekday() - weekday) % 7)
        return [latest, latest - timedelta(days=7)]
    first = today.replace(day=1)
    return [first, (first - timedelta(days=1)).replace(day=1)]


def latest_due(
    frequency: Frequency,
    weekday: int,
    hour: int,
    zone: ZoneInfo,
    *,
    now: datetime,
    since: datetime,
) -> Due | None:
    """The latest report due by `now` (aware) whose send time is not before `since` (when the
    schedule was made): after downtime only the latest missed one, so at most one late."""
    today = now.astimezone(zone).date()
    for day in _send_days(frequency, weekday, today):
        at = send_instant(day, hour, zone)
        if at <= now:
            if at < since:
                return None
            first, last = period_sent_on(frequency, day)
            return Due(first, last, at)
    return None
