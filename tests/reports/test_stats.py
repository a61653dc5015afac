"""The reporting layer against numbers worked out by hand (see dataset.py), on both paths.

Every check runs twice: on rollups (what unfiltered reports read) and on raw events (what
filtered reports read, and what a site gets while its rollups are being rebuilt).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import date, datetime, timedelta
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import select

from flask_tracking.events import current_store
from flask_tracking.events.tables import tables
from flask_tracking.extensions import db
from flask_tracking.ingest import drain
from flask_tracking.reports import queries, stats
from flask_tracking.reports.dimensions import DIMENSIONS, InvalidQuery, parse_filters
from flask_tracking.reports.ranges import DateRange, resolve
from flask_tracking.tracking.models import Site
from tests.conftest import count_rows, geolite2_2018
from tests.reports import dataset

PATHS = ("rollups", "raw")


@pytest.fixture
def site(app_factory: Any, site_in: Any) -> Iterator[tuple[Flask, int]]:
    app = app_factory(**geolite2_2018())
    site_id = site_in(app)
    with app.app_context():
        db.session.get(Site, site_id).timezone = dataset.TIMEZONE
        db.session.commit()
    dataset.load(app, site_id)
    drain(app)
    yield app, site_id


def days(first: date, last: date) -> DateRange:
    return resolve("custom", dataset.TIMEZONE, datetime.now(), start=first, end=last)


def run(app: Flask, site_id: int, path: str, job: Callable[[], Any]) -> Any:
    """Run `job` in an app context, on rollups or on marked rows only (as filters do)."""
    token = stats.USE_ROLLUPS.set(path == "rollups")
    try:
        with app.app_context():
            return job()
    finally:
        stats.USE_ROLLUPS.reset(token)


def query(site_id: int, period: DateRange, filters: tuple[str, ...] = ()) -> stats.ReportQuery:
    return stats.ReportQuery(site_id, dataset.TIMEZONE, period, parse_filters(list(filters)))


@pytest.mark.parametrize("path", PATHS)
def test_the_day_of_the_dst_change_matches_the_hand_count(site: Any, path: str) -> None:
    app, site_id = site
    march_8 = days(date(2026, 3, 8), date(2026, 3, 8))
    assert march_8.length == timedelta(hours=23)
    result = run(app, site_id, path, lambda: stats.aggregate(query(site_id, march_8)))
    now = result.current
    # S2, S3 and S4 started on local 03-08; S1 (04:30Z) is still 03-07 in New York.
    assert (now.visitors, now.visits, now.pageviews, now.events) == (3, 3, 4, 1)
    assert now.bounces == 2
    assert now.bounce_rate == pytest.approx(200 / 3)
    assert now.visit_duration == pytest.approx(1500 / 3)  # S3 lasted 25 minutes, the rest 0
    assert now.views_per_visit == pytest.approx(4 / 3)
    # The previous 23 hours, [03-07 06:00Z, 03-08 05:00Z), hold only S1.
    before = result.previous
    assert (before.visitors, before.visits, before.pageviews, before.bounces) == (1, 1, 2, 0)
    assert before.duration == pytest.approx(600)
    assert result.change("visits") == pytest.approx(200.0)
    assert result.change("bounce_rate") == pytest.approx(200 / 3)  # in points, from 0 %


@pytest.mark.parametrize("path", PATHS)
def test_three_days_count_each_session_on_its_local_day(site: Any, path: str) -> None:
    app, site_id = site
    period = days(date(2026, 3, 7), date(2026, 3, 9))
    now = run(app, site_id, path, lambda: stats.aggregate(query(site_id, period))).current
    # A counts on 03-07 and 03-08, B on 03-08, C on 03-08 and 03-09: visitors add up by day.
    assert (now.visitors, now.visits, now.pageviews, now.bounces) == (5, 5, 7, 3)
    series = run(app, site_id, path, lambda: stats.timeseries(query(site_id, period), "visits"))
    assert series.bucket == "day"
    assert [(p.start.isoformat(), p.value) for p in series.points] == [
        ("2026-03-07T05:00:00+00:00", 1),
        ("2026-03-08T05:00:00+00:00", 3),
        ("2026-03-09T04:00:00+00:00", 1),
    ]


@pytest.mark.parametrize("path", PATHS)
def test_hourly_chart_of_the_short_day_has_23_buckets(site: Any, path: str) -> None:
    app, site_id = site
    march_8 = days(date(2026, 3, 8), date(2026, 3, 8))
    series = run(app, site_id, path, lambda: stats.timeseries(query(site_id, march_8), "pageviews"))
    assert series.bucket == "hour"
    assert len(series.points) == 23
    nonzero = {p.start.strftime("%dT%H:%M"): p.value for p in series.points if p.value}
    assert nonzero == {"08T05:00": 1, "08T06:00": 1, "08T07:00": 1, "09T03:00": 1}
    visitors = run(app, site_id, path, lambda: stats.timeseries(query(site_id, march_8)))
    assert {p.start.strftime("%dT%H:%M"): p.value for p in visitors.points if p.value} == {
        "08T05:00": 1,
        "08T06:00": 1,
        "09T03:00": 1,
    }
    assert sum(p.previous or 0 for p in visitors.points) == 1  # A's S1, the evening before


def ranked(app: Flask, site_id: int, path: str, name: str, period: DateRange, *filters: str) -> Any:
    def job() -> Any:
        result = stats.breakdown(query(site_id, period, filters), DIMENSIONS[name])
        return [(row.label, row.visitors, row.visits, row.pageviews) for row in result.rows]

    return run(app, site_id, path, job)


@pytest.mark.parametrize("path", PATHS)
def test_every_breakdown_of_the_dst_day(site: Any, path: str) -> None:
    app, site_id = site
    day = days(date(2026, 3, 8), date(2026, 3, 8))
    assert ranked(app, site_id, path, "page", day) == [
        ("/blog", 2, 0, 2),
        ("/", 1, 0, 1),
        ("/pricing", 1, 0, 1),
    ]
    assert ranked(app, site_id, path, "entry_page", day) == [
        ("/blog", 2, 2, 3),
        ("/pricing", 1, 1, 1),
    ]
    assert ranked(app, site_id, path, "exit_page", day) == [
        ("/", 1, 1, 2),
        ("/blog", 1, 1, 1),
        ("/pricing", 1, 1, 1),
    ]
    assert ranked(app, site_id, path, "source", day) == [
        ("Direct / None", 2, 2, 2),
        ("Hacker News", 1, 1, 2),
    ]
    assert ranked(app, site_id, path, "utm_source", day)[0] == ("(not set)", 2, 2, 3)
    assert ("newsletter", 1, 1, 1) in ranked(app, site_id, path, "utm_source", day)
    assert ranked(app, site_id, path, "utm_campaign", day)[1] == ("spring", 1, 1, 1)
    # Countries read as names (ranked by visitors, then by code: GB, SE, US).
    assert ranked(app, site_id, path, "country", day) == [
        ("United Kingdom", 1, 1, 1),
        ("Sweden", 1, 1, 1),
        ("United States", 1, 1, 2),
    ]
    assert ranked(app, site_id, path, "city", day) == [
        ("Stockholm", 1, 1, 1),
        ("Syracuse", 1, 1, 2),
        ("Willesden", 1, 1, 1),
    ]
    assert ranked(app, site_id, path, "browser", day) == [
        ("Chrome", 1, 1, 1),
        ("Firefox", 1, 1, 1),
        ("Mobile Safari", 1, 1, 2),
    ]
    assert ranked(app, site_id, path, "device", day) == [("desktop", 2, 2, 2), ("mobile", 1, 1, 2)]
    assert [row[:2] for row in ranked(app, site_id, path, "event", day)] == [("Signup", 1)]
    props = run(app, site_id, path, lambda: stats.event_props(query(site_id, day), "Signup"))
    assert [(p.key, p.value, p.visitors, p.events) for p in props] == [("plan", "pro", 1, 1)]


@pytest.mark.parametrize("path", ["raw"])
@pytest.mark.parametrize("inline", [256, 1, 0], ids=["codes-written", "some-written", "looked-up"])
def test_filters_narrow_every_number(site: Any, path: str, inline: int) -> None:
    app, site_id = site
    with app.app_context():
        # A filter's codes are written into the statements when few, else looked up by each.
        current_store().encoding.inline_codes = inline
    period = days(date(2026, 3, 7), date(2026, 3, 9))

    def totals(*filters: str) -> tuple[int, int, int, int]:
        def job() -> tuple[int, int, int, int]:
            m = stats.aggregate(query(site_id, period, filters), compare=False).current
            return m.visitors, m.visits, m.pageviews, m.bounces

        return run(app, site_id, path, job)  # type: ignore[no-any-return]

    assert totals("country:is:US") == (1, 1, 2, 0)
    us = run(
        app,
        site_id,
        path,
        lambda: stats.aggregate(query(site_id, period, ("country:is:US",))),
    )
    assert us.current.visit_duration == pytest.approx(1500)  # B's S3 lasted 25 minutes
    assert us.previous.visits == 0
    assert totals("country:is_not:US") == (4, 4, 5, 3)
    assert totals("country:is:US", "device:is:desktop") == (0, 0, 0, 0)
    assert totals("source:is:") == (3, 3, 3, 3)  # direct: S2, S4, S5
    assert totals("city:contains:stock") == (2, 2, 2, 2)  # case-insensitive
    # A page filter keeps the sessions that viewed the page and counts only its pageviews.
    assert totals("page:is:/pricing") == (2, 2, 2, 1)
    # An event filter keeps the sessions holding the event, with all their pageviews.
    assert totals("event:is:Signup") == (1, 1, 2, 0)
    # Several values: "is" keeps any of them, "is not" none of them; "does not contain" is
    # the complement of "contains" (case-insensitive both), with "not set" kept.
    gb, se = totals("country:is:GB"), totals("country:is:SE")
    assert totals("country:is:US|GB") == tuple(u + g for u, g in zip((1, 1, 2, 0), gb, strict=True))
    assert totals("country:is_not:US|GB") == se == totals("country:is:SE|XX")
    assert totals("country:is_not:US|GB|SE") == (0, 0, 0, 0)
    assert totals("city:not_contains:STOCK") == tuple(
        a - b for a, b in zip(totals(), totals("city:contains:stock"), strict=True)
    )
    assert totals("city:contains:stock|nowhere") == totals("city:contains:stock")
    assert totals("city:not_contains:stock|nowhere") == totals("city:not_contains:stock")
    assert totals("page:not_contains:/pri") == totals("page:is_not:/pricing")
    assert ranked(app, site_id, path, "page", period, "country:is:GB") == [
        ("/pricing", 2, 0, 2),
        ("/", 1, 0, 1),
    ]
    assert ranked(app, site_id, path, "country", period, "page:is:/blog") == [
        ("Sweden", 1, 1, 1),
        ("United States", 1, 1, 2),
    ]


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize(
    "filters", [(), ("country:is_not:US",), ("page:is:/pricing",), ("event:is:Signup",)]
)
def test_every_panel_read_at_once_equals_each_panel_read_alone(
    site: Any, path: str, filters: tuple[str, ...]
) -> None:
    """The dashboard reads all its panels in one pass per table (GROUPING SETS): the numbers
    are those of each breakdown asked for alone."""
    app, site_id = site
    period = days(date(2026, 3, 6), date(2026, 3, 10))

    def panels(together: bool) -> tuple[Any, ...]:
        with stats.Report(query(site_id, period, filters)) as report:
            if together:  # as the dashboard does: the days come with the panels
                report.prefetch(DIMENSIONS.values())
            return (
                report.aggregate(),
                report.timeseries("pageviews"),
                {name: report.breakdown(dim, limit=100).rows for name, dim in DIMENSIONS.items()},
            )

    alone = run(app, site_id, path, lambda: panels(False))
    assert run(app, site_id, path, lambda: panels(True)) == alone
    assert alone[0].current.visits > 0
    assert sum(row.visits for row in alone[2]["country"]) == alone[0].current.visits


@pytest.mark.parametrize(
    "filters", [(), ("country:is_not:US",), ("device:is:desktop", "source:is:"), ("page:is:/",)]
)
def test_panels_summed_from_combinations_equal_panels_read_directly(
    site: Any, filters: tuple[str, ...], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Over more than a month, the panels of narrow dimensions (country, browser, …) are
    summed from the sessions grouped by their combinations first: the numbers are those of
    the sessions grouped directly."""
    app, site_id = site
    period = days(date(2026, 2, 1), date(2026, 3, 31))
    set_counts: list[int] = []
    grouped = queries.Queries._grouped

    def spy(self: Any, key_sets: list[list[Any]], *args: Any) -> Any:
        set_counts.append(len(key_sets))
        return grouped(self, key_sets, *args)

    monkeypatch.setattr(queries.Queries, "_grouped", spy)

    def panels(span: timedelta) -> tuple[Any, ...]:
        monkeypatch.setattr(queries, "NARROW_SPAN", span)
        set_counts.clear()
        with stats.Report(query(site_id, period, filters)) as report:
            report.prefetch(DIMENSIONS.values())
            found = (
                report.aggregate(),
                {name: report.breakdown(dim, limit=100).rows for name, dim in DIMENSIONS.items()},
            )
        return found, list(set_counts)

    (direct, direct_sets) = run(app, site_id, "raw", lambda: panels(timedelta(days=10_000)))
    (combined, combined_sets) = run(app, site_id, "raw", lambda: panels(timedelta(0)))
    assert combined == direct
    assert direct[0].current.visits > 0
    narrow = len(queries.NARROW)
    assert narrow not in direct_sets
    # Sessions selected by a page are read in one statement whatever the period.
    assert (narrow in combined_sets) == (not any(f.startswith("page:") for f in filters))


