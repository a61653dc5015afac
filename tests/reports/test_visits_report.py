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


def test_summary_counts_per_day_and_ranks_top_values(
    app: Flask, owner: User, make_site: Any
) -> None:
    site_id = make_site(owner)
    other_site = make_site(owner, "https://other.example")
    add(
        app,
        site_id,
        NOW,
        "https://e.com/a",
        browser="Firefox",
        city="Paris",
        referrer="https://duck.com/",
    )
    add(
        app,
        site_id,
        NOW - timedelta(hours=1),
        "https://e.com/a",
        browser="Chrome",
        country_name="Germany",
    )
    add(app, site_id, NOW - timedelta(days=1), "https://e.com/b", browser="Firefox", city="Paris")
    add(app, site_id, NOW - timedelta(days=29, hours=11), "https://e.com/c")  # first day, 00:00
    add(app, site_id, NOW - timedelta(days=30), "https://e.com/too-old")  # outside the window
    add(app, other_site, NOW, "https://other.example/")  # another site's visit
    with app.app_context():
        summary = summarise(site_id, days=30, now=NOW)
    assert (summary.start, summary.end) == (date(2026, 3, 2), date(2026, 3, 31))
    assert summary.total == 4
    assert len(summary.per_day) == 30
    per_day = dict(summary.per_day)
    assert per_day[date(2026, 3, 31)] == 2
    assert per_day[date(2026, 3, 30)] == 1
    assert per_day[date(2026, 3, 2)] == 1
    assert sum(per_day.values()) == 4
    assert summary.top_pages[0] == Ranked("https://e.com/a", 2)
    assert {r.value for r in summary.top_pages} == {
        "https://e.com/a",
        "https://e.com/b",
        "https://e.com/c",
    }
    assert summary.top_browsers == [Ranked("Firefox", 2), Ranked("Chrome", 1)]
    assert summary.top_locations == [Ranked("Paris", 2), Ranked("Germany", 1)]
    assert summary.top_referrers == [Ranked("https://duck.com/", 1)]


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
    assert summary.total == 0
    assert summary.top_pages == []
    assert (page.total, page.pages, page.visits) == (0, 1, [])
