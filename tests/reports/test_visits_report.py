"""The visits report's numbers, checked against a small hand-built data set."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

from flask import Flask

from flask_tracking.reports.visits import Ranked, summarise, visit_page
from flask_tracking.users.models import User
from tests.api.helpers import add_visits

NOW = datetime(2026, 3, 31, 12, 0, tzinfo=UTC)


def add(
    app: Flask, site_id: int, when: datetime, url: str = "https://e.com/", **fields: Any
) -> None:
    add_visits(app, site_id, [{"date": when, "url": url, **fields}])


def test_summary_counts_as_the_dashboard_does(app: Flask, owner: User, make_site: Any) -> None:
    """Pageviews, custom events, visits and visitors are four counts; a custom event is not a
    hit on its page; days are the site's local days."""
    site_id = make_site(owner)
    other_site = make_site(owner, "https://other.example")
    paris = {"browser": "Firefox", "country_code": "FR", "visitor_id": 1}
    add(app, site_id, NOW, "https://e.com/a", pathname="/a", referrer="https://duck.com/", **paris)
    add(app, site_id, NOW + timedelta(minutes=1), "https://e.com/b", pathname="/b", **paris)
    add(app, site_id, NOW + timedelta(minutes=2), "https://e.com/b", pathname="/b", **paris)
    add(
        app,
        site_id,
        NOW + timedelta(minutes=3),
        "https://e.com/b",
        pathname="/b",
        event="Signup",
        **paris,
    )
    berlin = {"browser": "Chrome", "country_code": "DE", "visitor_id": 2}
    add(app, site_id, NOW - timedelta(days=1), "https://e.com/a", pathname="/a", **berlin)
    add(
        app, site_id, NOW - timedelta(days=29, hours=11), "https://e.com/c", pathname="/c", **berlin
    )
    add(app, site_id, NOW - timedelta(days=30), "https://e.com/too-old", pathname="/too-old")
    add(app, other_site, NOW, "https://other.example/")  # another site's visit
    with app.app_context():
        summary = summarise(site_id, "UTC", days=30, now=NOW)
    assert (summary.start, summary.end) == (date(2026, 3, 2), date(2026, 3, 31))
    m = summary.metrics
    assert (m.visitors, m.visits, m.pageviews, m.events) == (3, 3, 5, 1)
    assert len(summary.per_day) == 30
    per_day = dict(summary.per_day)  # pageviews per day
    assert per_day[date(2026, 3, 31)] == 3
    assert per_day[date(2026, 3, 30)] == 1
    assert per_day[date(2026, 3, 2)] == 1
    assert sum(per_day.values()) == 5
    # /b has two pageviews: the Signup sent from it is not a third.
    assert summary.top_pages == [Ranked("/b", 2), Ranked("/a", 2), Ranked("/c", 1)] or (
        summary.top_pages == [Ranked("/a", 2), Ranked("/b", 2), Ranked("/c", 1)]
    )
    assert summary.top_browsers == [Ranked("Chrome", 2), Ranked("Firefox", 1)]
    assert summary.top_locations == [Ranked("Germany", 2), Ranked("France", 1)]
    assert summary.top_referrers == [Ranked("https://duck.com/", 1)]
    # In New York the first event (10:00 UTC on 2 March) falls on 2 March too, but 31 March
    # 12:00 UTC is 08:00 there: the same window reads the same in the site's days.
    with app.app_context():
        there = summarise(site_id, "America/New_York", days=30, now=NOW)
    assert dict(there.per_day)[date(2026, 3, 31)] == 3


def test_visit_page_is_newest_first_and_bounded(app: Flask, owner: User, make_site: Any) -> None:
    site_id = make_site(owner)
    for n in range(5):
        add(app, site_id, NOW + timedelta(minutes=n), f"https://e.com/{n}")
    with app.app_context():
        first = visit_page(site_id, 1, 2)
        assert [v.url for v in first.visits] == ["https://e.com/4", "https://e.com/3"]
        assert (first.total, first.pages) == (5, 3)
        assert [v.url for v in visit_page(site_id, 3, 2).visits] == ["https://e.com/0"]
        assert visit_page(site_id, 0, 2).page == 1
        assert visit_page(site_id, 50, 2).page == 3


def test_empty_site_has_an_empty_report(app: Flask, owner: User, make_site: Any) -> None:
    site_id = make_site(owner)
    with app.app_context():
        summary = summarise(site_id, now=NOW)
        page = visit_page(site_id, 1, 50)
    assert (summary.metrics.visitors, summary.metrics.pageviews) == (0, 0)
    assert summary.top_pages == []
    assert (page.total, page.pages, page.visits) == (0, 1, [])
