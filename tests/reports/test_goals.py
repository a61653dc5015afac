"""Goals against numbers worked out by hand (dataset.py, plus three purchases), on both paths.

The data set's pages: A views / and /pricing (S1, local 03-07) and /pricing (S2, local 03-08);
B views /blog and / and sends Signup {"plan": "pro"} (S3, 03-08); C views /blog?utm… (S4,
03-08) and /docs (S5, 03-09). Here C also buys three times in S5: amounts 30, "12.5" (a
string holding a number) and "n/a" (no number).
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import select

from flask_tracking.events import current_store
from flask_tracking.events.tables import tables
from flask_tracking.extensions import db
from flask_tracking.ingest import drain
from flask_tracking.reports import rollups, stats
from flask_tracking.reports.dimensions import DIMENSIONS, InvalidQuery, bind_goals, parse_filters
from flask_tracking.reports.goals import Goal, InvalidGoal, make_goal, pattern_regex
from flask_tracking.reports.ranges import DateRange, resolve
from flask_tracking.tracking import goals as goal_rows
from flask_tracking.tracking.models import Site
from tests.conftest import count_rows, geolite2_2018
from tests.reports import dataset
from tests.reports.test_stats import PATHS, days, run

GOALS = (
    make_goal("Pricing", "page", path="/pricing"),
    make_goal("Blog", "page", path="/blog**"),  # /blog and everything under it
    make_goal("Blog posts", "page", path="/blog/**"),  # under /blog/ only: nothing here
    make_goal("Docs", "page", path="/d*cs"),
    make_goal("Signup", "event", event="Signup"),
    make_goal("Pro signup", "event", event="Signup", prop_key="plan", prop_value="pro"),
    make_goal("Free signup", "event", event="Signup", prop_key="plan", prop_value="free"),
    make_goal("Purchase", "event", event="Purchase", revenue_prop="amount", currency="EUR"),
)
MARCH = (date(2026, 3, 7), date(2026, 3, 9))


def purchases(app: Flask, site_id: int) -> None:
    for minute, amount in ((12, 30), (13, "12.5"), (14, "n/a")):
        dataset.spool(
            app,
            site_id,
            dataset.C,
            dataset.utc(9, 4, minute),
            "/docs",
            name="Purchase",
            props={"amount": amount},
        )


@pytest.fixture
def site(app_factory: Any, site_in: Any) -> Iterator[tuple[Flask, int]]:
    """The data set with the goals defined before it is stored (the writer rolls them up)."""
    app = app_factory(**geolite2_2018())
    site_id = site_in(app)
    with app.app_context():
        site = db.session.get(Site, site_id)
        site.timezone = dataset.TIMEZONE
        db.session.commit()
        for goal in GOALS:
            goal_rows.add_goal(site, goal)
    dataset.load(app, site_id)
    purchases(app, site_id)
    drain(app)
    yield app, site_id


def query(
    site_id: int, period: DateRange, filters: tuple[str, ...] = (), goals: tuple[Goal, ...] = GOALS
) -> stats.ReportQuery:
    bound = bind_goals(parse_filters(list(filters)), goals)
    return stats.ReportQuery(site_id, dataset.TIMEZONE, period, bound, goals)


def numbers(app: Flask, site_id: int, path: str, period: DateRange, *filters: str) -> Any:
    found = run(app, site_id, path, lambda: stats.Report(query(site_id, period, filters)).goals())
    return {
        r.goal.name: (r.current.visitors, r.current.conversions, round(r.current.rate, 2))
        for r in found
    }


@pytest.mark.parametrize("path", PATHS)
def test_every_goal_of_three_days_matches_the_hand_count(site: Any, path: str) -> None:
    app, site_id = site
    # 5 visitors in these days (A counts on 03-07 and on 03-08: visitors are per local day).
    assert numbers(app, site_id, path, days(*MARCH)) == {
        "Pricing": (2, 2, 40.0),  # A on 03-07 (S1) and A on 03-08 (S2)
        "Blog": (2, 2, 40.0),  # B's /blog, C's /blog?utm… (the query is not in the path)
        "Blog posts": (0, 0, 0.0),
        "Docs": (1, 1, 20.0),
        "Signup": (1, 1, 20.0),
        "Pro signup": (1, 1, 20.0),
        "Free signup": (0, 0, 0.0),
        "Purchase": (1, 3, 20.0),  # one visitor, three purchases
    }


@pytest.mark.parametrize("path", PATHS)
def test_revenue_sums_the_numeric_values_and_averages_over_them(site: Any, path: str) -> None:
    app, site_id = site
    found = run(app, site_id, path, lambda: stats.Report(query(site_id, days(*MARCH))).goals())
    purchase = next(r for r in found if r.goal.name == "Purchase")
    assert purchase.current.revenue == pytest.approx(42.5)  # "n/a" carries no amount
    assert purchase.current.average == pytest.approx(21.25)
    assert purchase.goal.currency == "EUR"
    pricing = next(r for r in found if r.goal.name == "Pricing")
    assert pricing.current.revenue is None and pricing.current.average is None


@pytest.mark.parametrize("path", PATHS)
def test_one_day_and_its_previous_period(site: Any, path: str) -> None:
    app, site_id = site
    march_8 = days(date(2026, 3, 8), date(2026, 3, 8))
    found = run(app, site_id, path, lambda: stats.Report(query(site_id, march_8)).goals())
    pricing = next(r for r in found if r.goal.name == "Pricing")
    # 03-08 (3 visitors) holds S2; the 23 hours before it hold S1 (1 visitor).
    assert (pricing.current.visitors, pricing.current.conversions) == (1, 1)
    assert pricing.current.rate == pytest.approx(100 / 3)
    assert (pricing.previous.visitors, pricing.previous.rate) == (1, 100.0)
    assert pricing.change("visitors") == 0.0
    assert pricing.change("rate") == pytest.approx(100 / 3 - 100)  # in points
    signup = next(r for r in found if r.goal.name == "Signup")
    assert signup.change("visitors") is None  # nothing before to compare with


@pytest.mark.parametrize("path", PATHS)
def test_a_goal_filter_keeps_the_sessions_that_converted(site: Any, path: str) -> None:
    app, site_id = site
    period = days(*MARCH)

    def aggregate(*filters: str) -> Any:
        return run(
            app, site_id, path, lambda: stats.Report(query(site_id, period, filters)).aggregate()
        ).current

    signed_up = aggregate("goal:is:Signup")
    assert (signed_up.visitors, signed_up.visits, signed_up.pageviews, signed_up.events) == (
        1,
        1,
        2,
        1,
    )
    priced = aggregate("goal:is:Pricing")  # S1 and S2: A on two local days
    assert (priced.visitors, priced.visits, priced.pageviews) == (2, 2, 3)
    assert aggregate("goal:is:Pricing", "goal:is:Signup").visits == 0  # nobody did both
    assert aggregate("goal:is:Blog", "country:is:US").visits == 1  # B, not C (Sweden)

    def pages(*filters: str) -> dict[str, int]:
        found = run(
            app,
            site_id,
            path,
            lambda: stats.Report(query(site_id, period, filters)).breakdown(DIMENSIONS["page"]),
        )
        return {row.value: row.pageviews for row in found.rows}

    assert pages("goal:is:Signup") == {"/blog": 1, "/": 1}  # what converting visitors read
    # The goals themselves, among the converting sessions only.
    assert numbers(app, site_id, path, period, "goal:is:Signup")["Blog"] == (1, 1, 100.0)


def test_the_goal_breakdown_ranks_goals_and_pages(site: Any) -> None:
    app, site_id = site
    report = lambda: stats.Report(query(site_id, days(*MARCH)))  # noqa: E731
    found = run(app, site_id, "rollups", lambda: report().goal_breakdown(sort="events", limit=3))
    assert [(r.value, r.visitors, r.events) for r in found.rows] == [
        ("Purchase", 1, 3),
        ("Blog", 2, 2),
        ("Pricing", 2, 2),
    ]
    assert found.total == len(GOALS) and found.rows[0].share == pytest.approx(20.0)
    second = run(app, site_id, "raw", lambda: report().goal_breakdown(offset=7))
    assert [r.value for r in second.rows] == ["Free signup"]


def test_unknown_goal_filters_and_bad_goal_filters_are_refused() -> None:
    with pytest.raises(InvalidQuery, match="no goal named 'Nope'"):
        bind_goals(parse_filters(["goal:is:Nope"]), GOALS)
    with pytest.raises(InvalidQuery, match="goal:is:"):
        parse_filters(["goal:contains:Sign"])
    with pytest.raises(InvalidQuery, match="the goal's name"):
        parse_filters(["goal:is:"])


def test_goals_defined_after_the_days_closed_count_them_raw_then_from_rollups(
    app_factory: Any, site_in: Any
) -> None:
    app = app_factory(**geolite2_2018())
    site_id = site_in(app)
    with app.app_context():
        db.session.get(Site, site_id).timezone = dataset.TIMEZONE
        db.session.commit()
    dataset.load(app, site_id)
    drain(app)  # every day closed, no goal yet
    goal = make_goal("Pricing", "page", path="/pricing")
    with app.app_context():
        goal_rows.add_goal(db.session.get(Site, site_id), goal)
        store = current_store()
        parts = stats.Report(query(site_id, days(*MARCH), goals=(goal,))).parts(days(*MARCH))
        assert rollups.goal_values(store, site_id, [parts.days], [goal]) == [{}]  # not rolled up
    before = numbers_of(app, site_id, goal)
    assert before == (2, 2)  # read raw meanwhile: right, only slower
    drain(app)  # the writer's derive fills the goal in for the closed days
    with app.app_context():
        [rolled] = rollups.goal_values(current_store(), site_id, [parts.days], [goal])
        assert rolled[rollups.goal_key(goal)].conversions == 2
    assert numbers_of(app, site_id, goal) == before
    # Renamed, it counts the same thing: its rows stay its rows.
    renamed = make_goal("Prices", "page", path="/pricing")
    assert rollups.goal_key(renamed) == rollups.goal_key(goal)


def numbers_of(app: Flask, site_id: int, goal: Goal) -> tuple[int, int]:
    found = run(
        app,
        site_id,
        "rollups",
        lambda: stats.Report(query(site_id, days(*MARCH), goals=(goal,))).goals(),
    )
    return found[0].current.visitors, found[0].current.conversions


def test_a_late_conversion_reopens_the_day_and_its_goal_rows(site: Any) -> None:
    app, site_id = site
    dataset.spool(app, site_id, dataset.B, dataset.utc(8, 7, 30), "/pricing")
    drain(app)
    for path in PATHS:
        # B converts on 03-08 too: one more visitor and conversion, the rest unchanged.
        found = numbers(app, site_id, path, days(*MARCH))
        assert found["Pricing"] == (3, 3, 60.0)
        assert found["Signup"] == (1, 1, 20.0)
    with app.app_context():
        store = current_store()
        r = tables(store.engine).rollups.c
        rows = store.fetch(
            select(r.utc_day, r.day, r.events).where(
                r.site_id == site_id,
                r.dimension == rollups.GOAL,
                r.value == rollups.goal_key(GOALS[0]),
            )
        )
    # One row per closed slice, zeros included: complete, so reports trust them.
    assert sum(events for _utc, _day, events in rows) == 3
    assert len(rows) == len({(utc, day) for utc, day, _events in rows})


def test_deleting_a_site_deletes_its_goals(site: Any) -> None:
    app, site_id = site
    with app.app_context():
        from flask_tracking.tracking import sites

        sites.delete_site(db.session.get(Site, site_id))
        assert goal_rows.site_goals().get(site_id) is None


# -- definitions ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("pattern", "matching", "not_matching"),
    [
        ("/checkout/done", ["/checkout/done"], ["/checkout/done/", "/checkout/donex", "/x"]),
        ("/blog/*", ["/blog/a", "/blog/"], ["/blog/a/b", "/blog"]),
        ("/blog/**", ["/blog/a", "/blog/a/b"], ["/blog", "/blogs/a"]),
        ("/docs/*/install", ["/docs/x/install"], ["/docs/x/y/install", "/docs/install"]),
        ("/a.b(c)+[d]?", ["/a.b(c)+[d]?"], ["/aXb(c)+[d]", "/a.bc"]),
        ("/über/**", ["/über/x"], ["/uber/x"]),
    ],
)
def test_path_patterns_match_as_documented(
    app: Flask, pattern: str, matching: list[str], not_matching: list[str]
) -> None:
    """The pattern's regular expression in the store's own engine (RE2), not Python's."""
    regex = pattern_regex(pattern)
    with app.app_context():
        store = current_store()
        for path in matching + not_matching:
            (found,) = store.fetch(select(func_matches(path, regex)))[0]
            assert bool(found) == (path in matching), (pattern, path)


