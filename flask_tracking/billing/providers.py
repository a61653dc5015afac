"""One interface to whoever takes the money; two implementations.

    checkout(user, plan, price, return_url)  -> the URL to send the account to
    portal(user, return_url)                 -> the URL where it changes its card or cancels
    parse(body, headers)                     -> a ProviderEvent (a webhook); InvalidWebhook else
    invoices(user)                           -> the account's invoices, newest first

`StripeProvider` uses the official `stripe` library: Checkout Sessions, the customer portal,
webhooks verified with the endpoint's signing secret. `LocalProvider` needs no network: its
checkout and portal are pages of this app (billing/views.py) that "pay" and "cancel" by
emitting the same ProviderEvents — for development, demos and tests.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from flask import Flask, current_app, url_for
from itsdangerous import BadSignature, URLSafeTimedSerializer
from sqlalchemy import select

from flask_tracking.billing import plans_of, service
from flask_tracking.billing.models import Payment
from flask_tracking.billing.plans import Plan, Price
from flask_tracking.database import write_transaction
from flask_tracking.extensions import db
from flask_tracking.users import audit
from flask_tracking.users.models import User


class InvalidWebhook(Exception):
    """A webhook whose signature (or body) does not check out: answered 400, nothing done."""


class ProviderError(Exception):
    """The provider could not be reached or refused the call (shown as a retryable error)."""


@dataclass(frozen=True)
class Invoice:
    number: str
    created: datetime
    amount: int
    currency: str
    status: str
    url: str


class Provider(Protocol):
    name: str

    def checkout(self, user: User, plan: Plan, price: Price, return_url: str) -> str: ...

    def portal(self, user: User, return_url: str) -> str: ...

    def parse(self, body: bytes, headers: dict[str, str]) -> service.ProviderEvent: ...

    def invoices(self, user: User) -> list[Invoice]: ...


def provider_of(app: Flask) -> Provider:
    name = app.config["BILLING_PROVIDER"]
    if name == "stripe":
        return StripeProvider(app)
    if name == "local":
        return LocalProvider(app)
    raise LookupError("billing is off")


def _customer(user: User, provider: str, make: Any) -> str:
    """The account's customer id at the provider, made (and stored) at its first checkout."""
    with write_transaction():
        subscription = service.ensure_subscription(user.id)
        if subscription.provider != provider or not subscription.customer_id:
            subscription.customer_id = make()
            subscription.provider = provider
        audit.record(user.id, "billing_checkout", "")
        return subscription.customer_id


def _stored_invoices(user: User, provider: str) -> list[Invoice]:
    payments = db.session.scalars(
        select(Payment)
        .where(Payment.user_id == user.id, Payment.provider == provider)
        .order_by(Payment.created_at.desc(), Payment.id.desc())
    )
    return [
        Invoice(p.number, p.created_at, p.amount, p.currency, p.status, p.url) for p in payments
    ]


# -- local ---------------------------------------------------------------------------------


class LocalProvider:
    """Checkout on the app itself: a page that pays at once (no card, no network)."""

    name = "local"

    def __init__(self, app: Flask) -> None:
        self.signer = URLSafeTimedSerializer(app.config["SECRET_KEY"], salt="billing-local")

    def checkout(self, user: User, plan: Plan, price: Price, return_url: str) -> str:
        _customer(user, self.name, lambda: f"local_cus_{user.id}")
        token = self.signer.dumps({"user": user.id, "plan": plan.key, "price": price.key})
        return url_for("billing.local_checkout", token=token)

    def order(self, token: str, user: User) -> tuple[Plan, Price]:
        """The plan and price a checkout link is for; LookupError if not this account's."""
        try:
            data = self.signer.loads(token, max_age=3600)
        except BadSignature:
            raise LookupError(
                "This checkout link is not valid (or more than an hour old)."
            ) from None
        plan = plans_of(current_app).get(str(data.get("plan")))
        price = plan.price(str(data.get("price"))) if plan else None
        if data.get("user") != user.id or plan is None or price is None:
            raise LookupError("This checkout link is not valid.")
        return plan, price

    def pay(self, user: User, plan: Plan, price: Price, now: datetime | None = None) -> None:
        """What Stripe would send after a successful checkout, in order."""
        now = now or datetime.now(UTC)
        subscription = service.subscription_of(user.id)
        assert subscription is not None and subscription.provider == self.name
        customer = subscription.customer_id
        sub_id = subscription.subscription_id or f"local_sub_{secrets.token_hex(8)}"
        days = 365 if price.interval == "year" else 30
        number = f"LOCAL-{user.id}-{secrets.token_hex(4).upper()}"
        for kind, extra in (
            (service.CHECKOUT, {"account": user.id}),
            (
                service.UPDATED,
                {
                    "status": "active",
                    "plan": plan.key,
                    "price": price.key,
                    "period_end": now + timedelta(days=days),
                },
            ),
            (
                service.PAID,
                {
                    "invoice": f"local_in_{secrets.token_hex(8)}",
                    "number": number,
                    "amount": price.amount,
                    "currency": price.currency,
                },
            ),
        ):
            service.apply(
                service.ProviderEvent(
                    self.name,
                    f"local_evt_{secrets.token_hex(8)}",
                    kind,
                    now,
                    customer,
                    subscription=sub_id,
                    **extra,
                )
            )

    def cancel(self, user: User, now: datetime | None = None) -> str:
        subscription = service.subscription_of(user.id)
        if subscription is None or subscription.provider != self.name:
            return "no subscription"
        if not subscription.subscription_id:
            return "no subscription to cancel"
        return service.apply(
            service.ProviderEvent(
                self.name,
                f"local_evt_{secrets.token_hex(8)}",
                service.DELETED,
                now or datetime.now(UTC),
                subscription.customer_id,
                subscription=subscription.subscription_id,
                status="canceled",
            )
        )

    def portal(self, user: User, return_url: str) -> str:
        return url_for("billing.local_portal")

    def parse(self, body: bytes, headers: dict[str, str]) -> service.ProviderEvent:
        raise InvalidWebhook("the local provider sends no webhooks")

    def invoices(self, user: User) -> list[Invoice]:
        return _stored_invoices(user, self.name)


