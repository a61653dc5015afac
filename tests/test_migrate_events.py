"""Upgrading a database of the first design moves its events into the event store, whole.

The database is migrated to 0006 (the last revision that kept events in SQL), filled with
rows as the first version's writer stored them — two sites, sessions over two days, custom
events with properties, a row from before visitors were hashed, drop counts and spool
checkpoints — then upgraded to the head. Every event must arrive, with its id, its context and
its session, and the dashboard must count what the old tables held.
"""

from __future__ import annotations

import contextlib
import tempfile
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from typing import Any

from flask import Flask
from flask_migrate import upgrade
from sqlalchemy import MetaData, Table, insert, inspect, text

from flask_tracking import create_app
from flask_tracking.config import TestConfiguration
from flask_tracking.events import close_store, owned_store
from flask_tracking.extensions import db
from flask_tracking.reports.ranges import DateRange
from flask_tracking.reports.stats import Report, ReportQuery
from tests.conftest import TEST_DATABASE_URL, drop_counts, stored_events, stored_sessions
from tests.servers import postgresql_database

DAY1 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
CONTEXT = {
    "browser": "Firefox",
    "browser_version": "133.0",
    "os": "Windows",
    "os_version": "10",
    "device": "desktop",
    "city": "Willesden",
    "region": "England",
    "country_code": "GB",
    "country_name": "United Kingdom",
    "postal_code": "NW10",
    "latitude": 51.5492,
    "longitude": -0.2282,
    "hostname": "a.example",
    "screen_width": 1440,
    "screen_size": "laptop",
}


def old_visit(number: int, site_id: int, at: datetime, path: str, **extra: Any) -> dict[str, Any]:
    """A `visits` row as the first version stored it."""
    return {
        "id": number,
        "site_id": site_id,
        "date": at,
        "event": "pageview",
        "url": f"https://a.example{path}",
        "pathname": path,
        "event_id": f"{number:032x}",
        "visitor_id": 1000 + site_id,
        "ip_address": "81.2.69.0",
        "referrer": None,
        "referrer_source": None,
        "utm_source": None,
        "props": None,
        **CONTEXT,
        **extra,
    }


@contextlib.contextmanager
def round_one_app() -> Iterator[Flask]:
    """An app on a new database migrated only to 0006, before the event store existed (on
    PostgreSQL, a database of its own: the leg's shared one is at the head already)."""
    with postgresql_database() if TEST_DATABASE_URL else contextlib.nullcontext("sqlite://") as url:
        settings = {
            "SQLALCHEMY_DATABASE_URI": url,
            "SPOOL_DIR": tempfile.mkdtemp(prefix="flask-tracking-spool-"),
        }
        app = create_app(type("Config", (TestConfiguration,), settings))
        with app.app_context():
            upgrade(revision="0006")
        try:
            yield app
        finally:
            close_store(app)
            with app.app_context():
                db.session.remove()
                db.engine.dispose()


def fill(app: Flask) -> None:
    """Store what a first-version site would hold."""
    with app.app_context():
        connection = db.session.connection()
        meta = MetaData()
        table = {
            name: Table(name, meta, autoload_with=connection)
            for name in ("users", "sites", "visits", "dropped_events", "spool_checkpoints")
        }
        connection.execute(
            insert(table["users"]).values(
                id=1,
                email="old@example.com",
                name="Old",
                password_hash="x",
                created_at=DAY1 - timedelta(days=30),
            )
        )
        for site_id, zone in ((1, "UTC"), (2, "Europe/Paris")):
            connection.execute(
                insert(table["sites"]).values(
                    id=site_id,
                    owner_id=1,
                    base_url="https://a.example",
                    name=f"Site {site_id}",
                    timezone=zone,
                    created_at=DAY1 - timedelta(days=30),
                    excluded_ips="",
                    excluded_paths="",
                )
            )
        minute = timedelta(minutes=1)
        rows = [
            # Site 1, day 1: a visitor reads two pages from Google, then signs up.
            old_visit(
                1, 1, DAY1, "/", referrer="https://www.google.com/", referrer_source="Google"
            ),
            old_visit(2, 1, DAY1 + 2 * minute, "/pricing"),
            old_visit(3, 1, DAY1 + 3 * minute, "/pricing", event="Signup", props={"plan": "pro"}),
            # Another visitor bounces (on a phone, from a campaign).
            old_visit(
                4,
                1,
                DAY1 + 5 * minute,
                "/blog/<b>x</b>",
                visitor_id=77,
                device="mobile",
                screen_size="mobile",
                utm_source="newsletter",
            ),
            # The first visitor again, 40 minutes later: a second session.
            old_visit(5, 1, DAY1 + 43 * minute, "/docs"),
            # Day 2: a row from before visitors were hashed (no visitor id, no session id).
            old_visit(6, 1, DAY1 + timedelta(days=1), "/", visitor_id=None, event_id=None),
            # Site 2 (another zone): one pageview late in the UTC evening.
            old_visit(7, 2, DAY1 + timedelta(hours=14), "/fr/"),
        ]
        connection.execute(insert(table["visits"]), rows)
        connection.execute(
            insert(table["dropped_events"]),
            [
                {"site_id": 1, "day": date(2026, 3, 2), "reason": "bot", "count": 12},
                {"site_id": 2, "day": date(2026, 3, 3), "reason": "excluded_ip", "count": 3},
            ],
        )
        connection.execute(
            insert(table["spool_checkpoints"]), [{"segment": "w1-000001.jsonl", "offset": 4096}]
        )
        db.session.commit()


