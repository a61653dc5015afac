"""The Stripe provider end to end: the official `stripe` library pointed at localstripe on
loopback (with a front for Checkout and the portal, tests/billing/stripe_front.py), and
webhooks signed with the library's own signing scheme — replays, bad signatures, reordered
events, an unknown event type."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import stripe
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select

from flask_tracking.billing import service
from flask_tracking.billing.models import BillingEvent, Payment
from flask_tracking.extensions import db
from flask_tracking.users.models import User
from tests.billing.conftest import PLANS
from tests.billing.stripe_front import Front, localstripe, stripe_front

SECRET = "whsec_test_" + "a" * 24


@pytest.fixture(scope="module")
def stripe_api() -> Iterator[tuple[str, Front, stripe.StripeClient, dict[str, str]]]:
    """localstripe and its front; the plans' prices made there (as an operator would)."""
    with localstripe() as upstream, stripe_front(upstream) as (base, front):
        client = stripe.StripeClient("sk_test_local", base_addresses={"api": base})
        product = client.v1.products.create(params={"name": "Flask-Tracking"})
        prices = {
            name: client.v1.plans.create(
                params={
                    "product": product.id,
                    "amount": amount,
                    "currency": "eur",
                    "interval": "month",
                }
            ).id
            for name, amount in (("growth", 900), ("business", 4900))
        }
        yield base, front, client, prices


@pytest.fixture
def app(app_factory: Any, tmp_path: Path, stripe_api: Any) -> Flask:
    base, _front, _client, prices = stripe_api
    path = tmp_path / "plans.toml"
    path.write_text(
        PLANS.replace("price_growth_eur", prices["growth"])
        .replace("price_growth_usd", "price_unused")
        .replace("price_biz", prices["business"])
    )
    return app_factory(  # type: ignore[no-any-return]
        BILLING_PROVIDER="stripe",
        BILLING_PLANS_FILE=str(path),
        STRIPE_SECRET_KEY="sk_test_local",
        STRIPE_WEBHOOK_SECRET=SECRET,
        STRIPE_API_BASE=base,
        INGEST_SITE_CACHE_SECONDS=0,
    )


def signed(payload: str, secret: str = SECRET, at: int | None = None) -> dict[str, str]:
    """The Stripe-Signature header Stripe sends, computed by the stripe library's scheme."""
    at = int(time.time()) if at is None else at
    signature = stripe.WebhookSignature._compute_signature(f"{at}.{payload}", secret)
    return {"Stripe-Signature": f"t={at},v1={signature}", "Content-Type": "application/json"}


def event(kind: str, obj: dict[str, Any], created: int, event_id: str | None = None) -> str:
    return json.dumps(
        {
            "id": event_id or f"evt_{kind.replace('.', '_')}_{created}",
            "object": "event",
            "type": kind,
            "created": created,
            "api_version": "2024-06-20",
            "data": {"object": obj},
        }
    )


def deliver(client: FlaskClient, payload: str, **options: Any) -> Any:
    return client.post("/billing/webhooks/stripe", data=payload, headers=signed(payload, **options))


def _events(app: Flask) -> int:
    with app.app_context():
        return int(db.session.scalar(select(func.count()).select_from(BillingEvent)) or 0)


def _held(app: Flask, user_id: int) -> tuple[str, str, str]:
    with app.app_context():
        found = service.subscription_of(user_id)
        assert found is not None
        return found.status, found.plan, found.price


