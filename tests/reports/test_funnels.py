"""Funnels against a hand-built data set: steps out of order, repeated, skipped, a visit across
local midnight, and a visitor coming back later the same day.

The site is in America/New_York (EDT: local midnight is 04:00 UTC). The funnel is
Home (/) -> Pricing (/pricing) -> Signup (custom event). On local 2026-03-19:

  V1  10:00Z /, 10:01Z /pricing, 10:02Z Signup              in order: every step
  V2  11:00Z /pricing, 11:01Z /, 11:02Z Signup               out of order: enters at /, no more
  V3  12:00Z /, 12:01Z /, 12:03Z /pricing, 12:04Z /pricing,  repeats: every step, timed from the
      12:05Z Signup                                          first / and the first /pricing after
  V4  13:00Z /, 13:01Z Signup                                Pricing skipped: step 1 only
  V5  03-20 03:50Z /, 03:55Z /pricing, 04:05Z Signup          one visit across local midnight,
                                                             started on 03-19: every step
  V6  14:00Z /; a new visit 15:00Z /pricing, 15:01Z Signup   in one visit step 1 only; across
                                                             the day's visits, every step
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime
from typing import Any

import pytest
from flask import Flask

from flask_tracking.extensions import db
from flask_tracking.ingest import drain
from flask_tracking.reports import stats
from flask_tracking.reports.dimensions import parse_filters
from flask_tracking.reports.funnels import InvalidFunnel, make_funnel
from flask_tracking.reports.goals import InvalidGoal, make_goal
from flask_tracking.reports.ranges import resolve
from flask_tracking.tracking import funnels as funnel_rows
from flask_tracking.tracking import goals as goal_rows
from flask_tracking.tracking.models import Site
from tests.reports import dataset

ZONE = "America/New_York"
UA = "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:133.0) Gecko/20100101 Firefox/133.0"
HOME = make_goal("Home", "page", path="/")
PRICING = make_goal("Pricing", "page", path="/pricing")
SIGNUP = make_goal("Signup", "event", event="Signup")
FUNNEL = make_funnel("Checkout", [HOME, PRICING, SIGNUP])


def visitor(number: int) -> dict[str, Any]:
    return {"ip": f"81.2.69.{number}", "user_agent": UA, "width": 1440}


def at(hour: int, minute: int, day: int = 19) -> datetime:
    return datetime(2026, 3, day, hour, minute, tzinfo=UTC)


SIGNED = {"name": "Signup", "props": {"plan": "pro"}}
EVENTS: list[tuple[int, datetime, str, dict[str, Any]]] = [
    (1, at(10, 0), "/", {}),
    (1, at(10, 1), "/pricing", {}),
    (1, at(10, 2), "/pricing", SIGNED),
    (2, at(11, 0), "/pricing", {}),
    (2, at(11, 1), "/", {}),
    (2, at(11, 2), "/", SIGNED),
    (3, at(12, 0), "/", {}),
    (3, at(12, 1), "/", {}),
    (3, at(12, 3), "/pricing", {}),
    (3, at(12, 4), "/pricing", {}),
    (3, at(12, 5), "/pricing", SIGNED),
    (4, at(13, 0), "/", {}),
    (4, at(13, 1), "/", SIGNED),
    (5, at(3, 50, 20), "/", {}),
    (5, at(3, 55, 20), "/pricing", {}),
    (5, at(4, 5, 20), "/pricing", SIGNED),
    (6, at(14, 0), "/", {}),
    (6, at(15, 0), "/pricing", {}),
    (6, at(15, 1), "/pricing", SIGNED),
]


@pytest.fixture
def site(app_factory: Any, site_in: Any) -> Iterator[tuple[Flask, int]]:
    app = app_factory()
    site_id = site_in(app)
    with app.app_context():
        db.session.get(Site, site_id).timezone = ZONE
        db.session.commit()
    for number, moment, path, extra in EVENTS:
        dataset.spool(app, site_id, visitor(number), moment, path, **extra)
    drain(app)
    yield app, site_id


def steps_of(
    app: Flask, site_id: int, first: date, last: date, *filters: str, across: bool = False
) -> list[tuple[int, int, float | None]]:
    period = resolve("custom", ZONE, datetime.now(UTC), start=first, end=last)
    query = stats.ReportQuery(site_id, ZONE, period, parse_filters(list(filters)))
    with app.app_context():
        result = stats.Report(query).funnel(FUNNEL, across_visits=across)
    return [(step.visits, step.visitors, step.median_seconds) for step in result.steps]


def test_in_order_within_a_visit(site: Any) -> None:
    app, site_id = site
    march_19 = date(2026, 3, 19)
    # Entered: V1, V2, V3, V4, V5 and V6's first visit. Pricing after the entry: V1, V3, V5
    # (60, 180 and 300 s after it); then Signup: V1, V3, V5 (60, 120, 600 s).
    assert steps_of(app, site_id, march_19, march_19) == [
        (6, 6, None),
        (3, 3, 180.0),
        (3, 3, 120.0),
    ]


def test_across_the_visits_of_a_visitor_day(site: Any) -> None:
    app, site_id = site
    march_19 = date(2026, 3, 19)
    # V6 now goes on from its first visit to its second (3,600 s, then 60 s).
    assert steps_of(app, site_id, march_19, march_19, across=True) == [
        (6, 6, None),
        (4, 4, 240.0),  # median of 60, 180, 300, 3600
        (4, 4, 90.0),  # median of 60, 60, 120, 600
    ]


def test_a_visit_counts_in_the_period_it_started(site: Any) -> None:
    app, site_id = site
    march_20 = date(2026, 3, 20)
    # V5's events after midnight belong to its visit of 03-19: nothing enters on 03-20.
    assert steps_of(app, site_id, march_20, march_20) == [(0, 0, None)] * 3


def test_filters_choose_the_visits(site: Any) -> None:
    app, site_id = site
    march_19 = date(2026, 3, 19)
    # Visits with a /pricing pageview: V1, V2, V3, V5, and V6's second (which never enters).
    found = steps_of(app, site_id, march_19, march_19, "page:is:/pricing")
    assert [visits for visits, _visitors, _median in found] == [4, 3, 3]
    # Visits that converted to Signup (a goal filter) — every visit with a Signup event.
    period = resolve("custom", ZONE, datetime.now(UTC), start=march_19, end=march_19)
    with app.app_context():
        filters = parse_filters(["goal:is:Signup"])
        from flask_tracking.reports.dimensions import bind_goals

        query = stats.ReportQuery(site_id, ZONE, period, bind_goals(filters, (SIGNUP,)))
        result = stats.Report(query).funnel(FUNNEL)
    # V6's first visit has no Signup: out. V1..V5 enter.
    assert [step.visits for step in result.steps] == [5, 3, 3]
    assert result.of_entered(2) == pytest.approx(60.0)
    assert result.of_previous(1) == pytest.approx(60.0) and result.dropped(1) == 2
    assert result.converted == pytest.approx(60.0)


@pytest.mark.parametrize(
    ("steps", "message"),
    [
        ([], "needs 2 to 8 steps"),
        ([HOME], "A funnel of one step is a goal"),
        ([HOME] * 9, "at most 8 steps"),
    ],
)
def test_bad_funnels_are_refused(steps: list[Any], message: str) -> None:
    with pytest.raises(InvalidFunnel, match=message) as refused:
        make_funnel("F", steps)
    assert refused.value.field == "steps"
    with pytest.raises(InvalidFunnel, match="needs a name"):
        make_funnel(" ", [HOME, PRICING])


def test_funnels_keep_their_goals_and_refuse_other_sites_goals(site: Any, site_in: Any) -> None:
    app, site_id = site
    other = site_in(app, "https://other.example")
    with app.app_context():
        mine = db.session.get(Site, site_id)
        rows = [goal_rows.add_goal(mine, goal) for goal in (HOME, PRICING, SIGNUP)]
        theirs = goal_rows.add_goal(db.session.get(Site, other), make_goal("X", "page", path="/x"))
        funnel = funnel_rows.add_funnel(mine, "Checkout", [row.id for row in rows])
        assert funnel.definition == FUNNEL
        with pytest.raises(InvalidFunnel, match="no goal"):
            funnel_rows.add_funnel(mine, "Stolen", [rows[0].id, theirs.id])
        with pytest.raises(InvalidFunnel, match="already has a funnel named"):
            funnel_rows.add_funnel(mine, "Checkout", [rows[0].id, rows[1].id])
        with pytest.raises(InvalidGoal, match="is a step of the funnel"):
            goal_rows.delete_goal(rows[1])
        assert [goal.name for goal in mine.goals] == ["Home", "Pricing", "Signup"]
        funnel_rows.update_funnel(funnel, "Short", [rows[0].id, rows[2].id], across_visits=True)
        assert [s.goal.name for s in funnel.steps] == ["Home", "Signup"] and funnel.across_visits
        goal_rows.delete_goal(rows[1])  # no funnel uses it now
        funnel_rows.delete_funnel(funnel)
        assert [goal.name for goal in mine.goals] == ["Home", "Signup"]