def test_upgrading_a_first_version_database_moves_every_event(capsys: Any) -> None:
    with round_one_app() as app:
        fill(app)
        with app.app_context():
            upgrade()
            tables = set(inspect(db.engine).get_table_names())
        assert not tables & {"visits", "sessions", "dropped_events", "spool_checkpoints"}
        assert "Moved 7 events of 2 site(s)" in capsys.readouterr().out
        with app.app_context():
            # The zone each site's rows are marked in is recorded as they move: the writer's
            # first refresh has nothing to re-mark.
            assert owned_store(app).zones() == {1: "UTC", 2: "Europe/Paris"}
        # The accounts and sites are there as they were, with what later versions added.
        with app.app_context():
            users = db.session.execute(text("SELECT id, email, name FROM users")).all()
            sites = db.session.execute(
                text("SELECT id, owner_id, name, timezone, retention_days FROM sites ORDER BY id")
            ).all()
            db.session.remove()
        assert [tuple(row) for row in users] == [(1, "old@example.com", "Old")]
        assert [tuple(row) for row in sites] == [
            (1, 1, "Site 1", "UTC", None),
            (2, 1, "Site 2", "Europe/Paris", None),
        ]

        events = stored_events(app)
        assert [e.id for e in events if e.site_id == 1] == [1, 2, 3, 4, 5, 6]  # ids kept
        assert [e.id for e in events if e.site_id == 2] == [7]
        signup = next(e for e in events if e.event == "Signup")
        assert signup.props == {"plan": "pro"}
        assert signup.pathname == "/pricing"
        first = events[0]
        assert (first.country_code, first.city, first.browser, first.referrer_source) == (
            "GB",
            "Willesden",
            "Firefox",
            "Google",
        )
        assert next(e for e in events if e.id == 4).pathname == "/blog/<b>x</b>"

        # Sessions are derived with the first version's rule (30 minutes without an event).
        sessions = stored_sessions(app)
        assert len(sessions) == 5
        assert sorted(s.pageviews for s in sessions) == [1, 1, 1, 1, 2]
        assert sum(s.bounce for s in sessions) == 4

        assert drop_counts(app) == {(1, "bot"): 12, (2, "excluded_ip"): 3}

        with app.app_context():
            day1 = DAY1.replace(hour=0)
            period = DateRange(day1, day1 + timedelta(days=2), "two days", "day")
            top = Report(ReportQuery(1, "UTC", period)).aggregate(compare=False).current
        assert (top.visitors, top.visits, top.pageviews, top.events) == (3, 4, 5, 1)


def test_a_second_migrate_moves_nothing_twice() -> None:
    with round_one_app() as app:
        fill(app)
        with app.app_context():
            upgrade()
        before = stored_events(app)
        result = app.test_cli_runner().invoke(args=["events", "migrate"])
        assert result.exit_code == 0, result.output
        assert "No old events to move" in result.output
        assert stored_events(app) == before