def func_matches(path: str, regex: str) -> Any:
    from sqlalchemy import func, literal

    return func.regexp_matches(literal(path), literal(regex))


@pytest.mark.parametrize(
    ("fields", "field", "message"),
    [
        ({"name": "", "kind": "page", "path": "/x"}, "name", "needs a name"),
        ({"name": "G", "kind": "visit", "path": "/x"}, "kind", "kind is 'page'"),
        ({"name": "G", "kind": "page", "path": ""}, "path", "needs a path pattern"),
        ({"name": "G", "kind": "page", "path": "signup"}, "path", "starts with /"),
        ({"name": "G", "kind": "page", "path": "/a\x00b"}, "path", "control characters"),
        ({"name": "G", "kind": "page", "path": "/a\nb"}, "path", "control characters"),
        ({"name": "G\x1b", "kind": "page", "path": "/a"}, "name", "control characters"),
        ({"name": "G", "kind": "page", "path": "/a/***"}, "path", "within a segment"),
        ({"name": "G", "kind": "page", "path": "/" + "a" * 2048}, "path", "at most 2048"),
        ({"name": "G" * 121, "kind": "page", "path": "/a"}, "name", "at most 120"),
        ({"name": "G", "kind": "page", "path": "/a", "event": "E"}, "kind", "path pattern only"),
        ({"name": "G", "kind": "event", "event": ""}, "event", "needs an event name"),
        ({"name": "G", "kind": "event", "event": "E", "path": "/a"}, "path", "not a path"),
        (
            {"name": "G", "kind": "event", "event": "E", "prop_key": "plan"},
            "property_value",
            "needs a value",
        ),
        (
            {"name": "G", "kind": "event", "event": "E", "prop_value": "pro"},
            "property",
            "property's name",
        ),
        (
            {"name": "G", "kind": "event", "event": "E", "revenue_prop": "amount"},
            "currency",
            "ISO 4217",
        ),
        (
            {"name": "G", "kind": "event", "event": "E", "revenue_prop": "a", "currency": "EU"},
            "currency",
            "ISO 4217",
        ),
        (
            {"name": "G", "kind": "event", "event": "E", "currency": "EUR"},
            "revenue_property",
            "needs a revenue",
        ),
    ],
)
def test_bad_definitions_are_refused_with_the_field_and_why(
    fields: dict[str, str], field: str, message: str
) -> None:
    name, kind = fields.pop("name"), fields.pop("kind")
    with pytest.raises(InvalidGoal, match=message) as refused:
        make_goal(name, kind, **fields)
    assert refused.value.field == field