# -- Stripe ----------------------------------------------------------------------------------

KINDS = {
    "checkout.session.completed": service.CHECKOUT,
    "customer.subscription.created": service.UPDATED,
    "customer.subscription.updated": service.UPDATED,
    "customer.subscription.deleted": service.DELETED,
    "invoice.paid": service.PAID,
    "invoice.payment_succeeded": service.PAID,
    "invoice.payment_failed": service.FAILED,
}


def _moment(seconds: Any) -> datetime | None:
    return datetime.fromtimestamp(int(seconds), UTC) if seconds else None


class StripeProvider:
    """Stripe, through the official library (a client per app: no global state)."""

    name = "stripe"

    def __init__(self, app: Flask) -> None:
        import stripe  # here, not at the top: only an app that bills through Stripe loads it

        base = app.config.get("STRIPE_API_BASE") or None
        self.client = stripe.StripeClient(
            str(app.config["STRIPE_SECRET_KEY"]),
            base_addresses={"api": base} if base else {},
            max_network_retries=2,
        )
        self.secret = str(app.config["STRIPE_WEBHOOK_SECRET"])
        self.plans = plans_of(app)

    def _call(self, call: Any) -> Any:
        import stripe

        try:
            return call()
        except stripe.StripeError as error:
            raise ProviderError(error.user_message or str(error)) from error

    def checkout(self, user: User, plan: Plan, price: Price, return_url: str) -> str:
        customer = _customer(
            user,
            self.name,
            lambda: (
                self._call(
                    lambda: self.client.v1.customers.create(
                        params={"email": user.email, "metadata": {"account": str(user.id)}}
                    )
                ).id
            ),
        )
        session = self._call(
            lambda: self.client.v1.checkout.sessions.create(
                params={
                    "mode": "subscription",
                    "customer": customer,
                    "client_reference_id": str(user.id),
                    "line_items": [{"price": price.stripe_price, "quantity": 1}],
                    "success_url": return_url + "?checkout=done",
                    "cancel_url": return_url + "?checkout=cancelled",
                    "subscription_data": {"metadata": {"account": str(user.id)}},
                }
            )
        )
        return str(session.url)

    def portal(self, user: User, return_url: str) -> str:
        subscription = service.subscription_of(user.id)
        if subscription is None or subscription.provider != self.name:
            raise ProviderError("This account has no Stripe customer yet: subscribe first.")
        session = self._call(
            lambda: self.client.v1.billing_portal.sessions.create(
                params={"customer": subscription.customer_id, "return_url": return_url}
            )
        )
        return str(session.url)

    def parse(self, body: bytes, headers: dict[str, str]) -> service.ProviderEvent:
        import stripe

        signature = headers.get("Stripe-Signature", "")
        try:
            event = stripe.Webhook.construct_event(body, signature, self.secret)
        except (ValueError, stripe.SignatureVerificationError) as error:
            raise InvalidWebhook(str(error) or "bad signature") from None
        data = event.data.object.to_dict()
        kind = KINDS.get(event.type, event.type)
        created = _moment(event.created) or datetime.now(UTC)
        customer = str(data.get("customer") or "")
        if kind == service.CHECKOUT:
            reference = str(data.get("client_reference_id") or "")
            extra: dict[str, Any] = {
                "account": int(reference) if reference.isdigit() else None,
                "subscription": str(data.get("subscription") or ""),
            }
        elif kind in (service.UPDATED, service.DELETED):
            extra = self._subscription(data)
        elif kind in (service.PAID, service.FAILED):
            extra = {
                "subscription": str(data.get("subscription") or ""),
                "invoice": str(data.get("id") or ""),
                "number": str(data.get("number") or ""),
                "amount": int(data.get("amount_paid") or data.get("amount_due") or 0),
                "currency": str(data.get("currency") or ""),
                "url": str(data.get("hosted_invoice_url") or ""),
            }
        else:
            extra = {}
        return service.ProviderEvent(self.name, str(event.id), kind, created, customer, **extra)

    def _subscription(self, data: dict[str, Any]) -> dict[str, Any]:
        items = (data.get("items") or {}).get("data") or [{}]
        item = items[0]
        price_id = str((item.get("price") or item.get("plan") or {}).get("id") or "")
        found = self.plans.by_stripe_price(price_id)
        period_end = data.get("current_period_end") or item.get("current_period_end")
        return {
            "subscription": str(data.get("id") or ""),
            "status": str(data.get("status") or ""),
            "plan": found[0].key if found else "",
            "price": found[1].key if found else "",
            "period_end": _moment(period_end),
        }

    def invoices(self, user: User) -> list[Invoice]:
        subscription = service.subscription_of(user.id)
        if subscription is None or subscription.provider != self.name:
            return []
        found = self._call(
            lambda: self.client.v1.invoices.list(
                params={"customer": subscription.customer_id, "limit": 24}
            )
        )
        return [
            Invoice(
                str(i.get("number") or i.get("id") or ""),
                _moment(i.get("created")) or datetime.now(UTC),
                int(i.get("amount_paid") or i.get("amount_due") or 0),
                str(i.get("currency") or "").upper(),
                str(i.get("status") or ""),
                str(i.get("hosted_invoice_url") or ""),
            )
            for i in (invoice.to_dict() | {"id": invoice.id} for invoice in found.data)
        ]
