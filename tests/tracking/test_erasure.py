"""Erasing visitors' data: an admin asks (a visitor id from a raw event, or a page and a time
range), the writer's job deletes every row of those visitor-days — closed days (their rollups
recounted, so unfiltered reports read from rollups agree with the rows left) and open ones —
and the request is in the requester's security log. Editors and viewers cannot ask."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from flask import Flask

from flask_tracking.extensions import db
from flask_tracking.ingest import drain
from flask_tracking.reports import stats
from flask_tracking.reports.ranges import resolve
from flask_tracking.tracking.models import Erasure, Membership, Site
from flask_tracking.users import accounts, audit
from tests.api.conversions.test_experiments import visitor
from tests.api.helpers import spool_event
from tests.conftest import PASSWORD, geolite2_2018, stored_events
from tests.reports import dataset

OWNER = "owner@example.com"
MARCH = (date(2026, 3, 7), date(2026, 3, 9))


@pytest.fixture
def site(app_factory: Any) -> Iterator[tuple[Flask, int]]:
    app = app_factory(**geolite2_2018())
    with app.app_context():
        owner = accounts.register(OWNER, PASSWORD, verified=True)
        row = Site(owner_id=owner.id, base_url="https://example.com", timezone=dataset.TIMEZONE)
        db.session.add(row)
        db.session.commit()
        site_id = row.id
    dataset.load(app, site_id)
    drain(app)
    yield app, site_id


def totals(app: Flask, site_id: int, rollups: bool) -> tuple[int, int, int]:
    """Visitors, visits and pageviews of the data set's days, from rollups or from rows."""
    period = resolve("custom", dataset.TIMEZONE, datetime.now(UTC), start=MARCH[0], end=MARCH[1])
    token = stats.USE_ROLLUPS.set(rollups)
    try:
        with app.app_context():
            found = stats.aggregate(stats.ReportQuery(site_id, dataset.TIMEZONE, period)).current
    finally:
        stats.USE_ROLLUPS.reset(token)
    return found.visitors, found.visits, found.pageviews


def run_job(app: Flask) -> str:
    with app.app_context():
        writer = app.extensions["ingest"].writer
    return dict(writer.schedule.run_all("erasures"))["erasures"].summary


def login(app: Flask, email: str = OWNER) -> Any:
    client = app.test_client()
    assert client.post("/login/", data={"email": email, "password": PASSWORD}).status_code == 302
    return client


def test_a_visitor_of_closed_days_is_erased_and_the_rollups_recounted(site: Any) -> None:
    app, site_id = site
    assert totals(app, site_id, rollups=True) == totals(app, site_id, rollups=False) == (5, 5, 7)
    events = stored_events(app)
    safari = {e.visitor_id for e in events if e.browser == "Mobile Safari"}
    assert len(safari) == 1  # visitor B: one visit of 2 pageviews and a custom event
    [target] = safari
    client = login(app)
    page = client.get(f"/sites/{site_id}/visits").get_data(as_text=True)
    assert f">{target}<" in page  # the raw events show the visitor id
    asked = client.post(f"/sites/{site_id}/erase", data={"visitor_id": str(target)})
    assert asked.status_code == 302
    assert run_job(app) == "1 erasure request(s) carried out"
    left = stored_events(app)
    assert target not in {e.visitor_id for e in left}
    assert len(left) == len(events) - 3
    assert totals(app, site_id, rollups=True) == totals(app, site_id, rollups=False) == (4, 4, 5)
    with app.app_context():
        [done] = db.session.query(Erasure).all()
        assert (done.visitors, done.rows, done.done_at is not None) == (1, 4, True)  # + a session
        owner = accounts.find_user(OWNER)
        assert owner is not None
        assert audit.events_of(owner.id)[0].kind == "visitors_erased"
    listed = client.get(f"/sites/{site_id}/erase").get_data(as_text=True)
    assert f"visitor {target}" in listed and "done" in listed
    assert run_job(app) == "0 erasure request(s) carried out"  # done once


def test_the_visitors_of_a_page_in_a_time_range_are_erased(site: Any) -> None:
    app, site_id = site
    before = stored_events(app)
    seen = {e.visitor_id for e in before if e.pathname == "/pricing"}
    client = login(app)
    asked = client.post(
        f"/sites/{site_id}/erase",
        data={"page": "/pricing", "start": "2026-03-01T00:00", "end": "2026-03-31T00:00"},
    )
    assert asked.status_code == 302
    run_job(app)
    left = stored_events(app)
    assert seen and not seen & {e.visitor_id for e in left}
    assert {e.visitor_id for e in left} == {e.visitor_id for e in before} - seen
    assert totals(app, site_id, rollups=True) == totals(app, site_id, rollups=False)


def test_a_visitor_of_today_is_erased_from_the_open_day(site: Any) -> None:
    app, site_id = site
    now = datetime.now(UTC) - timedelta(minutes=2)
    for number in (1, 2):
        spool_event(app, site_id, visitor(number), now, f"/today/{number}")
    drain(app)
    today = [e for e in stored_events(app) if e.pathname and e.pathname.startswith("/today/")]
    target = next(e.visitor_id for e in today if e.pathname == "/today/1")
    client = login(app)
    assert (
        client.post(f"/sites/{site_id}/erase", data={"visitor_id": str(target)}).status_code == 302
    )
    run_job(app)
    left = [
        e.pathname for e in stored_events(app) if e.pathname and e.pathname.startswith("/today/")
    ]
    assert left == ["/today/2"]
    with app.app_context():
        assert stats.realtime(site_id) == 1


def test_bad_requests_are_refused_and_only_admins_may_ask(site: Any) -> None:
    app, site_id = site
    with app.app_context():
        for email, role in (("editor@example.com", "editor"), ("admin@example.com", "admin")):
            user = accounts.register(email, PASSWORD, verified=True)
            db.session.add(Membership(site_id=site_id, user_id=user.id, role=role))
        db.session.commit()
    assert login(app, "editor@example.com").get(f"/sites/{site_id}/erase").status_code == 403
    admin = login(app, "admin@example.com")
    assert admin.get(f"/sites/{site_id}/erase").status_code == 200
    for data in (
        {},
        {"visitor_id": "-4"},
        {"visitor_id": "many"},
        {"page": "pricing", "start": "2026-03-01T00:00", "end": "2026-03-31T00:00"},
        {"page": "/pricing"},
        {"page": "/pricing", "start": "2026-03-31T00:00", "end": "2026-03-01T00:00"},
        {"page": "/pricing", "start": "2024-01-01T00:00", "end": "2026-03-01T00:00"},
    ):
        assert admin.post(f"/sites/{site_id}/erase", data=data).status_code == 400, data
    with app.app_context():
        assert db.session.query(Erasure).count() == 0