def test_a_site_has_at_most_50_goals_and_unique_names(app: Flask, make_user: Any) -> None:
    from flask_tracking.reports.goals import MAX_GOALS
    from tests.conftest import _add_site

    owner = make_user("many@example.com")
    site_id = _add_site(app, owner.id, "https://many.example")
    with app.app_context():
        site = db.session.get(Site, site_id)
        for number in range(MAX_GOALS):
            goal_rows.add_goal(site, make_goal(f"Goal {number}", "page", path=f"/{number}"))
        with pytest.raises(InvalidGoal, match="at most 50 goals"):
            goal_rows.add_goal(site, make_goal("One more", "page", path="/more"))
        goal_rows.delete_goal(site.goals[0])
        with pytest.raises(InvalidGoal, match="already has a goal named 'Goal 1'"):
            goal_rows.add_goal(site, make_goal("Goal 1", "page", path="/other"))
        goal_rows.add_goal(site, make_goal("One more", "page", path="/more"))
        assert len(site.goals) == MAX_GOALS


def test_open_days_count_with_the_closed_ones(app_factory: Any, site_in: Any) -> None:
    """Today is open (marked rows, not rollups): a goal sums today's raw rows with the
    closed days' rollups, as the rest of the dashboard does — the same on both paths."""
    app = app_factory()
    site_id = site_in(app)
    goal = make_goal("Pricing", "page", path="/pricing")
    with app.app_context():
        goal_rows.add_goal(db.session.get(Site, site_id), goal)
    now = datetime.now(UTC).replace(second=0, microsecond=0)
    three_days_ago = now - timedelta(days=3)
    for who, at in (
        (dataset.A, now - timedelta(minutes=2)),
        (dataset.B, now - timedelta(minutes=1)),
    ):
        dataset.spool(app, site_id, who, at, "/pricing")
    dataset.spool(app, site_id, dataset.C, three_days_ago, "/pricing")
    dataset.spool(app, site_id, dataset.C, three_days_ago + timedelta(minutes=1), "/pricing")
    drain(app)
    with app.app_context():
        assert count_rows(app, "recent") == 2  # today's two, open
    period = resolve("7d", "UTC", now + timedelta(minutes=1))
    for path in PATHS:
        found = run(
            app,
            site_id,
            path,
            lambda: stats.Report(stats.ReportQuery(site_id, "UTC", period, (), (goal,))).goals(),
        )
        assert (found[0].current.visitors, found[0].current.conversions) == (3, 4), path
