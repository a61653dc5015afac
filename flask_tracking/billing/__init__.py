"""Plans, quotas and payments, for operators who run Flask-Tracking as a service for others.

Off by default (`BILLING_PROVIDER=none`): then no billing page exists and nothing here runs on
any request or in the collector. With `local` (development, demos, tests: checkout on the app
itself) or `stripe`, accounts get a plan from the plans file, the writer counts their billable
events, the `billing` job turns usage and subscriptions into each account's standing, and the
collector drops (or the reports hide) what a plan's quota does not cover.

    plans.py      the plans file: limits, prices, versions
    models.py     subscriptions, provider events handled, payments
    usage.py      events per account and month, from the event store
    service.py    the life cycle: trials, provider events, quotas, locks, purges
    providers.py  one interface; Stripe and the local provider
    views.py      the account's billing page, checkout, the webhook; the admin area
"""

from __future__ import annotations

from flask import Flask

from flask_tracking.billing.plans import Plans, load, money
from flask_tracking.config import read_plainly

PLAIN = ("BILLING_PROVIDER", "BILLING_PLANS_FILE", "STRIPE_SECRET_KEY", "STRIPE_WEBHOOK_SECRET")
PROVIDERS = ("none", "local", "stripe")


def init_app(app: Flask) -> None:
    """Read the billing settings; with a provider, load the plans (a bad file stops the app)."""
    read_plainly(app.config, PLAIN)
    app.jinja_env.globals["money"] = money
    provider = str(app.config.get("BILLING_PROVIDER") or "none").strip().lower()
    if provider not in PROVIDERS:
        raise RuntimeError(f"BILLING_PROVIDER={provider!r} is not one of: {', '.join(PROVIDERS)}")
    app.config["BILLING_PROVIDER"] = provider
    if provider == "none":
        app.extensions.pop("billing_plans", None)
        return
    if provider == "stripe" and not (
        app.config.get("STRIPE_SECRET_KEY") and app.config.get("STRIPE_WEBHOOK_SECRET")
    ):
        raise RuntimeError(
            "BILLING_PROVIDER=stripe needs STRIPE_SECRET_KEY and STRIPE_WEBHOOK_SECRET"
        )
    app.extensions["billing_plans"] = load(
        app.config.get("BILLING_PLANS_FILE") or None, require_stripe=provider == "stripe"
    )


def enabled(app: Flask) -> bool:
    return str(app.config.get("BILLING_PROVIDER", "none")) != "none"


def plans_of(app: Flask) -> Plans:
    plans: Plans = app.extensions["billing_plans"]
    return plans
