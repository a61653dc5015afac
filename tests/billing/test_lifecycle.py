"""The life cycle with the local provider, through the app's pages and the collector: the
default plan, its limits, a trial, checkout, quotas (drop and hide), cancellation, the lock
and the purge; billing off; the admin area."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from flask_tracking.billing import service
from flask_tracking.billing.models import LOCKED, BillingEvent, Payment, Subscription
from flask_tracking.extensions import db
from flask_tracking.mail.models import OutgoingMail
from flask_tracking.tracking.models import Site
from flask_tracking.users import apikeys
from flask_tracking.users.models import AuditEvent, User
from tests.billing.conftest import send_events
from tests.conftest import stored_events


def _subscription(app: Flask, user_id: int) -> Subscription:
    with app.app_context():
        found = service.subscription_of(user_id)
        assert found is not None
        db.session.expunge(found)
        return found


def _drops(responses: list[Any]) -> list[str]:
    assert all(r.status_code == 202 for r in responses), [r.status_code for r in responses]
    return [r.headers.get("X-Tracking-Dropped", "") for r in responses]


def _checkout(client: FlaskClient, plan: str, price: str) -> str:
    response = client.post("/billing/checkout", data={"plan": plan, "price": price})
    assert response.status_code == 303
    page = client.get(response.headers["Location"])
    assert page.status_code == 200
    return str(response.headers["Location"])


def test_billing_off_hides_every_page_and_costs_the_collector_nothing(
    app_factory: Any, site_in: Any
) -> None:
    app = app_factory()
    site_id = site_in(app)
    client = app.test_client()
    for method, path in [
        ("get", "/billing"),
        ("post", "/billing/checkout"),
        ("post", "/billing/webhooks/stripe"),
        ("get", "/admin/accounts"),
        ("get", "/billing/local/portal"),
    ]:
        assert getattr(client, method)(path).status_code == 404, path
    assert _drops(send_events(client, site_id, 30)) == [""] * 30
    with app.app_context():
        assert db.session.scalars(select(Subscription)).all() == []


def test_the_whole_life_cycle(
    app: Flask,
    client: FlaskClient,
    logged_in: User,
    make_site: Any,
    billing_job: Callable[[Flask], str],
) -> None:
    site_id = make_site(logged_in)
    page = client.get("/billing").get_data(as_text=True)
    assert "Your plan: Free" in page and "10 events a month" in page
    assert "Start a 14-day trial" in page and "Subscribe: €9.00 a month" in page

    # The default plan: one site, no API.
    assert client.post("/sites/", data={"base_url": "https://two.example"}).status_code == 200
    with app.app_context():
        assert len(db.session.scalars(select(Subscription)).all()) == 0

    # 11 of 10 events: full (within the 20 % grace), the owner is told.
    assert _drops(send_events(client, site_id, 11)) == [""] * 11
    billing_job(app)
    assert _subscription(app, logged_in.id).quota_state == "full"
    assert "You have used all of this month" in client.get("/billing").get_data(as_text=True)
    # 13 > 12: over; the next events are dropped, answered 202 and counted as over_quota.
    send_events(client, site_id, 2)
    billing_job(app)
    assert _subscription(app, logged_in.id).quota_state == "over"
    assert _drops(send_events(client, site_id, 3)) == ["over_quota"] * 3
    assert len(stored_events(app)) == 13
    with app.app_context():
        subjects = [m.subject for m in db.session.scalars(select(OutgoingMail))]
    assert any("all the events of your Free plan" in s for s in subjects)
    assert any("new events are not recorded" in s for s in subjects)

    # A trial of Growth (20 events, no grace): collecting again.
    assert client.post("/billing/trial", data={"plan": "growth"}).status_code == 302
    billing_job(app)
    held = _subscription(app, logged_in.id)
    assert (held.status, held.plan, held.quota_state) == ("trialing", "growth", "ok")
    assert _drops(send_events(client, site_id, 2)) == ["", ""]
    # A second trial is refused.
    assert client.post("/billing/trial", data={"plan": "growth"}).status_code == 400
    # Nothing to cancel yet: the portal's cancel changes nothing.
    assert client.post("/billing/local/portal").status_code == 302
    assert _subscription(app, logged_in.id).status == "trialing"

    # Checkout: the local provider's page pays, and the same events Stripe sends arrive.
    location = _checkout(client, "growth", "eur-month")
    assert "Pay €9.00 (test payment)" in client.get(location).get_data(as_text=True)
    assert client.post(location).status_code == 302
    held = _subscription(app, logged_in.id)
    assert (held.status, held.plan, held.price, held.provider) == (
        "active",
        "growth",
        "eur-month",
        "local",
    )
    page = client.get("/billing").get_data(as_text=True)
    assert "€9.00" in page and re.search(r"LOCAL-\d+-", page)
    with app.app_context():
        kinds = [e.kind for e in db.session.scalars(select(BillingEvent).order_by(BillingEvent.id))]
    assert kinds == ["checkout_completed", "subscription_updated", "invoice_paid"]

    # Over Growth's 20: dropped again.
    send_events(client, site_id, 6)  # 15 + 6 = 21
    billing_job(app)
    assert _subscription(app, logged_in.id).quota_state == "over"
    assert _drops(send_events(client, site_id, 1)) == ["over_quota"]
    with app.app_context():  # server-side events through the API: the same rule
        user = db.session.get(User, logged_in.id)
        assert user is not None
        _key, writer_key = apikeys.create_key(user, "server", apikeys.READ_WRITE)
    server_event = client.post(
        f"/api/v1/sites/{site_id}/events",
        json={"url": "https://example.com/api", "ip": "8.8.8.8", "user_agent": "Mozilla/5.0"},
        headers={"Authorization": f"Bearer {writer_key}"},
    )
    assert server_event.status_code == 202
    assert server_event.get_json() == {"status": "dropped", "reason": "over_quota"}

    # Upgrade to Business (30 events, reports hidden over quota): collection resumes.
    assert client.post(_checkout(client, "business", "eur-month")).status_code == 302
    billing_job(app)
    held = _subscription(app, logged_in.id)
    assert (held.plan, held.quota_state) == ("business", "ok")
    assert _drops(send_events(client, site_id, 13)) == [""] * 13  # 34 > 33
    billing_job(app)
    assert _subscription(app, logged_in.id).quota_state == "over"
    assert _drops(send_events(client, site_id, 1)) == [""]  # still collected
    hidden = client.get(f"/sites/{site_id}")
    assert hidden.status_code == 402 and "Reports paused" in hidden.get_data(as_text=True)
    assert hidden.mimetype == "text/html"
    assert client.get(f"/sites/{site_id}/realtime").status_code == 402
    with app.app_context():
        user = db.session.get(User, logged_in.id)
        assert user is not None
        _key, secret = apikeys.create_key(user, "test", apikeys.READ)
    api = client.get(
        f"/api/v1/sites/{site_id}/stats/aggregate", headers={"Authorization": f"Bearer {secret}"}
    )
    assert api.status_code == 402 and api.get_json()["error"]["code"] == "over_quota"
    sites = client.get("/api/v1/sites", headers={"Authorization": f"Bearer {secret}"})
    assert sites.status_code == 200  # only reports are hidden

    # Cancel in the portal: Business ends by locking the account: nothing is collected.
    assert client.post("/billing/local/portal").status_code == 302
    held = _subscription(app, logged_in.id)
    assert held.status == LOCKED and held.locked_at is not None
    assert _drops(send_events(client, site_id, 2)) == ["account_locked"] * 2
    stored = len(stored_events(app))
    assert stored == 35

    # Kept for the plan's retention (30 days), then purged by the job; the account stays.
    with app.app_context():
        writer = app.extensions["ingest"].writer
        assert "0 account(s) purged" in service.run_job(writer.store, datetime.now(UTC))
        later = datetime.now(UTC) + timedelta(days=31)
        assert "1 account(s) purged" in service.run_job(writer.store, later)
        assert db.session.get(User, logged_in.id) is not None
    assert stored_events(app) == []
    assert _subscription(app, logged_in.id).purged_at is not None


def test_a_trial_ends_as_its_plan_says(app: Flask, client: FlaskClient, logged_in: User) -> None:
    client.post("/billing/trial", data={"plan": "growth"})
    with app.app_context():
        store = app.extensions["ingest"].writer.store
        service.run_job(store, datetime.now(UTC) + timedelta(days=13))
        assert service.subscription_of(logged_in.id).status == "trialing"  # type: ignore[union-attr]
        service.run_job(store, datetime.now(UTC) + timedelta(days=15))
        held = service.subscription_of(logged_in.id)
        assert held is not None and (held.status, held.plan) == ("active", "free")
        kinds = [e.kind for e in db.session.scalars(select(AuditEvent))]
    assert "billing_trial_started" in kinds and "billing_trial_ended" in kinds


def test_checkout_links_and_pages_are_the_account_s_own(
    app: Flask, client: FlaskClient, logged_in: User, make_user: Any, auth: Any
) -> None:
    location = _checkout(client, "growth", "eur-month")
    auth.logout()
    make_user(email="other@example.com")
    auth.login(email="other@example.com")
    response = client.post(location, follow_redirects=True)
    assert "This checkout link is not valid" in response.get_data(as_text=True)
    assert _subscription(app, logged_in.id).status == "active"  # untouched: still Free
    assert _subscription(app, logged_in.id).plan == "free"
    assert client.post("/billing/checkout", data={"plan": "gold", "price": "x"}).status_code == 400
    assert (
        client.post("/billing/checkout", data={"plan": "growth", "price": "gbp-month"}).status_code
        == 400
    )
    assert client.get("/admin/accounts").status_code == 404
    assert (
        client.post(f"/admin/accounts/{logged_in.id}", data={"action": "lock"}).status_code == 404
    )
    with app.app_context():
        assert db.session.scalars(select(Payment)).all() == []


def test_the_admin_area(app: Flask, client: FlaskClient, logged_in: User, make_user: Any) -> None:
    customer = make_user(email="customer@example.com")
    runner = app.test_cli_runner()
    assert (
        "is now an administrator"
        in runner.invoke(args=["admin", "grant", "OWNER@example.com"]).output
    )
    assert runner.invoke(args=["admin", "grant", "nobody@example.com"]).exit_code != 0
    page = client.get("/admin/accounts").get_data(as_text=True)
    assert "customer@example.com" in page and "Free" in page

    def act(**data: Any) -> str:
        response = client.post(f"/admin/accounts/{customer.id}", data=data, follow_redirects=True)
        assert response.status_code == 200
        return response.get_data(as_text=True)

    assert "customer@example.com: done." in act(action="plan", plan="growth", days=14)
    assert _subscription(app, customer.id).plan == "growth"
    assert "not on a trial" in act(action="extend", plan="growth", days=5)
    assert "That action is not valid" in act(action="extend", plan="growth", days=0)
    act(action="lock", plan="growth", days=1)
    assert _subscription(app, customer.id).status == "locked"
    act(action="unlock", plan="growth", days=1)
    assert _subscription(app, customer.id).status == "active"
    with app.app_context():
        kinds = [
            (e.kind, e.detail)
            for e in db.session.scalars(select(AuditEvent).where(AuditEvent.user_id == customer.id))
        ]
    assert ("billing_plan_changed", "to Growth by owner@example.com") in kinds
    assert ("billing_locked", "by owner@example.com") in kinds
    assert runner.invoke(args=["admin", "revoke", "owner@example.com"]).exit_code == 0
    assert client.get("/admin/accounts").status_code == 404


def test_a_plan_without_the_api_refuses_keys(app: Flask, logged_in: User, make_site: Any) -> None:
    site_id = make_site(logged_in)
    with app.app_context():
        user = db.session.get(User, logged_in.id)
        assert user is not None
        _key, secret = apikeys.create_key(user, "test", apikeys.READ)
    response = app.test_client().get(
        f"/api/v1/sites/{site_id}/stats/aggregate", headers={"Authorization": f"Bearer {secret}"}
    )
    assert response.status_code == 403 and response.get_json()["error"]["code"] == "plan_limit"


def test_seats_limit_invitations(app: Flask, logged_in: User, make_site: Any) -> None:
    from flask_tracking.teams import rules

    site_id = make_site(logged_in)
    with app.test_request_context():
        site = db.session.get(Site, site_id)
        owner = db.session.get(User, logged_in.id)
        assert site is not None and owner is not None
        with pytest.raises(rules.TeamError, match="Free plan includes 1 seat"):
            rules.invite(site, owner, "a@example.com", "viewer")
        service.change_plan(owner, "growth", owner)
        rules.invite(site, owner, "a@example.com", "viewer")
        rules.invite(site, owner, "a@example.com", "editor")  # the same person again: fine
        with pytest.raises(rules.TeamError, match="Growth plan includes 2 seat"):
            rules.invite(site, owner, "b@example.com", "viewer")


def test_a_plan_s_retention_caps_every_site_s(app: Flask, site_in: Any) -> None:
    from tests.ops.test_retention import ages_kept, run, with_events

    site = with_events(app, site_in, retention=None)  # RETENTION_DAYS 0: kept forever...
    assert ages_kept(app) == [1, 5, 12, 20, 40]
    run(app)
    assert ages_kept(app) == [1, 5, 12, 20, 40]  # ...on the default plan (180 days)
    with app.app_context():
        owner = db.session.get(User, db.session.get(Site, site).owner_id)  # type: ignore[union-attr]
        assert owner is not None
        service.change_plan(owner, "business", owner)  # its retention: 30 days
    run(app)
    assert ages_kept(app) == [1, 5, 12, 20]


def test_an_abandoned_checkout_keeps_the_trial(
    app: Flask, client: FlaskClient, logged_in: User
) -> None:
    _checkout(client, "growth", "eur-month")  # never paid
    assert "Start a 14-day trial" in client.get("/billing").get_data(as_text=True)
    assert client.post("/billing/trial", data={"plan": "growth"}).status_code == 302
    assert _subscription(app, logged_in.id).status == "trialing"


def test_the_usage_of_a_deleted_account_does_not_stop_the_job(
    app: Flask, client: FlaskClient, make_user: Any, make_site: Any, billing_job: Any
) -> None:
    gone = make_user(email="gone@example.com")
    send_events(client, make_site(gone), 3)
    billing_job(app)
    with app.app_context():
        db.session.delete(db.session.get(User, gone.id))
        db.session.commit()
    assert billing_job(app).startswith("0 quota state(s) changed")


def test_doctor_says_how_billing_is_set_up(app: Flask, app_factory: Any) -> None:
    from flask_tracking.ops.doctor import _billing

    said = [(f.level, f.detail) for f in _billing(app)]
    assert said[0] == ("ok", "local: plans Free (v1), Growth (v1), Business (v1); default free")
    assert said[1][0] == "warn" and "charges nothing" in said[1][1]
    assert [f.detail for f in _billing(app_factory())] == ["off (BILLING_PROVIDER=none)"]
