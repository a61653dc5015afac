"""Retention: each site's events and sessions past its retention go, in bounded batches, from
the scheduled jobs (ops/jobs.py); rollups stay if the operator says so. On this leg's
database (the sites' settings) and the embedded store."""

from __future__ import annotations

import json
import threading
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import select

from flask_tracking.events import current_store
from flask_tracking.extensions import db
from flask_tracking.ingest import drain
from flask_tracking.reports.export import read
from flask_tracking.tracking.models import Site
from tests.api.helpers import new_site
from tests.conftest import stored_events
from tests.ingest.test_writer import spool_event

NOON = datetime.now(UTC).replace(hour=12, minute=0, second=0, microsecond=0)
AGES = (40, 20, 12, 5, 1)  # days ago, one event each


def with_events(app: Flask, site_in: Any, retention: int | None) -> int:
    site = site_in(app)
    with app.app_context():
        db.session.get(Site, site).retention_days = retention
        db.session.commit()
    for age in AGES:
        spool_event(app, site, NOON - timedelta(days=age), f"/{age}-days-ago")
    drain(app)
    return site


def ages_kept(app: Flask) -> list[int]:
    return sorted(int(str(e.pathname)[1:].split("-")[0]) for e in stored_events(app))


def ages_stored(app: Flask) -> list[int]:
    """What the store holds, read without draining (a writer thread may be running)."""
    with app.app_context():
        store = current_store()
        sites = db.session.scalars(select(Site.id)).all()
        found = [event for site in sites for event in read(store, site, 0, 2**62, limit=10**6)]
    return sorted(int(str(e.pathname)[1:].split("-")[0]) for e in found)


def rollup_days(app: Flask, site: int) -> set[int]:
    with app.app_context():
        rows = current_store().fetch(
            select(current_store().t.rollups.c.day).where(  # type: ignore[attr-defined]
                current_store().t.rollups.c.site_id == site  # type: ignore[attr-defined]
            )
        )
    return {int(row[0]) for row in rows}


def run(app: Flask, job: str = "retention") -> Any:
    with app.app_context():
        writer = app.extensions["ingest"].writer
    return dict(writer.schedule.run_all(job))[job]


def test_a_sites_old_events_go_and_its_daily_totals_stay(app: Flask, site_in: Any) -> None:
    site = with_events(app, site_in, retention=10)
    assert ages_kept(app) == [1, 5, 12, 20, 40]
    days_before = rollup_days(app, site)
    outcome = run(app)  # as `jobs run` does: batch after batch until none is left
    assert ages_kept(app) == [1, 5]
    assert outcome.again is False
    # The unfiltered reports of those days still read their rollups.
    assert rollup_days(app, site) == days_before
    assert len(days_before) >= 4
    assert run(app).summary == "0 rows past their retention deleted (0 site(s))"


def test_without_keeping_rollups_they_go_too(app_factory: Any, site_in: Any) -> None:
    app = app_factory(RETENTION_KEEP_ROLLUPS=False)
    site = with_events(app, site_in, retention=10)
    today = max(rollup_days(app, site))
    run(app)
    assert ages_kept(app) == [1, 5]
    assert min(rollup_days(app, site)) >= today - 10


def test_the_default_applies_to_sites_without_their_own_and_0_keeps_all(
    app_factory: Any, site_in: Any
) -> None:
    keep_all = app_factory()
    with_events(keep_all, site_in, retention=None)
    run(keep_all)
    assert ages_kept(keep_all) == [1, 5, 12, 20, 40]  # RETENTION_DAYS = 0: everything kept

    defaulted = app_factory(RETENTION_DAYS=15)
    with_events(defaulted, site_in, retention=None)
    own = with_events(defaulted, site_in, retention=30)
    run(defaulted)
    with defaulted.app_context():
        kept = {
            site: sorted(int(str(e.pathname)[1:].split("-")[0]) for e in events)
            for site, events in _by_site(stored_events(defaulted)).items()
        }
    assert kept[own] == [1, 5, 12, 20]
    assert [ages for site, ages in kept.items() if site != own] == [[1, 5, 12]]


def _by_site(events: list[Any]) -> dict[int, list[Any]]:
    found: dict[int, list[Any]] = {}
    for event in events:
        found.setdefault(event.site_id, []).append(event)
    return found


