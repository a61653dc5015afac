"""The migrations build exactly the schema the models describe (SQLite here, PostgreSQL in CI).

A model changed without a migration (or a hand-written migration that differs from its model,
like 0005_api_keys) would pass every other test on a database made from the models; this
compares the migrated database with the models, column types included.
"""

from __future__ import annotations

import contextlib
import tempfile
from datetime import UTC, datetime

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from flask import Flask
from flask_migrate import downgrade, upgrade
from sqlalchemy import inspect, text

from flask_tracking import create_app
from flask_tracking.config import TestConfiguration
from flask_tracking.events import close_store
from flask_tracking.extensions import db
from flask_tracking.reports.goals import make_goal
from flask_tracking.tracking.experiments import Draft, add_experiment
from flask_tracking.tracking.funnels import add_funnel
from flask_tracking.tracking.goals import add_goal
from flask_tracking.tracking.models import Site
from tests.conftest import TEST_DATABASE_URL
from tests.servers import postgresql_database


def test_migrated_database_matches_the_models(app: Flask) -> None:
    with app.app_context(), db.engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        differences = compare_metadata(context, db.metadata)
    assert differences == []


def test_goals_arrive_on_a_database_holding_sites_and_leave_them_on_the_way_down() -> None:
    """0007 -> 0010 on a database with a user and sites: they stay as they were, goals,
    funnels and experiments can be added (and cascade with their site); downgrading drops
    only those."""
    with postgresql_database() if TEST_DATABASE_URL else contextlib.nullcontext("sqlite://") as url:
        settings = {
            "SQLALCHEMY_DATABASE_URI": url,
            "SPOOL_DIR": tempfile.mkdtemp(prefix="flask-tracking-spool-"),
        }
        app = create_app(type("Config", (TestConfiguration,), settings))
        try:
            with app.app_context():
                upgrade(revision="0007")
                connection = db.session.connection()
                connection.execute(
                    text(
                        "INSERT INTO users (id, email, name, password_hash, created_at) "
                        "VALUES (1, 'old@example.com', 'Old', 'x', :now)"
                    ),
                    {"now": datetime.now(UTC)},
                )
                for site_id in (1, 2):
                    connection.execute(
                        text(
                            "INSERT INTO sites (id, owner_id, base_url, name, created_at, "
                            "excluded_ips, excluded_paths, timezone) VALUES (:id, 1, "
                            "'https://a.example', :name, :now, '', '', 'Europe/Paris')"
                        ),
                        {"id": site_id, "name": f"Site {site_id}", "now": datetime.now(UTC)},
                    )
                db.session.commit()
                upgrade()
                site = db.session.get(Site, 1)
                assert site is not None and site.timezone == "Europe/Paris" and site.goals == []
                signup = add_goal(site, make_goal("Signup", "event", event="Signup"))
                pricing = add_goal(site, make_goal("Pricing", "page", path="/pricing"))
                add_funnel(site, "Checkout", [pricing.id, signup.id])
                add_experiment(site, Draft("copy", "Copy", [("A", 1), ("B", 1)], [signup.id]))
                assert [s.goal.name for s in site.funnels[0].steps] == ["Pricing", "Signup"]
                other = db.session.get(Site, 2)
                docs = add_goal(other, make_goal("Docs", "page", path="/docs/**"))
                start = add_goal(other, make_goal("Start", "page", path="/"))
                add_funnel(other, "Reading", [start.id, docs.id])
                add_experiment(other, Draft("docs", "Docs", [("A", 1), ("B", 1)], [docs.id]))
                assert [g.definition.path for g in other.goals] == ["/docs/**", "/"]
                delete_site_row = text("DELETE FROM sites WHERE id = 2")
                if db.engine.dialect.name == "sqlite":
                    db.session.execute(text("PRAGMA foreign_keys=ON"))
                db.session.execute(delete_site_row)
                db.session.commit()
                # The site's deletion took its goals and its funnel (whose steps use them).
                assert db.session.scalar(text("SELECT count(*) FROM goals")) == 2
                assert db.session.scalar(text("SELECT count(*) FROM funnel_steps")) == 2
                assert db.session.scalar(text("SELECT count(*) FROM experiment_goals")) == 1
                db.session.remove()  # no open transaction may hold the tables being dropped
                downgrade(revision="0007")
                tables = inspect(db.engine).get_table_names()
                gone = {"goals", "funnels", "funnel_steps", "experiments", "experiment_goals"}
                assert not gone & set(tables)
                assert db.session.scalar(text("SELECT name FROM sites WHERE id = 1")) == "Site 1"
        finally:
            close_store(app)
            with app.app_context():
                db.session.remove()
                db.engine.dispose()


def test_addresses_of_existing_accounts_count_as_confirmed_and_going_down_keeps_them() -> None:
    """0011 -> 0012 on a database with a user, a site, a login session and a goal: the user's
    address counts as confirmed from their creation (REQUIRE_EMAIL_VERIFICATION must not lock
    anyone out), the outbox exists; back down to 0010, every row is still there (on SQLite a
    batch copy of `users` or `sites` would have cascaded their deletion)."""
    with postgresql_database() if TEST_DATABASE_URL else contextlib.nullcontext("sqlite://") as url:
        settings = {
            "SQLALCHEMY_DATABASE_URI": url,
            "SPOOL_DIR": tempfile.mkdtemp(prefix="flask-tracking-spool-"),
        }
        app = create_app(type("Config", (TestConfiguration,), settings))
        created = datetime(2025, 3, 4, 5, 6, 7, tzinfo=UTC)
        rows = {
            "users": "INSERT INTO users (id, email, name, password_hash, created_at) "
            "VALUES (1, 'old@example.com', 'Old', 'x', :now)",
            "sites": "INSERT INTO sites (id, owner_id, base_url, name, created_at, "
            "excluded_ips, excluded_paths, timezone) "
            "VALUES (1, 1, 'https://a.example', 'A', :now, '', '', 'UTC')",
            "login_sessions": "INSERT INTO login_sessions (id, user_id, token_hash, created_at, "
            "last_seen_at, device) VALUES (1, 1, 'h', :now, :now, 'Firefox')",
            "goals": "INSERT INTO goals (id, site_id, name, kind, path, event, prop_key, "
            "prop_value, revenue_prop, currency, created_at) "
            "VALUES (1, 1, 'Signup', 'event', '', 'Signup', '', '', '', '', :now)",
        }
        try:
            with app.app_context():
                upgrade(revision="0011")
                for statement in rows.values():
                    db.session.execute(text(statement), {"now": created})
                db.session.commit()
                upgrade()
                verified = db.session.scalar(text("SELECT email_verified_at FROM users"))
                assert verified is not None
                assert str(verified).startswith("2025-03-04 05:06:07")
                assert "mail_outbox" in inspect(db.engine).get_table_names()
                db.session.remove()
                downgrade(revision="0010")
                for table in rows:
                    assert db.session.scalar(text(f"SELECT count(*) FROM {table}")) == 1, table  # noqa: S608
                assert "mail_outbox" not in inspect(db.engine).get_table_names()
                assert "email_verified_at" not in {
                    column["name"] for column in inspect(db.engine).get_columns("users")
                }
        finally:
            close_store(app)
            with app.app_context():
                db.session.remove()
                db.engine.dispose()