def test_filtered_and_unfiltered_paths_agree_for_utc_and_other_zones(
    app_factory: Any, site_in: Any
) -> None:
    """Shift the same events through several zones: rollups equal raw queries every time."""
    app = app_factory(**geolite2_2018())
    site_id = site_in(app)
    dataset.load(app, site_id)
    drain(app)
    for tz in ("UTC", "Asia/Kolkata", "America/St_Johns", "Europe/Paris"):
        with app.app_context():
            db.session.get(Site, site_id).timezone = tz
            db.session.commit()
        drain(app)  # the writer sees the new zone and re-marks the site's events
        period = resolve(
            "custom", tz, datetime.now(), start=date(2026, 3, 6), end=date(2026, 3, 10)
        )
        q = stats.ReportQuery(site_id, tz, period)
        for path in PATHS:
            numbers = run(
                app,
                site_id,
                path,
                lambda q=q: (
                    stats.aggregate(q),
                    stats.timeseries(q, "visitors"),
                    [stats.breakdown(q, d).rows for d in DIMENSIONS.values()],
                ),
            )
            if path == "rollups":
                expected = numbers
            else:
                assert numbers == expected, tz
        assert expected[0].current.visits == 5


def test_rollups_follow_late_events_and_a_zone_change(site: Any) -> None:
    app, site_id = site
    with app.app_context():
        assert current_store().zones()[site_id] == dataset.TIMEZONE
        assert count_rows(app, "recent") == 0  # every day of the data set is closed
    # A late event of visitor B, on a day already closed: the day is reopened and closed again.
    dataset.spool(app, site_id, dataset.B, dataset.utc(8, 7, 30), "/late")
    drain(app)
    day = days(date(2026, 3, 8), date(2026, 3, 8))
    for path in PATHS:
        # B was already counted on 03-08: one more pageview, not one more visitor.
        assert ("/late", 1, 0, 1) in ranked(app, site_id, path, "page", day)
        result = run(app, site_id, path, lambda: stats.aggregate(query(site_id, day))).current
        assert (result.visitors, result.visits, result.pageviews) == (3, 3, 5)
    with app.app_context():
        db.session.get(Site, site_id).timezone = "UTC"
        db.session.commit()
    drain(app)
    with app.app_context():
        store = current_store()
        assert store.zones()[site_id] == "UTC"
        r = tables(store.engine).rollups.c
        local_days = {
            d for (d,) in store.fetch(select(r.day).where(r.site_id == site_id).distinct())
        }
    assert local_days == {
        (date(2026, 3, 8) - date(1970, 1, 1)).days,
        (date(2026, 3, 9) - date(1970, 1, 1)).days,
    }


