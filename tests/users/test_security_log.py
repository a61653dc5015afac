"""The settings page's security log and where each session logged in from."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pyotp
from flask import Flask
from sqlalchemy import select

from flask_tracking.extensions import db
from flask_tracking.users import accounts, audit
from flask_tracking.users.models import AuditEvent, LoginSession
from tests.conftest import PASSWORD, geolite2_2018

LONDON = "81.2.69.142"  # Willesden (north-west London) in the pinned 2018 file


def kinds(app: Flask, user_id: int) -> list[str]:
    with app.app_context():
        return [event.kind for event in reversed(audit.events_of(user_id))]


def test_logins_failures_and_account_changes_are_logged_with_the_address(
    app_factory: Any,
) -> None:
    app = app_factory(**geolite2_2018())
    with app.app_context():
        user_id = accounts.register("owner@example.com", PASSWORD, verified=True).id
    client = app.test_client()
    client.environ_base["REMOTE_ADDR"] = LONDON
    client.post("/login/", data={"email": "owner@example.com", "password": "not it at all"})
    client.post("/login/", data={"email": "nobody@example.com", "password": "not it at all"})
    client.post("/login/", data={"email": "owner@example.com", "password": PASSWORD})
    client.post("/settings/api-keys/", data={"name": "<b>nightly</b>", "scope": "read"})
    client.post("/settings/password", data={"current": PASSWORD, "new": "a brand new password"})
    client.post("/settings/two-factor/setup")
    with client.session_transaction() as state:
        secret = state["two_factor_setup"]
    client.post("/settings/two-factor/enable", data={"code": pyotp.TOTP(secret).now()})
    assert kinds(app, user_id) == [
        "login_failed",
        "login",
        "api_key_created",
        "password_changed",
        "two_factor_on",
    ]
    page = client.get("/settings/").get_data(as_text=True)
    assert "Failed login (wrong password)" in page and LONDON in page
    assert "&lt;b&gt;nightly&lt;/b&gt;" in page and "<b>nightly</b>" not in page
    # Where the session logged in from: the city and country of its address then.
    with app.app_context():
        places = set(db.session.scalars(select(LoginSession.place)))
    assert places == {"Willesden, United Kingdom"}
    assert "Willesden, United Kingdom" in page


def test_old_events_are_deleted_by_the_audit_job(app: Flask, make_user: Any) -> None:
    user = make_user()
    with app.app_context():
        audit.record(user.id, "login")
        db.session.add(
            AuditEvent(
                user_id=user.id,
                kind="login",
                created_at=datetime.now(UTC) - timedelta(days=181),
            )
        )
        db.session.commit()
    [(name, outcome)] = app.extensions["ingest"].writer.schedule.run_all("audit")
    assert name == "audit" and outcome.summary.startswith("1 security-log event(s)")
    assert kinds(app, user.id) == ["login"]