def test_checkout_webhooks_invoices_and_the_portal(
    app: Flask, client: FlaskClient, logged_in: User, stripe_api: Any
) -> None:
    _base, front, api, prices = stripe_api
    response = client.post("/billing/checkout", data={"plan": "growth", "price": "eur-month"})
    assert response.status_code == 303
    assert response.headers["Location"].startswith("https://checkout.stripe.test/c/pay/cs_test_")
    session = front.checkouts[-1]
    assert session["mode"] == "subscription"
    assert session["client_reference_id"] == str(logged_in.id)
    assert session["params"]["line_items[0][price]"] == prices["growth"]
    customer = session["customer"]
    assert api.v1.customers.retrieve(customer).email == logged_in.email

    # What Stripe does once the customer pays: a subscription and its paid invoice.
    card = api.v1.payment_methods.create(
        params={
            "type": "card",
            "card": {"number": "4242424242424242", "exp_month": 12, "exp_year": 2031, "cvc": "123"},
        }
    )
    api.v1.payment_methods.attach(card.id, params={"customer": customer})
    api.v1.customers.update(
        customer, params={"invoice_settings": {"default_payment_method": card.id}}
    )
    subscription = api.v1.subscriptions.create(
        params={"customer": customer, "items": [{"plan": prices["growth"]}]}
    ).to_dict()
    invoice = api.v1.invoices.list(params={"customer": customer}).data[0].to_dict()
    now = int(time.time())
    completed = {**session, "status": "complete", "subscription": subscription["id"]}
    for payload in (
        event("checkout.session.completed", completed, now),
        event("customer.subscription.created", subscription, now + 1),
        event("invoice.paid", invoice, now + 2),
    ):
        answer = deliver(client, payload)
        assert answer.status_code == 200, answer.get_data(as_text=True)
    assert _held(app, logged_in.id) == ("active", "growth", "eur-month")
    with app.app_context():
        payment = db.session.scalar(select(Payment))
        assert payment is not None and (payment.amount, payment.currency) == (900, "EUR")
    page = client.get("/billing").get_data(as_text=True)
    invoices = page[page.find("<main") :]
    assert "€9.00" in invoices and "paid" in invoices, invoices  # listed from Stripe

    # A replay changes nothing; a bad signature is a 400 that changes nothing.
    count = _events(app)
    replay = deliver(client, event("customer.subscription.created", subscription, now + 1))
    assert replay.get_json()["outcome"] == "already handled" and _events(app) == count
    forged = event("customer.subscription.deleted", subscription, now + 3, "evt_forged")
    for headers in (
        signed(forged, secret="whsec_wrong"),
        signed(forged, at=now - 3600),  # outside the tolerance: a replayed capture
        {"Stripe-Signature": "t=1,v1=00", "Content-Type": "application/json"},
        {"Content-Type": "application/json"},
    ):
        refused = client.post("/billing/webhooks/stripe", data=forged, headers=headers)
        assert refused.status_code == 400
        assert refused.get_json()["error"]["code"] == "invalid_signature"
    assert _events(app) == count and _held(app, logged_in.id)[0] == "active"

    # Upgrade: a later update with Business's price puts the account on Business.
    upgraded = {**subscription, "items": {"data": [{"plan": {"id": prices["business"]}}]}}
    deliver(client, event("customer.subscription.updated", upgraded, now + 5))
    assert _held(app, logged_in.id) == ("active", "business", "eur-month")

    # Subscribed, "Subscribe" to another plan goes to the portal (no second subscription);
    # the deletion of a subscription that is not the account's current one changes nothing.
    checkouts = len(front.checkouts)
    again = client.post("/billing/checkout", data={"plan": "growth", "price": "eur-month"})
    assert again.status_code == 303 and "billing.stripe.test" in again.headers["Location"]
    assert len(front.checkouts) == checkouts
    other = {**upgraded, "id": "sub_older_one", "status": "canceled"}
    ignored = deliver(client, event("customer.subscription.deleted", other, now + 6))
    assert ignored.get_json()["outcome"] == "not the account's current subscription: ignored"
    assert _held(app, logged_in.id) == ("active", "business", "eur-month")

    # Reordered: the deletion arrives, then an older update: the deletion stands
    # (Business ends by locking). An update carrying the same second is ignored too.
    deliver(
        client, event("customer.subscription.deleted", {**upgraded, "status": "canceled"}, now + 9)
    )
    assert _held(app, logged_in.id)[0] == "locked"
    late = deliver(client, event("customer.subscription.updated", upgraded, now + 7, "evt_late"))
    assert late.get_json()["outcome"] == "older than the state held: ignored"
    same = deliver(client, event("customer.subscription.updated", upgraded, now + 9, "evt_same"))
    assert same.get_json()["outcome"] == "the subscription has ended: ignored"
    assert _held(app, logged_in.id)[0] == "locked"

    # An event type billing does not use, and a customer no account has: acknowledged.
    unknown = deliver(
        client, event("customer.created", {"id": customer, "customer": customer}, now)
    )
    assert unknown.status_code == 200
    assert unknown.get_json()["outcome"] == "not an event billing uses: ignored"
    stranger = deliver(client, event("invoice.paid", {**invoice, "customer": "cus_nobody"}, now))
    assert stranger.get_json()["outcome"] == "no account has this customer: ignored"

    # The portal: a session for this account's customer.
    portal = client.post("/billing/portal")
    assert portal.status_code == 303
    assert portal.headers["Location"].startswith("https://billing.stripe.test/p/session/")
    assert front.portals[-1]["customer"] == customer


def test_a_checkout_event_naming_another_account_links_nothing(
    app: Flask, client: FlaskClient, logged_in: User, make_user: Any, stripe_api: Any
) -> None:
    client.post("/billing/checkout", data={"plan": "growth", "price": "eur-month"})
    session = stripe_api[1].checkouts[-1]
    other = make_user(email="other@example.com")
    forged = {**session, "client_reference_id": str(other.id), "subscription": "sub_x"}
    answer = deliver(client, event("checkout.session.completed", forged, int(time.time())))
    assert answer.get_json()["outcome"] == "the checkout names another account: ignored"
    with app.app_context():
        held = service.subscription_of(logged_in.id)
        assert held is not None and held.subscription_id == ""
        assert service.subscription_of(other.id) is None


def test_the_webhook_is_only_there_with_stripe(app_factory: Any, plans_file: str) -> None:
    local = app_factory(BILLING_PROVIDER="local", BILLING_PLANS_FILE=plans_file)
    payload = event("invoice.paid", {"id": "in_1"}, int(time.time()))
    assert (
        local.test_client()
        .post("/billing/webhooks/stripe", data=payload, headers=signed(payload))
        .status_code
        == 404
    )


def test_stripe_settings_are_required(app_factory: Any, plans_file: str) -> None:
    with pytest.raises(RuntimeError, match="STRIPE_SECRET_KEY and STRIPE_WEBHOOK_SECRET"):
        app_factory(BILLING_PROVIDER="stripe", BILLING_PLANS_FILE=plans_file)
    with pytest.raises(RuntimeError, match="is not one of"):
        app_factory(BILLING_PROVIDER="paypal")
