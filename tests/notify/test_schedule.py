"""The report schedule under a frozen clock walked forward ten minutes at a time: a week, a
month end, and both DST changes of Europe/Berlin and of America/Sao_Paulo (which had DST
until 2019) — each report sent exactly once, at the local hour, covering the right days."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from flask_tracking.notify.schedule import Due, Frequency, latest_due, period_sent_on

BERLIN = ZoneInfo("Europe/Berlin")
SAO_PAULO = ZoneInfo("America/Sao_Paulo")


def walk(
    frequency: Frequency, weekday: int, hour: int, zone: ZoneInfo, start: datetime, days: int
) -> list[Due]:
    """Run the scheduler every ten minutes from `start` for `days`; keep what it sends, once
    per period (as the job's record per period does)."""
    sent: dict[date, Due] = {}
    now = start
    while now < start + timedelta(days=days):
        due = latest_due(frequency, weekday, hour, zone, now=now, since=start)
        if due is not None and due.first not in sent:
            assert due.send_at <= now < due.send_at + timedelta(minutes=10)  # on time
            sent[due.first] = due
        now += timedelta(minutes=10)
    return list(sent.values())


def local(due: Due, zone: ZoneInfo) -> str:
    return due.send_at.astimezone(zone).strftime("%Y-%m-%d %H:%M %z")


def test_daily_at_two_across_berlins_spring_jump_and_autumn_repeat() -> None:
    spring = walk("daily", 0, 2, BERLIN, datetime(2026, 3, 27, tzinfo=UTC), 4)
    assert [local(d, BERLIN) for d in spring] == [
        "2026-03-27 02:00 +0100",
        "2026-03-28 02:00 +0100",
        "2026-03-29 03:00 +0200",  # 02:00 does not exist that day: the jump's own instant
        "2026-03-30 02:00 +0200",
    ]
    assert [(d.first, d.last) for d in spring][2] == (date(2026, 3, 28), date(2026, 3, 28))
    autumn = walk("daily", 0, 2, BERLIN, datetime(2026, 10, 24, tzinfo=UTC), 3)
    assert [local(d, BERLIN) for d in autumn] == [
        "2026-10-24 02:00 +0200",
        "2026-10-25 02:00 +0200",  # 02:00 happens twice: the first, and only once
        "2026-10-26 02:00 +0100",
    ]


def test_weekly_on_monday_through_both_changes_and_a_month_end() -> None:
    sent = walk("weekly", 0, 8, BERLIN, datetime(2026, 3, 20, tzinfo=UTC), 21)
    assert [local(d, BERLIN) for d in sent] == [
        "2026-03-23 08:00 +0100",
        "2026-03-30 08:00 +0200",
        "2026-04-06 08:00 +0200",
    ]
    assert [(d.first, d.last) for d in sent] == [
        (date(2026, 3, 16), date(2026, 3, 22)),
        (date(2026, 3, 23), date(2026, 3, 29)),  # a week of 167 hours: still seven days
        (date(2026, 3, 30), date(2026, 4, 5)),
    ]


def test_monthly_on_the_first_covers_the_month_before() -> None:
    sent = walk("monthly", 0, 7, BERLIN, datetime(2026, 1, 20, tzinfo=UTC), 50)
    assert [(local(d, BERLIN), d.first, d.last) for d in sent] == [
        ("2026-02-01 07:00 +0100", date(2026, 1, 1), date(2026, 1, 31)),
        ("2026-03-01 07:00 +0100", date(2026, 2, 1), date(2026, 2, 28)),
    ]


def test_sao_paulo_midnight_that_did_not_exist_and_the_hour_that_came_twice() -> None:
    # DST began at 00:00 on 2018-11-04 (clocks to 01:00) and ended at 00:00 on 2019-02-17
    # (back to 23:00 of the 16th).
    spring = walk("daily", 0, 0, SAO_PAULO, datetime(2018, 11, 3, tzinfo=UTC), 3)
    assert [local(d, SAO_PAULO) for d in spring] == [
        "2018-11-03 00:00 -0300",
        "2018-11-04 01:00 -0200",
        "2018-11-05 00:00 -0200",
    ]
    autumn = walk("daily", 0, 23, SAO_PAULO, datetime(2019, 2, 15, 12, tzinfo=UTC), 3)
    assert [local(d, SAO_PAULO) for d in autumn] == [
        "2019-02-15 23:00 -0200",
        "2019-02-16 23:00 -0200",  # the first of the two 23:00s
        "2019-02-17 23:00 -0300",
    ]


def test_after_downtime_only_the_latest_missed_report_is_sent_late() -> None:
    made = datetime(2026, 5, 1, tzinfo=UTC)
    back = datetime(2026, 5, 9, 12, tzinfo=UTC)  # daily at 06:00, down for a week
    due = latest_due("daily", 0, 6, BERLIN, now=back, since=made)
    assert due is not None and (due.first, due.last) == (date(2026, 5, 8), date(2026, 5, 8))
    # Made after today's send time: nothing until tomorrow's (no report of before it existed).
    assert latest_due("daily", 0, 6, BERLIN, now=back, since=back - timedelta(hours=1)) is None


@pytest.mark.parametrize(
    ("frequency", "day", "period"),
    [
        ("daily", date(2026, 3, 1), (date(2026, 2, 28), date(2026, 2, 28))),
        ("weekly", date(2026, 1, 5), (date(2025, 12, 29), date(2026, 1, 4))),
        ("monthly", date(2024, 3, 1), (date(2024, 2, 1), date(2024, 2, 29))),
        ("monthly", date(2026, 1, 1), (date(2025, 12, 1), date(2025, 12, 31))),
    ],
)
def test_the_period_a_report_covers(frequency: Frequency, day: date, period: tuple) -> None:
    assert period_sent_on(frequency, day) == period
