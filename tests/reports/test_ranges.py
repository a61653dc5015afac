"""Report periods: presets at local midnights of the site's zone, DST, buckets, errors."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from itertools import pairwise
from zoneinfo import ZoneInfo

import pytest

from flask_tracking.reports.ranges import (
    MAX_CUSTOM_DAYS,
    PRESETS,
    DateRange,
    InvalidRange,
    buckets,
    parse_date,
    resolve,
)

# A Wednesday, 02:00 UTC: still Tuesday 9 June in New York, already 07:30 in Kolkata.
NOW = datetime(2026, 6, 10, 2, 0, tzinfo=UTC)
FIRST_EVENT = datetime(2024, 2, 29, 12, 0, tzinfo=UTC)
NY = "America/New_York"
HOUR = timedelta(hours=1)


def utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=UTC)


def local(moment: datetime, tz: str) -> datetime:
    return moment.astimezone(ZoneInfo(tz))


# (preset, zone, start, end, bucket): boundaries are the zone's local midnights, in UTC.
PRESET_CASES = [
    ("today", "UTC", utc(2026, 6, 10), utc(2026, 6, 11), "hour"),
    ("yesterday", "UTC", utc(2026, 6, 9), utc(2026, 6, 10), "hour"),
    ("7d", "UTC", utc(2026, 6, 4), utc(2026, 6, 11), "day"),
    ("30d", "UTC", utc(2026, 5, 12), utc(2026, 6, 11), "day"),
    ("month", "UTC", utc(2026, 6, 1), utc(2026, 6, 11), "day"),
    ("last_month", "UTC", utc(2026, 5, 1), utc(2026, 6, 1), "day"),
    ("year", "UTC", utc(2026, 1, 1), utc(2026, 6, 11), "week"),
    ("12mo", "UTC", utc(2025, 7, 1), utc(2026, 6, 11), "week"),
    ("all", "UTC", utc(2024, 2, 29), utc(2026, 6, 11), "month"),
    # New York: EDT (-4) in summer, EST (-5) on 1 January; its today is 9 June.
    ("today", NY, utc(2026, 6, 9, 4), utc(2026, 6, 10, 4), "hour"),
    ("yesterday", NY, utc(2026, 6, 8, 4), utc(2026, 6, 9, 4), "hour"),
    ("7d", NY, utc(2026, 6, 3, 4), utc(2026, 6, 10, 4), "day"),
    ("30d", NY, utc(2026, 5, 11, 4), utc(2026, 6, 10, 4), "day"),
    ("month", NY, utc(2026, 6, 1, 4), utc(2026, 6, 10, 4), "day"),
    ("last_month", NY, utc(2026, 5, 1, 4), utc(2026, 6, 1, 4), "day"),
    ("year", NY, utc(2026, 1, 1, 5), utc(2026, 6, 10, 4), "week"),
    ("12mo", NY, utc(2025, 7, 1, 4), utc(2026, 6, 10, 4), "week"),
    ("all", NY, utc(2024, 2, 29, 5), utc(2026, 6, 10, 4), "month"),
    # Kolkata: +5:30, so local midnight is 18:30 UTC the day before; its today is 10 June.
    ("today", "Asia/Kolkata", utc(2026, 6, 9, 18, 30), utc(2026, 6, 10, 18, 30), "hour"),
    ("yesterday", "Asia/Kolkata", utc(2026, 6, 8, 18, 30), utc(2026, 6, 9, 18, 30), "hour"),
    ("7d", "Asia/Kolkata", utc(2026, 6, 3, 18, 30), utc(2026, 6, 10, 18, 30), "day"),
    ("30d", "Asia/Kolkata", utc(2026, 5, 11, 18, 30), utc(2026, 6, 10, 18, 30), "day"),
    ("month", "Asia/Kolkata", utc(2026, 5, 31, 18, 30), utc(2026, 6, 10, 18, 30), "day"),
    ("last_month", "Asia/Kolkata", utc(2026, 4, 30, 18, 30), utc(2026, 5, 31, 18, 30), "day"),
    ("year", "Asia/Kolkata", utc(2025, 12, 31, 18, 30), utc(2026, 6, 10, 18, 30), "week"),
    ("12mo", "Asia/Kolkata", utc(2025, 6, 30, 18, 30), utc(2026, 6, 10, 18, 30), "week"),
    # The first event, 17:30 on 29 February in Kolkata, starts that local day.
    ("all", "Asia/Kolkata", utc(2024, 2, 28, 18, 30), utc(2026, 6, 10, 18, 30), "month"),
]


@pytest.mark.parametrize(("preset", "tz", "start", "end", "bucket"), PRESET_CASES)
def test_presets_start_and_end_at_local_midnights(
    preset: str, tz: str, start: datetime, end: datetime, bucket: str
) -> None:
    r = resolve(preset, tz, NOW, first_event=FIRST_EVENT)
    assert (r.start, r.end, r.bucket) == (start, end, bucket)
    assert r.start.utcoffset() == timedelta(0)
    assert local(r.start, tz).time() == local(r.end, tz).time() == datetime.min.time()


def test_every_preset_but_custom_is_covered_and_labelled() -> None:
    assert {case[0] for case in PRESET_CASES} == set(PRESETS) - {"custom"}
    labels = {p: resolve(p, "UTC", NOW).label for p in PRESETS if p != "custom"}
    assert labels["today"] == "Today"
    assert labels["7d"] == "Last 7 days"
    assert len(set(labels.values())) == len(labels)


@pytest.mark.parametrize(
    ("tz", "day", "hours"),
    [
        (NY, date(2026, 3, 8), 23),  # spring forward
        (NY, date(2026, 11, 1), 25),  # fall back
        (NY, date(2026, 6, 9), 24),
        ("Europe/Berlin", date(2026, 3, 29), 23),
        ("Europe/Berlin", date(2026, 10, 25), 25),
        ("Asia/Kolkata", date(2026, 3, 8), 24),  # no DST
        ("America/Santiago", date(2026, 9, 6), 23),  # the clocks skip midnight itself
    ],
)
def test_today_across_a_dst_change(tz: str, day: date, hours: int) -> None:
    noon = datetime(day.year, day.month, day.day, 12, tzinfo=ZoneInfo(tz))
    r = resolve("today", tz, noon)
    assert r.length == timedelta(hours=hours)
    assert local(r.start, tz).date() == day
    assert local(r.end, tz) == datetime(day.year, day.month, day.day, tzinfo=ZoneInfo(tz)) + (
        timedelta(days=1)
    )
    assert len(buckets(r, tz)) == hours


def test_spring_forward_in_new_york_exactly() -> None:
    r = resolve("today", NY, utc(2026, 3, 8, 17))
    assert (r.start, r.end) == (utc(2026, 3, 8, 5), utc(2026, 3, 9, 4))


def test_first_event_missing_or_in_the_future_means_today() -> None:
    today = resolve("today", NY, NOW)
    assert resolve("all", NY, NOW).start == today.start
    assert resolve("all", NY, NOW, first_event=NOW + timedelta(days=3)).start == today.start


def test_naive_datetimes_are_utc() -> None:
    naive_now = NOW.replace(tzinfo=None)
    naive_first = FIRST_EVENT.replace(tzinfo=None)
    assert resolve("all", NY, naive_now, first_event=naive_first) == resolve(
        "all", NY, NOW, first_event=FIRST_EVENT
    )


@pytest.mark.parametrize(
    ("start", "end", "bucket"),
    [
        (date(2026, 3, 8), date(2026, 3, 8), "hour"),
        (date(2026, 3, 8), date(2026, 3, 9), "hour"),
        (date(2026, 3, 8), date(2026, 3, 10), "day"),
        (date(2026, 1, 1), date(2026, 4, 2), "day"),  # 92 days
        (date(2026, 1, 1), date(2026, 4, 3), "week"),  # 93 days
        (date(2024, 1, 1), date(2024, 12, 31), "week"),  # 366 days
        (date(2025, 1, 1), date(2026, 1, 2), "month"),  # 367 days
        (date(2016, 1, 1), date(2016, 1, 1) + timedelta(days=MAX_CUSTOM_DAYS - 1), "month"),
    ],
)
def test_custom_ranges_are_inclusive_local_days(start: date, end: date, bucket: str) -> None:
    r = resolve("custom", NY, NOW, start=start, end=end)
    assert local(r.start, NY).date() == start
    assert local(r.end, NY).date() == end + timedelta(days=1)
    assert r.bucket == bucket
    assert r.label == f"{start} to {end}"


def test_a_custom_month_in_new_york() -> None:
    r = resolve("custom", NY, NOW, start=date(2026, 3, 1), end=date(2026, 3, 31))
    assert (r.start, r.end) == (utc(2026, 3, 1, 5), utc(2026, 4, 1, 4))
    assert r.length == timedelta(days=31) - HOUR


@pytest.mark.parametrize(
    ("preset", "length"),
    [
        ("today", timedelta(days=1)),
        ("7d", timedelta(days=7)),
        ("30d", timedelta(days=30)),
        ("last_month", timedelta(days=31)),  # May: the 31 days before it, not April
    ],
)
def test_previous_is_the_equal_length_just_before(preset: str, length: timedelta) -> None:
    r = resolve(preset, "UTC", NOW)
    before = r.previous()
    assert (before.end, before.length, before.bucket) == (r.start, length, r.bucket)
    assert before.previous().end == before.start


def test_previous_of_a_23_hour_day_is_23_hours() -> None:
    r = resolve("today", NY, utc(2026, 3, 8, 17))
    assert r.previous().length == timedelta(hours=23)
    assert r.previous().start == utc(2026, 3, 7, 6)


@pytest.mark.parametrize("tz", ["UTC", NY, "Asia/Kolkata"])
def test_hourly_buckets_of_a_normal_day(tz: str) -> None:
    r = resolve("today", tz, NOW)
    hours = buckets(r, tz)
    assert len(hours) == 24
    assert hours[0] == r.start
    assert all(later - earlier == HOUR for earlier, later in pairwise(hours))
    assert all(local(h, tz).minute == 0 for h in hours)


def test_the_repeated_hour_of_fall_back_is_two_buckets() -> None:
    hours = buckets(resolve("today", NY, utc(2026, 11, 1, 17)), NY)
    assert len(hours) == 25
    assert [local(h, NY).hour for h in hours[:4]] == [0, 1, 1, 2]
    assert hours[1:3] == [utc(2026, 11, 1, 5), utc(2026, 11, 1, 6)]


def test_the_skipped_hour_of_spring_forward_is_no_bucket() -> None:
    hours = buckets(resolve("today", NY, utc(2026, 3, 8, 17)), NY)
    assert [local(h, NY).hour for h in hours[:4]] == [0, 1, 3, 4]


@pytest.mark.parametrize("tz", ["UTC", NY, "Asia/Kolkata"])
def test_seven_daily_buckets_at_local_midnights(tz: str) -> None:
    r = resolve("7d", tz, NOW)
    days = buckets(r, tz)
    assert len(days) == 7
    assert days[0] == r.start
    assert all(local(d, tz).time() == datetime.min.time() for d in days)


def test_daily_buckets_across_spring_forward() -> None:
    r = resolve("custom", NY, NOW, start=date(2026, 3, 7), end=date(2026, 3, 10))
    assert buckets(r, NY) == [
        utc(2026, 3, 7, 5),
        utc(2026, 3, 8, 5),
        utc(2026, 3, 9, 4),
        utc(2026, 3, 10, 4),
    ]


def test_weekly_buckets_start_on_local_mondays() -> None:
    r = resolve("year", NY, NOW)  # 1 January 2026 was a Thursday
    weeks = buckets(r, NY)
    assert weeks[0] == utc(2025, 12, 29, 5)  # the Monday of the week holding r.start
    assert weeks[-1] == utc(2026, 6, 8, 4)  # the Monday of the week holding today
    assert len(weeks) == 24
    assert all(local(w, NY).weekday() == 0 for w in weeks)
    assert all(local(w, NY).time() == datetime.min.time() for w in weeks)
    assert utc(2026, 3, 2, 5) in weeks  # EST
    assert utc(2026, 3, 9, 4) in weeks  # EDT


def test_monthly_buckets_at_local_month_starts() -> None:
    r = resolve("all", NY, NOW, first_event=FIRST_EVENT)
    months = buckets(r, NY)
    assert months[0] == utc(2024, 2, 1, 5)
    assert months[-1] == utc(2026, 6, 1, 4)
    assert len(months) == 29  # February 2024 to June 2026
    assert all(local(m, NY).day == 1 for m in months)
    assert all(local(m, NY).time() == datetime.min.time() for m in months)


def test_buckets_in_another_zone_than_the_range() -> None:
    r = resolve("today", "UTC", NOW)
    hours = buckets(r, "Asia/Kolkata")
    assert hours[0] == utc(2026, 6, 9, 23, 30)  # the Kolkata hour holding 00:00 UTC
    assert len(hours) == 25


@pytest.mark.parametrize("preset", ["", "week", "TODAY", "custom "])
def test_an_unknown_preset_is_refused(preset: str) -> None:
    with pytest.raises(InvalidRange, match="Unknown date range"):
        resolve(preset, "UTC", NOW)


@pytest.mark.parametrize(
    "tz", ["Mars/Olympus", "", "../etc/passwd", "/etc/localtime", "America", "utc"]
)
def test_an_unknown_zone_is_refused(tz: str) -> None:
    with pytest.raises(InvalidRange, match="Unknown time zone"):
        resolve("today", tz, NOW)
    with pytest.raises(InvalidRange, match="Unknown time zone"):
        buckets(resolve("today", "UTC", NOW), tz)


@pytest.mark.parametrize(
    ("tz", "start", "end", "message"),
    [
        ("UTC", None, None, "needs a start date and an end date"),
        ("UTC", date(2026, 3, 1), None, "needs a start date and an end date"),
        ("UTC", None, date(2026, 3, 1), "needs a start date and an end date"),
        ("UTC", date(2026, 3, 2), date(2026, 3, 1), "must not be after its end"),
        ("UTC", datetime(2026, 3, 1, 12), date(2026, 3, 2), "calendar dates, not times"),
        (
            "UTC",
            date(2016, 1, 1),
            date(2016, 1, 1) + timedelta(days=MAX_CUSTOM_DAYS),
            f"at most {MAX_CUSTOM_DAYS} days",
        ),
        ("UTC", date(9999, 12, 30), date(9999, 12, 31), "outside the supported dates"),
        ("Asia/Kolkata", date(1, 1, 1), date(1, 1, 2), "outside the supported dates"),
    ],
)
def test_bad_custom_dates_are_refused(
    tz: str, start: date | None, end: date | None, message: str
) -> None:
    with pytest.raises(InvalidRange, match=message):
        resolve("custom", tz, NOW, start=start, end=end)


def test_parse_date() -> None:
    assert parse_date(" 2026-03-08 ") == date(2026, 3, 8)
    for text in ["", "2026-02-30", "yesterday", "08/03/2026"]:
        with pytest.raises(InvalidRange, match="YYYY-MM-DD"):
            parse_date(text)


def test_a_date_range_is_aware_and_not_empty() -> None:
    assert issubclass(InvalidRange, ValueError)
    with pytest.raises(InvalidRange, match="timezone-aware"):
        DateRange(datetime(2026, 1, 1), utc(2026, 1, 2), "x", "day")
    with pytest.raises(InvalidRange, match="end after it starts"):
        DateRange(utc(2026, 1, 2), utc(2026, 1, 2), "x", "day")


def test_comparisons_go_back_whole_weeks_a_year_or_to_chosen_dates() -> None:
    from flask_tracking.reports.ranges import comparison

    now = datetime(2026, 3, 31, 12, tzinfo=UTC)
    month = resolve("30d", "Europe/Paris", now)  # 2 March .. 31 March, local
    assert comparison(month, "Europe/Paris", "previous") == month  # the default, unchanged
    week = comparison(month, "Europe/Paris", "previous", match_weekday=True).previous()
    assert week.start.astimezone(ZoneInfo("Europe/Paris")).date() == date(2026, 1, 26)  # -35 d
    assert (
        week.start.astimezone(ZoneInfo("Europe/Paris")).weekday()
        == month.start.astimezone(ZoneInfo("Europe/Paris")).weekday()
    )
    assert week.bucket == month.bucket and "same weekdays" in week.label
    leap = resolve("custom", "UTC", now, start=date(2028, 2, 28), end=date(2028, 2, 29))
    year = comparison(leap, "UTC", "year").previous()
    assert (year.start.date(), year.end.date()) == (date(2027, 2, 28), date(2027, 3, 1))
    year_days = comparison(leap, "UTC", "year", match_weekday=True).previous()
    assert year_days.start.date() == date(2027, 3, 1)  # 364 days back: the same weekday
    assert year_days.start.weekday() == leap.start.weekday()
    chosen = comparison(month, "UTC", "custom", start=date(2025, 1, 1), end=date(2025, 1, 3))
    assert (chosen.previous().start, chosen.previous().end) == (
        datetime(2025, 1, 1, tzinfo=UTC),
        datetime(2025, 1, 4, tzinfo=UTC),
    )
    with pytest.raises(InvalidRange, match="Unknown comparison"):
        comparison(month, "UTC", "lunar")
