"""GET /api/v1/sites/{id}/stats/…: numbers worked out by hand, the same numbers as the
reporting layer for the same view, periods in the site's zone, and the 400s for bad input.

The data set (a UTC site; the API's clock is frozen at 2026-03-10 12:00 UTC), stored through
the real writer so geo, user agent, sessions and rollups are what production would make:

today, 2026-03-10 (local = UTC)
  GB  09:00 /  (from Google), 09:05 /pricing, 09:06 Signup {plan: free}   2 pv, 360 s
  US  10:00 /blog (from Hacker News), 10:03 /docs, 10:04 /docs            3 pv, 240 s
  SE  11:00 /, 11:02 Signup {plan: pro, seats: 3}                         1 pv (bounce), 120 s
  FR1 08:00 /blog/post-1, 08:10 /pricing, 08:15 Signup {plan: pro}        2 pv, 900 s
  FR2 07:00 /docs                                                         1 pv (bounce), 0 s
  → visitors 5, visits 5, pageviews 9, bounces 2 (40 %), duration 1620/5 = 324 s, 1.8 pv/visit
yesterday, 2026-03-09
  GB  09:00 /                                                             1 pv (bounce)
  US  14:00 /blog, 14:10 /docs                                            2 pv, 600 s
  → visitors 2, visits 2, pageviews 3, bounces 1 (50 %), 300 s, 1.5 pv/visit
earlier: SE 2026-03-01 12:00 /, GB 2026-02-15 12:00 /pricing, US 2025-12-20 12:00 /
  (one bounce each)
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlencode

import pytest
from flask import Flask
from flask.testing import FlaskClient
from werkzeug.datastructures import MultiDict
from werkzeug.test import TestResponse

from flask_tracking.ingest import drain
from flask_tracking.reports import stats
from flask_tracking.reports.dimensions import DIMENSIONS
from flask_tracking.reports.params import parse_view, query_for
from flask_tracking.users import apikeys
from tests.api.helpers import (
    FR1,
    FR2,
    GB,
    SE,
    US,
    error_of,
    freeze,
    new_site,
    snapshot,
    spool_event,
    update_site,
    utc,
)
from tests.conftest import geolite2_2018

NOW = utc(2026, 3, 10, 12)
GOOGLE = {"referrer": "https://www.google.com/"}
HACKER_NEWS = {"referrer": "https://news.ycombinator.com/item?id=1"}

EVENTS: list[tuple[dict[str, Any], datetime, str, dict[str, Any]]] = [
    # today
    (GB, utc(2026, 3, 10, 9, 0), "/", GOOGLE),
    (GB, utc(2026, 3, 10, 9, 5), "/pricing", {}),
    (GB, utc(2026, 3, 10, 9, 6), "/pricing", {"name": "Signup", "props": {"plan": "free"}}),
    (US, utc(2026, 3, 10, 10, 0), "/blog", HACKER_NEWS),
    (US, utc(2026, 3, 10, 10, 3), "/docs", {}),
    (US, utc(2026, 3, 10, 10, 4), "/docs", {}),
    (SE, utc(2026, 3, 10, 11, 0), "/", {}),
    (SE, utc(2026, 3, 10, 11, 2), "/", {"name": "Signup", "props": {"plan": "pro", "seats": 3}}),
    (FR1, utc(2026, 3, 10, 8, 0), "/blog/post-1", {}),
    (FR1, utc(2026, 3, 10, 8, 10), "/pricing", {}),
    (FR1, utc(2026, 3, 10, 8, 15), "/pricing", {"name": "Signup", "props": {"plan": "pro"}}),
    (FR2, utc(2026, 3, 10, 7, 0), "/docs", {}),
    # yesterday
    (GB, utc(2026, 3, 9, 9, 0), "/", {}),
    (US, utc(2026, 3, 9, 14, 0), "/blog", {}),
    (US, utc(2026, 3, 9, 14, 10), "/docs", {}),
    # earlier
    (SE, utc(2026, 3, 1, 12, 0), "/", {}),
    (GB, utc(2026, 2, 15, 12, 0), "/pricing", {}),
    (US, utc(2025, 12, 20, 12, 0), "/", {}),
]


@pytest.fixture
def app(app_factory: Any) -> Flask:
    """The app, with the bundled GeoLite2 database for locations."""
    return app_factory(**geolite2_2018())  # type: ignore[no-any-return]


@pytest.fixture
def data(app: Flask, site: int, monkeypatch: pytest.MonkeyPatch) -> int:
    """User A's site with the data set stored, and the API's clock frozen at NOW."""
    for who, at, path, extra in EVENTS:
        spool_event(app, site, who, at, path, **extra)
    assert drain(app) == len(EVENTS)
    freeze(monkeypatch, NOW)
    return site


def get(
    client: FlaskClient, site_id: int, report: str, headers: dict[str, str], **args: Any
) -> Any:
    """GET a stats report with query arguments (lists repeat the name); return the answer."""
    query = urlencode(args, doseq=True)
    return client.get(f"/api/v1/sites/{site_id}/stats/{report}?{query}", headers=headers)


def ok(response: TestResponse) -> Any:
    """Return the JSON of a 200 answer."""
    assert response.status_code == 200, response.get_data(as_text=True)
    assert response.mimetype == "application/json"
    return response.get_json()


def values(body: dict[str, Any], part: str = "value") -> dict[str, Any]:
    return {name: result[part] for name, result in body["results"].items()}


# -- aggregate -------------------------------------------------------------------------------


def test_aggregate_returns_every_metric_with_the_previous_period_and_changes(
    client: FlaskClient, data: int, reader: dict[str, str]
) -> None:
    body = ok(get(client, data, "aggregate", reader, period="today"))
    assert body["site_id"] == data
    assert body["period"] == {
        "preset": "today",
        "start": "2026-03-10T00:00:00Z",
        "end": "2026-03-11T00:00:00Z",
        "timezone": "UTC",
        "bucket": "hour",
    }
    assert body["previous_period"] == {
        "preset": "previous",
        "start": "2026-03-09T00:00:00Z",
        "end": "2026-03-10T00:00:00Z",
        "timezone": "UTC",
        "bucket": "hour",
    }
    assert body["filters"] == []
    assert body["results"] == {
        "visitors": {"value": 5.0, "previous": 2.0, "change": 150.0},
        "visits": {"value": 5.0, "previous": 2.0, "change": 150.0},
        "pageviews": {"value": 9.0, "previous": 3.0, "change": 200.0},
        "views_per_visit": {"value": 1.8, "previous": 1.5, "change": 20.0},
        "bounce_rate": {"value": 40.0, "previous": 50.0, "change": -10.0},  # points
        "visit_duration": {"value": 324.0, "previous": 300.0, "change": 8.0},
    }


def test_metrics_selects_a_subset(client: FlaskClient, data: int, reader: dict[str, str]) -> None:
    body = ok(
        get(client, data, "aggregate", reader, period="today", metrics=["visitors", "bounce_rate"])
    )
    assert body["results"] == {
        "visitors": {"value": 5.0, "previous": 2.0, "change": 150.0},
        "bounce_rate": {"value": 40.0, "previous": 50.0, "change": -10.0},
    }
    repeated = ok(
        get(client, data, "aggregate", reader, period="today", metrics=["pageviews", "pageviews"])
    )
    assert repeated["results"] == {"pageviews": {"value": 9.0, "previous": 3.0, "change": 200.0}}


def test_compare_false_leaves_out_the_previous_period(
    client: FlaskClient, data: int, reader: dict[str, str]
) -> None:
    body = ok(get(client, data, "aggregate", reader, period="today", compare="false"))
    assert body["previous_period"] is None
    assert values(body) == {
        "visitors": 5.0,
        "visits": 5.0,
        "pageviews": 9.0,
        "views_per_visit": 1.8,
        "bounce_rate": 40.0,
        "visit_duration": 324.0,
    }
    assert set(values(body, "previous").values()) == {None}
    assert set(values(body, "change").values()) == {None}


def test_a_change_from_nothing_is_null(
    client: FlaskClient, data: int, reader: dict[str, str]
) -> None:
    # The 30 days before "30d" (2026-01-10 … 2026-02-08) hold nothing.
    body = ok(get(client, data, "aggregate", reader, period="30d"))
    assert body["previous_period"]["start"] == "2026-01-10T00:00:00Z"
    assert body["results"]["visitors"] == {"value": 9.0, "previous": 0.0, "change": None}
    assert body["results"]["bounce_rate"]["change"] is None  # no visits to compare with
    # Yesterday, compared with the day before (nothing): the values are there, no change.
    body = ok(get(client, data, "aggregate", reader, period="yesterday"))
    assert body["results"]["visits"] == {"value": 2.0, "previous": 0.0, "change": None}


PRESETS = [
    # preset, start, end, bucket, (visitors, visits, pageviews)
    ("today", "2026-03-10", "2026-03-11", "hour", (5, 5, 9)),
    ("yesterday", "2026-03-09", "2026-03-10", "hour", (2, 2, 3)),
    ("7d", "2026-03-04", "2026-03-11", "day", (7, 7, 12)),
    ("30d", "2026-02-09", "2026-03-11", "day", (9, 9, 14)),
    ("month", "2026-03-01", "2026-03-11", "day", (8, 8, 13)),
    ("last_month", "2026-02-01", "2026-03-01", "day", (1, 1, 1)),
    ("year", "2026-01-01", "2026-03-11", "day", (9, 9, 14)),
    ("12mo", "2025-04-01", "2026-03-11", "week", (10, 10, 15)),
    ("all", "2025-12-20", "2026-03-11", "day", (10, 10, 15)),
]


@pytest.mark.parametrize(("preset", "start", "end", "bucket", "counts"), PRESETS)
def test_each_preset_resolves_at_the_frozen_now(
    client: FlaskClient,
    data: int,
    reader: dict[str, str],
    preset: str,
    start: str,
    end: str,
    bucket: str,
    counts: tuple[int, int, int],
) -> None:
    body = ok(get(client, data, "aggregate", reader, period=preset))
    period = body["period"]
    assert (period["preset"], period["start"], period["end"], period["bucket"]) == (
        preset,
        f"{start}T00:00:00Z",
        f"{end}T00:00:00Z",
        bucket,
    )
    results = values(body)
    assert (results["visitors"], results["visits"], results["pageviews"]) == counts


def test_a_custom_period_covers_its_days_inclusively(
    client: FlaskClient, data: int, reader: dict[str, str]
) -> None:
    args = {"period": "custom", "from": "2026-03-09", "to": "2026-03-10"}
    body = ok(get(client, data, "aggregate", reader, **args))
    assert body["period"] == {
        "preset": "custom",
        "start": "2026-03-09T00:00:00Z",
        "end": "2026-03-11T00:00:00Z",
        "timezone": "UTC",
        "bucket": "hour",
    }
    assert body["previous_period"]["start"] == "2026-03-07T00:00:00Z"
    assert values(body)["visitors"] == 7.0
    assert values(body)["pageviews"] == 12.0
    one_day = {"period": "custom", "from": "2026-03-01", "to": "2026-03-01"}
    assert values(ok(get(client, data, "aggregate", reader, **one_day)))["visits"] == 1.0


def test_filters_combine_with_and(client: FlaskClient, data: int, reader: dict[str, str]) -> None:
    def totals(*filters: str) -> tuple[float, ...]:
        body = ok(get(client, data, "aggregate", reader, period="today", filter=list(filters)))
        assert body["filters"] == list(filters)
        r = values(body)
        return (r["visitors"], r["visits"], r["pageviews"], r["bounce_rate"], r["visit_duration"])

    assert totals("country:is:FR") == (2, 2, 3, 50.0, 450.0)
    # A page filter keeps the sessions that viewed such a page, and counts only those pages.
    assert totals("page:contains:/blog") == (2, 2, 2, 0.0, 570.0)
    assert totals("country:is:FR", "page:contains:/blog") == (1, 1, 1, 0.0, 900.0)
    assert totals("country:is:FR", "country:is_not:FR") == (0, 0, 0, 0.0, 0.0)
    assert totals("source:is:") == (3, 3, 4, 66.6667, 340.0)  # direct: SE, FR1, FR2


def test_the_previous_period_is_filtered_too(
    client: FlaskClient, data: int, reader: dict[str, str]
) -> None:
    body = ok(get(client, data, "aggregate", reader, period="today", filter="country:is:US"))
    assert body["results"]["visitors"] == {"value": 1.0, "previous": 1.0, "change": 0.0}
    assert body["results"]["pageviews"] == {"value": 3.0, "previous": 2.0, "change": 50.0}


# -- time zones ------------------------------------------------------------------------------


def test_the_sites_zone_moves_the_day_boundaries(
    app: Flask, client: FlaskClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    # One event at 23:30 UTC on 2026-03-10: still the 10th in UTC, already 08:30 on the 11th
    # in Tokyo (UTC+9, no DST). The clock reads 00:10 UTC on the 11th (09:10 in Tokyo).
    utc_site, utc_key = new_site(app, scope=apikeys.READ)
    tokyo_site, tokyo_key = new_site(app, scope=apikeys.READ, timezone="Asia/Tokyo")
    late = utc(2026, 3, 10, 23, 30)
    for site_id in (utc_site, tokyo_site):
        spool_event(app, site_id, GB, late, "/late")
    assert drain(app) == 2
    freeze(monkeypatch, utc(2026, 3, 11, 0, 10))

    def visits(site_id: int, key: dict[str, str], **args: str) -> tuple[float, Any]:
        body = ok(get(client, site_id, "aggregate", key, **args))
        return body["results"]["visits"]["value"], body["period"]

    count, period = visits(utc_site, utc_key, period="today")
    assert (count, period["start"], period["timezone"]) == (0, "2026-03-11T00:00:00Z", "UTC")
    assert visits(utc_site, utc_key, period="yesterday")[0] == 1
    count, period = visits(tokyo_site, tokyo_key, period="today")
    assert (count, period["timezone"]) == (1, "Asia/Tokyo")
    assert (period["start"], period["end"]) == ("2026-03-10T15:00:00Z", "2026-03-11T15:00:00Z")
    assert visits(tokyo_site, tokyo_key, period="yesterday")[0] == 0
    # Custom days are the site's local days as well.
    tenth = {"period": "custom", "from": "2026-03-10", "to": "2026-03-10"}
    eleventh = {"period": "custom", "from": "2026-03-11", "to": "2026-03-11"}
    assert visits(utc_site, utc_key, **tenth)[0] == 1
    assert visits(utc_site, utc_key, **eleventh)[0] == 0
    assert visits(tokyo_site, tokyo_key, **tenth)[0] == 0
    assert visits(tokyo_site, tokyo_key, **eleventh)[0] == 1
    # The hourly chart of Tokyo's day starts at 15:00 UTC and holds the event at 08:00 local.
    series = ok(get(client, tokyo_site, "timeseries", tokyo_key, period="today"))
    assert len(series["points"]) == 24
    assert series["points"][0]["start"] == "2026-03-10T15:00:00Z"
    assert [p["start"] for p in series["points"] if p["value"]] == ["2026-03-10T23:00:00Z"]


def test_changing_the_zone_changes_the_answer(
    app: Flask, client: FlaskClient, data: int, reader: dict[str, str]
) -> None:
    # In New York (UTC-4 since 2026-03-08) the 10th begins at 04:00 UTC, so FR2's visit at
    # 07:00 UTC still counts, but a day ends at 04:00 UTC on the 11th.
    update_site(app, data, timezone="America/New_York")
    drain(app)  # rebuilds the rollups in the new zone
    body = ok(get(client, data, "aggregate", reader, period="today"))
    assert body["period"]["timezone"] == "America/New_York"
    # 12:00 UTC is 08:00 in New York, still the 10th there.
    assert (body["period"]["start"], body["period"]["end"]) == (
        "2026-03-10T04:00:00Z",
        "2026-03-11T04:00:00Z",
    )
    assert values(body)["visitors"] == 5.0
    # Yesterday, the 9th in New York: [03-09 04:00Z, 03-10 04:00Z) holds GB's and US's visits.
    yesterday = ok(get(client, data, "aggregate", reader, period="yesterday"))
    assert values(yesterday)["visits"] == 2.0


# -- the same numbers as the reporting layer -------------------------------------------------

VIEWS = [
    {"period": "today"},
    {"period": "7d"},
    {"period": "30d"},
    {"period": "12mo"},
    {"period": "all"},
    {"period": "custom", "from": "2026-03-09", "to": "2026-03-10"},
    {"period": "today", "filter": ["country:is:FR"]},
    {"period": "7d", "filter": ["page:contains:/blog", "device:is:desktop"]},
    {"period": "30d", "filter": ["source:is:"]},
    {"period": "month", "filter": ["event:is:Signup"]},
]


def report_of(app: Flask, site_id: int, args: dict[str, Any]) -> stats.ReportQuery:
    multi: MultiDict[str, str] = MultiDict()
    for name, value in args.items():
        for one in value if isinstance(value, list) else [value]:
            multi.add(name, one)
    return query_for(site_id, "UTC", parse_view(multi), NOW)


@pytest.mark.parametrize("view", VIEWS, ids=lambda view: urlencode(view, doseq=True))
def test_the_api_says_what_the_reporting_layer_says(
    app: Flask, client: FlaskClient, data: int, reader: dict[str, str], view: dict[str, Any]
) -> None:
    aggregate = ok(get(client, data, "aggregate", reader, **view))
    series = ok(get(client, data, "timeseries", reader, metric="pageviews", **view))
    pages = ok(get(client, data, "breakdown", reader, dimension="page", limit=100, **view))
    countries = ok(
        get(client, data, "breakdown", reader, dimension="country", sort="pageviews", **view)
    )
    props = ok(get(client, data, "properties", reader, event="Signup", **view))
    with app.app_context():
        q = report_of(app, data, view)
        expected = stats.aggregate(q)
        expected_series = stats.timeseries(q, "pageviews")
        expected_pages = stats.breakdown(q, DIMENSIONS["page"], limit=100)
        expected_countries = stats.breakdown(q, DIMENSIONS["country"], sort="pageviews")
        expected_props = stats.event_props(q, "Signup")

    assert aggregate["period"]["start"] == q.range.start.isoformat().replace("+00:00", "Z")
    assert aggregate["period"]["end"] == q.range.end.isoformat().replace("+00:00", "Z")
    for name, result in aggregate["results"].items():
        assert result["value"] == round(expected.current.value(name), 4)
        assert expected.previous is not None
        assert result["previous"] == round(expected.previous.value(name), 4)
        change = expected.change(name)
        assert result["change"] == (None if change is None else round(change, 2))

    assert series["bucket"] == expected_series.bucket
    assert [(p["start"], p["value"], p["previous"]) for p in series["points"]] == [
        (p.start.isoformat().replace("+00:00", "Z"), p.value, p.previous)
        for p in expected_series.points
    ]

    for answer, report in ((pages, expected_pages), (countries, expected_countries)):
        assert answer["total"] == report.total
        assert [
            (r["value"], r["label"], r["visitors"], r["visits"], r["pageviews"], r["events"])
            for r in answer["results"]
        ] == [(r.value, r.label, r.visitors, r.visits, r.pageviews, r.events) for r in report.rows]
        assert [r["share"] for r in answer["results"]] == [round(r.share, 2) for r in report.rows]
        assert [r["bounce_rate"] for r in answer["results"]] == [
            round(r.bounce_rate, 2) for r in report.rows
        ]

    assert [(p["property"], p["value"], p["visitors"], p["events"]) for p in props["results"]] == [
        (p.key, p.value, p.visitors, p.events) for p in expected_props
    ]
    assert expected.current.visits > 0  # every view holds something to compare


# -- timeseries ------------------------------------------------------------------------------


def test_an_hourly_series_has_24_points_and_empty_hours_are_zero(
    client: FlaskClient, data: int, reader: dict[str, str]
) -> None:
    body = ok(get(client, data, "timeseries", reader, period="today", metric="pageviews"))
    assert (body["metric"], body["bucket"]) == ("pageviews", "hour")
    assert body["period"]["bucket"] == "hour"
    points = body["points"]
    assert [p["start"] for p in points] == [f"2026-03-10T{hour:02d}:00:00Z" for hour in range(24)]
    assert {p["start"][11:13]: p["value"] for p in points if p["value"]} == {
        "07": 1,  # FR2
        "08": 2,  # FR1
        "09": 2,  # GB
        "10": 3,  # US
        "11": 1,  # SE
    }
    assert sum(1 for p in points if p["value"] == 0) == 19
    # The previous values are yesterday's, hour by hour.
    assert {p["start"][11:13]: p["previous"] for p in points if p["previous"]} == {"09": 1, "14": 2}
    assert all(p["previous"] is not None for p in points)


def test_the_default_metric_is_visitors(
    client: FlaskClient, data: int, reader: dict[str, str]
) -> None:
    body = ok(get(client, data, "timeseries", reader, period="today"))
    assert body["metric"] == "visitors"
    assert [p["value"] for p in body["points"]][7:12] == [1, 1, 1, 1, 1]
    assert sum(p["value"] for p in body["points"]) == 5


def test_a_daily_series_of_seven_days(
    client: FlaskClient, data: int, reader: dict[str, str]
) -> None:
    body = ok(get(client, data, "timeseries", reader, period="7d", metric="visits"))
    assert body["bucket"] == "day"
    assert [(p["start"], p["value"], p["previous"]) for p in body["points"]] == [
        ("2026-03-04T00:00:00Z", 0, 0),  # previous: 02-25
        ("2026-03-05T00:00:00Z", 0, 0),
        ("2026-03-06T00:00:00Z", 0, 0),
        ("2026-03-07T00:00:00Z", 0, 0),
        ("2026-03-08T00:00:00Z", 0, 1),  # previous: 03-01, SE
        ("2026-03-09T00:00:00Z", 2, 0),
        ("2026-03-10T00:00:00Z", 5, 0),
    ]
    without = ok(get(client, data, "timeseries", reader, period="7d", compare="false"))
    assert [p["previous"] for p in without["points"]] == [None] * 7


def test_longer_periods_have_daily_and_weekly_buckets(
    client: FlaskClient, data: int, reader: dict[str, str]
) -> None:
    thirty = ok(get(client, data, "timeseries", reader, period="30d"))
    assert (thirty["bucket"], len(thirty["points"])) == ("day", 30)
    assert sum(p["value"] for p in thirty["points"]) == 9
    year = ok(get(client, data, "timeseries", reader, period="12mo", metric="visits"))
    assert year["bucket"] == "week"
    points = year["points"]
    # Weeks start on Monday: the first holds 2025-04-01, so it starts on 2025-03-31.
    assert points[0]["start"] == "2025-03-31T00:00:00Z"
    assert points[-1]["start"] == "2026-03-09T00:00:00Z"
    assert len(points) == 50
    assert all(
        datetime.fromisoformat(b["start"]) - datetime.fromisoformat(a["start"]) == timedelta(days=7)
        for a, b in itertools.pairwise(points)
    )
    nonzero = {p["start"][:10]: p["value"] for p in points if p["value"]}
    assert nonzero == {
        "2025-12-15": 1,  # US, Saturday 12-20
        "2026-02-09": 1,  # GB, Sunday 02-15
        "2026-02-23": 1,  # SE, Sunday 03-01
        "2026-03-09": 7,  # yesterday and today
    }


# -- breakdown -------------------------------------------------------------------------------


def row_summary(body: dict[str, Any]) -> list[tuple[Any, ...]]:
    return [(r["value"], r["visitors"], r["visits"], r["pageviews"]) for r in body["results"]]


def test_a_breakdown_ranks_values_by_visitors(
    client: FlaskClient, data: int, reader: dict[str, str]
) -> None:
    body = ok(get(client, data, "breakdown", reader, period="today", dimension="page"))
    assert (body["dimension"], body["total"], body["limit"], body["offset"]) == ("page", 5, 10, 0)
    assert body["next_offset"] is None
    # Page rows count visitors and pageviews of the page (visits belong to entry pages).
    assert row_summary(body) == [
        ("/", 2, 0, 2),
        ("/docs", 2, 0, 3),
        ("/pricing", 2, 0, 2),
        ("/blog", 1, 0, 1),
        ("/blog/post-1", 1, 0, 1),
    ]
    assert [r["share"] for r in body["results"]] == [40.0, 40.0, 40.0, 20.0, 20.0]
    sources = ok(get(client, data, "breakdown", reader, period="today", dimension="source"))
    assert [(r["value"], r["label"], r["visitors"]) for r in sources["results"]] == [
        ("", "Direct / None", 3),
        ("Google", "Google", 1),
        ("Hacker News", "Hacker News", 1),
    ]
    countries = ok(get(client, data, "breakdown", reader, period="today", dimension="country"))
    assert [
        (r["value"], r["visitors"], r["bounce_rate"], r["visit_duration"])
        for r in countries["results"]
    ] == [
        ("FR", 2, 50.0, 450.0),
        ("GB", 1, 0.0, 360.0),
        ("SE", 1, 100.0, 120.0),
        ("US", 1, 0.0, 240.0),
    ]


def test_sort_changes_the_ranking(client: FlaskClient, data: int, reader: dict[str, str]) -> None:
    def ranking(sort: str) -> list[str]:
        body = ok(
            get(client, data, "breakdown", reader, period="today", dimension="country", sort=sort)
        )
        return [r["value"] for r in body["results"]]

    assert ranking("visitors") == ["FR", "GB", "SE", "US"]
    assert ranking("visits") == ["FR", "GB", "SE", "US"]
    assert ranking("pageviews") == ["FR", "US", "GB", "SE"]  # 3, 3, 2, 1
    assert ranking("events") == ["FR", "GB", "SE", "US"]  # 1, 1, 1, 0 Signups
    pages = ok(
        get(client, data, "breakdown", reader, period="today", dimension="page", sort="pageviews")
    )
    assert [r["value"] for r in pages["results"]][:1] == ["/docs"]


@pytest.mark.parametrize("path", ["rollups", "raw"])
def test_limit_and_offset_page_through_every_value_once(
    client: FlaskClient, data: int, reader: dict[str, str], path: str
) -> None:
    # A filter that keeps everything makes the report read raw events instead of rollups.
    extra = {"filter": "country:is_not:XX"} if path == "raw" else {}
    full = ok(
        get(client, data, "breakdown", reader, period="30d", dimension="page", limit=1000, **extra)
    )
    assert full["total"] == 5
    seen: list[tuple[Any, ...]] = []
    offset: int | None = 0
    pages = 0
    while offset is not None:
        body = ok(
            get(
                client,
                data,
                "breakdown",
                reader,
                period="30d",
                dimension="page",
                limit=2,
                offset=offset,
                **extra,
            )
        )
        assert (body["total"], body["limit"], body["offset"]) == (5, 2, offset)
        assert len(body["results"]) == (2 if offset < 4 else 1)
        seen.extend(row_summary(body))
        offset = body["next_offset"]
        pages += 1
    assert pages == 3
    assert seen == row_summary(full)
    # Visitors are summed over days: / 4, /docs 3, /pricing 3, /blog 2, /blog/post-1 1.
    assert seen == [
        ("/", 4, 0, 4),
        ("/docs", 3, 0, 4),
        ("/pricing", 3, 0, 3),
        ("/blog", 2, 0, 2),
        ("/blog/post-1", 1, 0, 1),
    ]
    # Past the end: no rows, the same total, no next page.
    beyond = ok(
        get(client, data, "breakdown", reader, period="30d", dimension="page", offset=7, **extra)
    )
    assert (beyond["results"], beyond["total"], beyond["next_offset"]) == ([], 5, None)


@pytest.mark.parametrize("path", ["rollups", "raw"])
def test_total_counts_every_value_even_past_the_end_of_more_than_a_thousand(
    app: Flask, client: FlaskClient, site: int, reader: dict[str, str], path: str
) -> None:
    for n in range(1005):
        spool_event(app, site, GB, utc(2026, 3, 5, 10, n // 60, n % 60), f"/p{n}")
    assert drain(app) == 1005
    extra = {"filter": "country:is_not:XX"} if path == "raw" else {}
    day = {"period": "custom", "from": "2026-03-05", "to": "2026-03-05", "dimension": "page"}

    def page(offset: int) -> tuple[int, Any, int]:
        body = ok(get(client, site, "breakdown", reader, offset=offset, limit=5, **day, **extra))
        return body["total"], body["next_offset"], len(body["results"])

    assert page(0) == (1005, 5, 5)
    assert page(1000) == (1005, None, 5)
    # Past the end there are no rows, but still 1005 values (not the 1000 of one read).
    assert page(1005) == (1005, None, 0)
    assert page(5000) == (1005, None, 0)


def test_a_breakdown_needs_a_known_dimension(
    client: FlaskClient, data: int, reader: dict[str, str]
) -> None:
    missing = error_of(get(client, data, "breakdown", reader, period="today"), 400)
    assert missing["code"] == "invalid_request"
    assert list(missing["details"]) == ["dimension"]
    unknown = error_of(
        get(client, data, "breakdown", reader, period="today", dimension="password"), 400
    )
    assert list(unknown["details"]) == ["dimension"]
    assert "'page'" in unknown["details"]["dimension"]  # it says what is allowed
    bad_sort = error_of(
        get(client, data, "breakdown", reader, dimension="page", sort="bounce_rate"), 400
    )
    assert list(bad_sort["details"]) == ["sort"]


# -- properties ------------------------------------------------------------------------------


def test_properties_of_a_custom_event(
    client: FlaskClient, data: int, reader: dict[str, str]
) -> None:
    body = ok(get(client, data, "properties", reader, period="today", event="Signup"))
    assert body["event"] == "Signup"
    assert body["results"] == [
        {"property": "plan", "value": "pro", "visitors": 2, "events": 2},
        {"property": "plan", "value": "free", "visitors": 1, "events": 1},
        {"property": "seats", "value": "3", "visitors": 1, "events": 1},
    ]
    limited = ok(get(client, data, "properties", reader, period="today", event="Signup", limit=1))
    assert [r["value"] for r in limited["results"]] == ["pro"]
    filtered = ok(
        get(
            client,
            data,
            "properties",
            reader,
            period="today",
            event="Signup",
            filter="country:is:FR",
        )
    )
    assert filtered["results"] == [{"property": "plan", "value": "pro", "visitors": 1, "events": 1}]
    nothing = ok(get(client, data, "properties", reader, period="today", event="Purchase"))
    assert nothing["results"] == []
    error = error_of(get(client, data, "properties", reader, period="today"), 400)
    assert list(error["details"]) == ["event"]


# -- realtime --------------------------------------------------------------------------------


def test_realtime_counts_visitors_of_the_last_five_minutes(
    app: Flask, client: FlaskClient, site: int, reader: dict[str, str]
) -> None:
    now = datetime.now(UTC)
    spool_event(app, site, GB, now - timedelta(minutes=1), "/")
    spool_event(app, site, GB, now - timedelta(seconds=30), "/pricing")  # the same visitor
    spool_event(app, site, US, now - timedelta(minutes=2), "/")
    spool_event(app, site, SE, now - timedelta(minutes=6), "/")  # too long ago
    spool_event(app, site, FR1, now - timedelta(hours=3), "/")
    assert drain(app) == 5
    body = ok(client.get(f"/api/v1/sites/{site}/stats/realtime", headers=reader))
    assert body["site_id"] == site
    assert body["visitors"] == 2
    assert body["window_seconds"] == 300
    assert body["at"].endswith("Z")
    at = datetime.fromisoformat(body["at"])
    assert now <= at <= datetime.now(UTC)


def test_realtime_refuses_parameters_it_would_ignore(
    app: Flask, client: FlaskClient, site: int, reader: dict[str, str]
) -> None:
    spool_event(app, site, GB, datetime.now(UTC) - timedelta(minutes=1), "/")
    assert drain(app) == 1
    # Realtime takes no filter: answering 1 (everyone) to a question about France would be
    # the "silently ignored option" that every other operation refuses with a 400.
    response = client.get(
        f"/api/v1/sites/{site}/stats/realtime?filter=country:is:FR", headers=reader
    )
    error = error_of(response, 400)
    assert "filter" in error["details"], error


# -- bad input -------------------------------------------------------------------------------

BAD = [
    pytest.param("aggregate", {"perod": "today"}, "perod", id="unknown-parameter"),
    pytest.param("aggregate", {"period": "forever"}, "period", id="unknown-period"),
    pytest.param("aggregate", {"period": "custom"}, "query", id="custom-without-dates"),
    pytest.param(
        "aggregate", {"period": "custom", "from": "2026-03-01"}, "query", id="custom-without-to"
    ),
    pytest.param(
        "aggregate",
        {"period": "custom", "from": "2026-03-09", "to": "2026-03-01"},
        "query",
        id="to-before-from",
    ),
    pytest.param(
        "aggregate",
        {"period": "custom", "from": "2026-02-30", "to": "2026-03-01"},
        "from",
        id="no-such-day",
    ),
    pytest.param(
        "aggregate",
        {"period": "custom", "from": "yesterday", "to": "2026-03-01"},
        "from",
        id="not-a-date",
    ),
    pytest.param("aggregate", {"metrics": "bounces"}, "metrics.0", id="unknown-metric"),
    pytest.param("aggregate", {"compare": "perhaps"}, "compare", id="compare-not-a-bool"),
    pytest.param("aggregate", {"filter": "nothing"}, "filter.0", id="filter-no-operator"),
    pytest.param("aggregate", {"filter": "password:is:x"}, "filter.0", id="filter-dimension"),
    pytest.param("aggregate", {"filter": "country:like:FR"}, "filter.0", id="filter-operator"),
    pytest.param("aggregate", {"filter": "country:contains:"}, "query", id="filter-no-value"),
    pytest.param("aggregate", {"filter": "page:is:/\n"}, "query", id="filter-control-char"),
    pytest.param(
        "aggregate",
        {"filter": [f"page:is:/{n}" for n in range(11)]},
        "filter",
        id="eleven-filters",
    ),
    pytest.param(
        "aggregate", {"period": "today", "from": "2026-03-01"}, "query", id="from-without-custom"
    ),
    pytest.param("timeseries", {"metric": "bounce_rate"}, "metric", id="chart-metric"),
    pytest.param("timeseries", {"compare": "1"}, "compare", id="compare-one"),
    pytest.param("breakdown", {"dimension": "page", "limit": 0}, "limit", id="limit-0"),
    pytest.param("breakdown", {"dimension": "page", "limit": 1001}, "limit", id="limit-1001"),
    pytest.param("breakdown", {"dimension": "page", "limit": "ten"}, "limit", id="limit-word"),
    pytest.param("breakdown", {"dimension": "page", "limit": "1.0"}, "limit", id="limit-decimal"),
    pytest.param("breakdown", {"dimension": "page", "offset": -1}, "offset", id="offset-negative"),
    pytest.param("breakdown", {"dimension": "city", "foo": "1"}, "foo", id="breakdown-unknown"),
    pytest.param("properties", {"event": "x" * 121}, "event", id="event-too-long"),
    pytest.param("properties", {"event": "Signup", "limit": 0}, "limit", id="props-limit-0"),
]


@pytest.mark.parametrize(("report", "args", "field"), BAD)
def test_bad_input_is_a_400_naming_the_problem_and_changes_nothing(
    app: Flask,
    client: FlaskClient,
    data: int,
    reader: dict[str, str],
    report: str,
    args: dict[str, Any],
    field: str,
) -> None:
    ok(get(client, data, "aggregate", reader))  # the key's first use is recorded now
    before = snapshot(app)
    error = error_of(get(client, data, report, reader, **args), 400)
    assert error["code"] == "invalid_request"
    assert field in error["details"], error
    assert all(isinstance(message, str) and message for message in error["details"].values())
    assert snapshot(app) == before


def test_the_eleventh_filter_is_refused_but_ten_are_fine(
    client: FlaskClient, data: int, reader: dict[str, str]
) -> None:
    ten = [f"page:is_not:/{n}" for n in range(10)]
    body = ok(get(client, data, "aggregate", reader, period="today", filter=ten))
    assert body["filters"] == ten
    assert values(body)["visitors"] == 5.0
    error = error_of(
        get(client, data, "aggregate", reader, period="today", filter=[*ten, "page:is_not:/x"]),
        400,
    )
    assert "filter" in error["details"]


def test_limits_at_the_edges_are_accepted(
    client: FlaskClient, data: int, reader: dict[str, str]
) -> None:
    for limit in (1, 1000):
        body = ok(
            get(client, data, "breakdown", reader, period="today", dimension="page", limit=limit)
        )
        assert body["limit"] == limit
        assert len(body["results"]) == min(limit, 5)


@pytest.fixture
def empty(app: Flask, site: int, monkeypatch: pytest.MonkeyPatch) -> Iterator[int]:
    freeze(monkeypatch, NOW)
    yield site


def test_a_site_without_events_answers_zeros(
    client: FlaskClient, empty: int, reader: dict[str, str]
) -> None:
    body = ok(get(client, empty, "aggregate", reader, period="all"))
    # "All time" of a site without events is today.
    assert (body["period"]["start"], body["period"]["end"]) == (
        "2026-03-10T00:00:00Z",
        "2026-03-11T00:00:00Z",
    )
    assert values(body) == {
        "visitors": 0.0,
        "visits": 0.0,
        "pageviews": 0.0,
        "views_per_visit": 0.0,
        "bounce_rate": 0.0,
        "visit_duration": 0.0,
    }
    assert set(values(body, "change").values()) == {None}
    series = ok(get(client, empty, "timeseries", reader, period="today"))
    assert [p["value"] for p in series["points"]] == [0] * 24
    pages = ok(get(client, empty, "breakdown", reader, period="today", dimension="page"))
    assert (pages["results"], pages["total"], pages["next_offset"]) == ([], 0, None)
