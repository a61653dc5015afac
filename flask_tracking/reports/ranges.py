"""Report periods: presets resolved at local midnights of the site's zone, and their buckets.

Pure functions: no database, no Flask. Every DateRange is half-open, [start, end), in aware
UTC; its boundaries are local midnights converted to UTC, so a day across a DST change lasts
23 or 25 hours. The bucket (chart granularity) follows the number of local days covered:

    up to 2 days -> "hour", up to 92 (a quarter) -> "day", up to 366 -> "week", else "month".
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, time, timedelta
from functools import cache
from typing import Literal
from zoneinfo import ZoneInfo, available_timezones

Bucket = Literal["hour", "day", "week", "month"]

PRESETS = (
    "today",
    "yesterday",
    "7d",
    "30d",
    "month",
    "last_month",
    "year",
    "12mo",
    "all",
    "custom",
)
MAX_CUSTOM_DAYS = 3660  # about ten years: beyond that even monthly charts stop being readable

# What each preset is called, in the period menu and the chart's legend.
LABELS = {
    "today": "Today",
    "yesterday": "Yesterday",
    "7d": "Last 7 days",
    "30d": "Last 30 days",
    "month": "This month",
    "last_month": "Last month",
    "year": "Year to date",
    "12mo": "Last 12 months",
    "all": "All time",
    "custom": "Custom range",
}


# What a period can be compared with (dashboard parameter compare=…).
COMPARISONS = {
    "previous": "Previous period",
    "year": "Same period last year",
    "custom": "Chosen dates",
}


class InvalidRange(ValueError):
    """Raised for an unknown preset or zone, or custom dates that make no period."""


@dataclass(frozen=True, slots=True)
class DateRange:
    """A report period [start, end) in aware UTC, its label and its chart bucket."""

    start: datetime
    end: datetime
    label: str
    bucket: Bucket
    # What the period is compared with, when it is not the period just before (comparison()).
    compared: DateRange | None = None

    def __post_init__(self) -> None:
        if self.start.tzinfo is None or self.end.tzinfo is None:
            raise InvalidRange("A date range needs timezone-aware boundaries.")
        if self.start >= self.end:
            raise InvalidRange("A date range must end after it starts.")

    @property
    def length(self) -> timedelta:
        """Return the elapsed time between start and end."""
        return self.end - self.start

    def previous(self) -> DateRange:
        """Return the period of equal elapsed length that ends where this one starts.

        For every preset, calendar ones included, "previous" means exactly that: "last month"
        of 31 days compares with the 31 days before it, not with the calendar month before.
        Equal lengths keep comparisons fair; across a DST change the boundaries can land an
        hour off local midnight, which only shifts an hour of data between the two periods.
        A period given another comparison (same period last year, a chosen range, matched
        weekdays) returns that one instead: every report compares through this method.
        """
        if self.compared is not None:
            return self.compared
        return DateRange(self.start - self.length, self.start, "Previous period", self.bucket)


def resolve(
    preset: str,
    tz: str,
    now: datetime,
    *,
    start: date | None = None,
    end: date | None = None,
    first_event: datetime | None = None,
) -> DateRange:
    """Return the period a preset means at `now` for a site in zone `tz`.

    Periods "so far" (today, 7d, 30d, month, year, 12mo, all) end at tomorrow's local midnight,
    so today is always a whole day. `start` and `end` (inclusive local days) are read only for
    "custom", `first_event` only for "all" (its local day starts the period; today when None).
    Naive datetimes are taken as UTC, as SQLite returns stored ones.
    """
    zone = zone_named(tz)
    today = as_utc(now).astimezone(zone).date()
    tomorrow = today + timedelta(days=1)
    first_of_month = today.replace(day=1)
    match preset:
        case "today":
            days = (today, tomorrow)
        case "yesterday":
            days = (today - timedelta(days=1), today)
        case "7d":
            days = (today - timedelta(days=6), tomorrow)
        case "30d":
            days = (today - timedelta(days=29), tomorrow)
        case "month":
            days = (first_of_month, tomorrow)
        case "last_month":
            days = (_add_months(first_of_month, -1), first_of_month)
        case "year":
            days = (today.replace(month=1, day=1), tomorrow)
        case "12mo":
            days = (_add_months(first_of_month, -11), tomorrow)
        case "all":
            first = today if first_event is None else as_utc(first_event).astimezone(zone).date()
            days = (min(first, today), tomorrow)  # an event "from the future" is clock skew
        case "custom":
            return _custom(zone, start, end)
        case _:
            raise InvalidRange(
                f"Unknown date range {preset!r}; choose one of {', '.join(PRESETS)}."
            )
    return _local_days(zone, days[0], days[1], LABELS[preset])


def buckets(r: DateRange, tz: str) -> list[datetime]:
    """Return the UTC start of every bucket of `r`, in order, so empty buckets still chart.

    Buckets are local hours, days, weeks (starting Monday) or months of zone `tz`. The first
    is the one containing r.start, so for weeks and months it may begin before r.start.
    """
    zone = zone_named(tz)
    local_start = r.start.astimezone(zone).replace(tzinfo=None)
    # Hours use both folds: a repeated hour (DST ends) is two buckets, a skipped one
    # (DST starts) maps onto the next hour's instant and disappears in the set.
    folds = (0, 1) if r.bucket == "hour" else (0,)
    instants: set[datetime] = set()
    for wall in _walls(local_start, r.bucket):
        found = {wall.replace(tzinfo=zone, fold=fold).astimezone(UTC) for fold in folds}
        if min(found) >= r.end:
            break
        instants.update(moment for moment in found if moment < r.end)
    ordered = sorted(instants)
    first = max((moment for moment in ordered if moment <= r.start), default=ordered[0])
    return [moment for moment in ordered if moment >= first]


def parse_date(text: str) -> date:
    """Return the day a YYYY-MM-DD string names, as typed in a custom range."""
    try:
        return date.fromisoformat(text.strip())
    except ValueError:
        raise InvalidRange(f"{text!r} is not a date; use YYYY-MM-DD.") from None


def zone_named(tz: str) -> ZoneInfo:
    """Return the zone of an IANA name, or raise InvalidRange."""
    # Checking the list first keeps paths ("../etc/passwd", "/etc/localtime") and
    # directories ("America") away from ZoneInfo's file lookup.
    if tz not in _known_zones():
        raise InvalidRange(f"Unknown time zone {tz!r}.")
    return ZoneInfo(tz)


@cache
def _known_zones() -> frozenset[str]:
    return frozenset(available_timezones())


def _custom(zone: ZoneInfo, start: date | None, end: date | None) -> DateRange:
    if not isinstance(start, date) or not isinstance(end, date):
        raise InvalidRange("A custom range needs a start date and an end date.")
    if isinstance(start, datetime) or isinstance(end, datetime):
        raise InvalidRange("A custom range takes calendar dates, not times.")
    if start > end:
        raise InvalidRange("The start date of a custom range must not be after its end date.")
    if (end - start).days + 1 > MAX_CUSTOM_DAYS:
        raise InvalidRange(f"A custom range can cover at most {MAX_CUSTOM_DAYS} days.")
    try:
        return _local_days(zone, start, end + timedelta(days=1), f"{start} to {end}")
    except OverflowError:  # year 1 or 9999: local midnight has no UTC datetime
        raise InvalidRange("That custom range is outside the supported dates.") from None


def _local_days(zone: ZoneInfo, first: date, stop: date, label: str) -> DateRange:
    """Return local days [first, stop) of `zone` in UTC, with the bucket their number calls for."""
    return DateRange(
        local_midnight(first, zone), local_midnight(stop, zone), label, _bucket_for(stop - first)
    )


def local_midnight(day: date, zone: ZoneInfo) -> datetime:
    """Return the UTC instant at which local day `day` begins in `zone`."""
    # fold=0 maps a midnight that a DST jump skips (America/Santiago) onto the jump itself,
    # the day's first instant.
    return datetime.combine(day, time(0), tzinfo=zone).astimezone(UTC)


def _bucket_for(span: timedelta) -> Bucket:
    if span.days <= 2:
        return "hour"
    if span.days <= 92:
        return "day"
    if span.days <= 366:
        return "week"
    return "month"


def _walls(local_start: datetime, bucket: Bucket) -> Iterator[datetime]:
    """Yield naive local bucket starts from the one containing local_start onwards."""
    if bucket == "hour":
        wall = local_start.replace(minute=0, second=0, microsecond=0)
        while True:
            yield wall
            wall += timedelta(hours=1)  # naive arithmetic: wall-clock hours
    day = local_start.date()
    if bucket == "week":
        day -= timedelta(days=day.weekday())
    elif bucket == "month":
        day = day.replace(day=1)
    while True:
        yield datetime.combine(day, time(0))
        if bucket == "day":
            day += timedelta(days=1)
        elif bucket == "week":
            day += timedelta(days=7)
        else:
            day = _add_months(day, 1)


def next_month(day: date) -> date:
    """Return the first day of the month after the one holding `day`."""
    return _add_months(day.replace(day=1), 1)


def _add_months(first_of_month: date, months: int) -> date:
    index = first_of_month.year * 12 + first_of_month.month - 1 + months
    return date(index // 12, index % 12 + 1, 1)


def as_utc(moment: datetime) -> datetime:
    """Return an aware UTC datetime (SQLite hands back naive ones, which are UTC)."""
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def comparison(
    period: DateRange,
    tz: str,
    mode: str,
    *,
    match_weekday: bool = False,
    start: date | None = None,
    end: date | None = None,
) -> DateRange:
    """Return `period` compared with: the previous period ("previous"), the same local days a
    year before ("year"; 29 February compares with the 28th), or the local days `start` to
    `end` ("custom"). With `match_weekday`, "previous" goes back a whole number of weeks
    (at least the period's length) and "year" 52 weeks, so Mondays meet Mondays."""
    if mode not in COMPARISONS:
        raise InvalidRange(
            f"Unknown comparison {mode[:40]!r}; choose one of {', '.join(COMPARISONS)}."
        )
    zone = zone_named(tz)
    first = period.start.astimezone(zone).date()
    stop = (period.end - timedelta(microseconds=1)).astimezone(zone).date() + timedelta(days=1)
    days = (stop - first).days
    label = COMPARISONS[mode]
    if mode == "previous" and not match_weekday:
        return period
    if mode == "previous":
        back = timedelta(days=-(-days // 7) * 7)
        found = _local_days(zone, first - back, stop - back, label + ", same weekdays")
    elif mode == "year" and match_weekday:
        back = timedelta(days=364)
        found = _local_days(zone, first - back, stop - back, label + ", same weekdays")
    elif mode == "year":
        found = _local_days(zone, _year_before(first), _year_before(stop), label)
    else:
        if start is None or end is None:
            raise InvalidRange("A chosen comparison needs compare_from= and compare_to= dates.")
        if start > end:
            raise InvalidRange("The comparison's start must not be after its end.")
        if (end - start).days + 1 > MAX_CUSTOM_DAYS:
            raise InvalidRange(f"A comparison covers at most {MAX_CUSTOM_DAYS} days.")
        found = _local_days(zone, start, end + timedelta(days=1), label)
    return replace(period, compared=replace(found, bucket=period.bucket))


def _year_before(day: date) -> date:
    try:
        return day.replace(year=day.year - 1)
    except ValueError:  # 29 February
        return day.replace(year=day.year - 1, day=28)