def test_a_long_purge_goes_in_bounded_batches_and_comes_back_until_done(
    app_factory: Any, site_in: Any
) -> None:
    app = app_factory(RETENTION_BATCH_DAYS=10)
    with_events(app, site_in, retention=3)
    with app.app_context():
        schedule = app.extensions["ingest"].writer.schedule
    passes = []
    for clock in range(10):
        done = dict(schedule.run_due(now=1000.0 + clock))
        if "retention" in done:
            passes.append((done["retention"].again, ages_kept(app)))
        if passes and not passes[-1][0]:
            break
    # Ten days from the oldest left, each pass: 40 days ago alone; then 20 and 12; then 5
    # (the cut, 3 days ago, comes first), done.
    assert passes == [
        (True, [1, 5, 12, 20]),
        (True, [1, 5]),
        (False, [1]),
    ]


def test_the_edit_page_sets_a_sites_retention(
    client: Any, make_user: Any, make_site: Any, app: Flask
) -> None:
    owner = make_user()
    site = make_site(owner)
    client.post("/login/", data={"email": owner.email, "password": "correct horse battery"})
    page = client.get(f"/sites/{site}/edit").get_data(as_text=True)
    assert "Keep events for (days)" in page
    assert "The default here keeps every event." in page
    form = {"base_url": "https://example.com", "name": "", "timezone": "UTC"}
    for bad in ("0", "-3", "many", "36501"):
        answer = client.post(f"/sites/{site}/edit", data={**form, "retention_days": bad})
        assert answer.status_code == 400  # the form again, with the error
        with app.app_context():
            assert db.session.get(Site, site).retention_days is None
    assert (
        client.post(f"/sites/{site}/edit", data={**form, "retention_days": "90"}).status_code == 302
    )
    with app.app_context():
        assert db.session.get(Site, site).retention_days == 90
    client.post(f"/sites/{site}/edit", data={**form, "retention_days": ""})
    with app.app_context():
        assert db.session.get(Site, site).retention_days is None


def test_the_api_reads_and_changes_a_sites_retention(app: Flask) -> None:
    site, key = new_site(app)
    client = app.test_client()
    url = f"/api/v1/sites/{site}"
    assert client.get(url, headers=key).get_json()["retention_days"] is None
    changed = client.patch(url, json={"retention_days": 30}, headers=key)
    assert changed.get_json()["retention_days"] == 30
    # Absent: unchanged.
    assert client.patch(url, json={"name": "A"}, headers=key).get_json()["retention_days"] == 30
    for bad in (0, -1, 36_501, "many"):
        refused = client.patch(url, json={"retention_days": bad}, headers=key)
        assert refused.status_code == 400
        assert "retention_days" in json.dumps(refused.get_json())
    assert client.get(url, headers=key).get_json()["retention_days"] == 30
    # Null: back to the server's default.
    back = client.patch(url, json={"retention_days": None}, headers=key)
    assert back.get_json()["retention_days"] is None
    created = client.post(
        "/api/v1/sites", json={"base_url": "https://b.example", "retention_days": 7}, headers=key
    )
    assert created.status_code == 201
    assert created.get_json()["retention_days"] == 7


def test_jobs_list_and_run_from_the_command_line(app: Flask, site_in: Any) -> None:
    with_events(app, site_in, retention=10)
    listed = app.test_cli_runner().invoke(args=["jobs", "list"])
    assert listed.exit_code == 0
    assert [line.split()[0] for line in listed.output.splitlines()] == [
        "salts",
        "rollups",
        "retention",
        "erasures",
        "imports",
        "reports",
        "alerts",
        "deliveries",
        "mail",
        "audit",
        "billing",
    ]
    assert "every 3600 s (RETENTION_INTERVAL)" in listed.output
    assert "every 2 s (MAIL_INTERVAL)" in listed.output
    ran = app.test_cli_runner().invoke(args=["jobs", "run", "--only", "retention"])
    assert ran.exit_code == 0, ran.output
    assert ran.output.startswith("retention: ")
    assert ages_kept(app) == [1, 5]


@pytest.mark.parametrize(
    "job",
    ["salts", "rollups", "erasures", "imports", "reports", "alerts", "deliveries", "billing"],
)
def test_the_other_jobs_run_on_demand(app: Flask, job: str) -> None:
    assert run(app, job).summary


def test_the_writer_runs_the_purge_on_its_own(app_factory: Any, site_in: Any) -> None:
    app = app_factory(RETENTION_DAYS=10, RETENTION_BATCH_DAYS=2)
    with_events(app, site_in, retention=None)
    with app.app_context():
        writer = app.extensions["ingest"].writer
    stop = threading.Event()
    thread = threading.Thread(target=writer.run, args=(stop,))
    thread.start()
    try:
        deadline = time.monotonic() + 20
        while ages_stored(app) != [1, 5]:
            assert time.monotonic() < deadline, f"still kept: {ages_stored(app)}"
            time.sleep(0.2)
    finally:
        stop.set()
        thread.join(10)