def test_pagination_and_sorting(site: Any) -> None:
    app, site_id = site
    period = days(date(2026, 3, 7), date(2026, 3, 9))
    for path in PATHS:
        page = run(
            app,
            site_id,
            path,
            lambda: stats.breakdown(
                query(site_id, period), DIMENSIONS["page"], limit=2, offset=2, sort="pageviews"
            ),
        )
        # "/", "/blog" and "/pricing" tie on 2 pageviews and 2 visitors: by value, then "/docs".
        assert page.total == 4
        assert [row.value for row in page.rows] == ["/pricing", "/docs"]


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda q: stats.breakdown(q, DIMENSIONS["page"], sort="drop table"), "Unknown sort"),
        (lambda q: stats.breakdown(q, DIMENSIONS["page"], limit=0), "limit"),
        (lambda q: stats.breakdown(q, DIMENSIONS["page"], offset=-1), "offset"),
        (lambda q: stats.timeseries(q, "bounces; --"), "Unknown metric"),
    ],
)
def test_bad_arguments_are_refused_by_name(site: Any, call: Any, message: str) -> None:
    app, site_id = site
    period = days(date(2026, 3, 8), date(2026, 3, 8))
    with app.app_context(), pytest.raises(InvalidQuery, match=message):
        call(query(site_id, period))


def test_realtime_counts_visitors_of_the_last_five_minutes(app: Flask, site_in: Any) -> None:
    site_id = site_in(app)
    now = datetime.now(dataset.utc(1, 0, 0).tzinfo)
    dataset.spool(app, site_id, dataset.A, now - timedelta(minutes=1), "/")
    dataset.spool(app, site_id, dataset.B, now - timedelta(minutes=2), "/")
    dataset.spool(app, site_id, dataset.C, now - timedelta(minutes=9), "/")
    drain(app)
    with app.app_context():
        assert stats.realtime(site_id, now) == 2


@pytest.mark.parametrize("path", PATHS)
def test_a_visitor_whose_context_changes_within_a_day_counts_once_per_value(
    app_factory: Any, site_in: Any, path: str
) -> None:
    """Markers assume nothing constant within a visitor-day: one visitor (same address and
    browser, so the same visitor id all day) comes from Google in the morning and directly,
    on a resized window, in the afternoon. Each source and screen size has that one visitor;
    the day has one visitor and two visits; a filter keeps only its own visit."""
    from tests.api.helpers import CHROME, spool_event

    app = app_factory(**geolite2_2018())
    site_id = site_in(app)
    who = {"ip": "89.160.20.112", "user_agent": CHROME}
    day = datetime(2026, 3, 10, tzinfo=dataset.UTC)
    morning, afternoon = day + timedelta(hours=9), day + timedelta(hours=15)
    spool_event(
        app, site_id, {**who, "width": 1920}, morning, "/", referrer="https://www.google.com/"
    )
    spool_event(app, site_id, {**who, "width": 1920}, morning + timedelta(minutes=2), "/pricing")
    spool_event(app, site_id, {**who, "width": 390}, afternoon, "/docs")
    drain(app)
    period = DateRange(day, day + timedelta(days=1), "day", "day")

    def report(*filters: str) -> Any:
        q = stats.ReportQuery(site_id, "UTC", period, parse_filters(list(filters)))
        return stats.Report(q)

    def counts() -> Any:
        top = report().aggregate(compare=False).current
        sources = {
            r.value: (r.visitors, r.visits) for r in report().breakdown(DIMENSIONS["source"]).rows
        }
        screens = {r.value: r.visitors for r in report().breakdown(DIMENSIONS["screen"]).rows}
        google = report("source:is:Google").aggregate(compare=False).current
        return (
            (top.visitors, top.visits, top.pageviews),
            sources,
            screens,
            (google.visitors, google.visits, google.pageviews),
        )

    found = run(app, site_id, path, counts)
    assert found == (
        (1, 2, 3),
        {"Google": (1, 1), "": (1, 1)},
        {"desktop": 1, "mobile": 1},
        (1, 1, 2),
    )
