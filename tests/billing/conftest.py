"""Billing's tests: an app with BILLING_PROVIDER set and a small plans file, and helpers to
send events, run the billing job and read the account's standing."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from werkzeug.test import TestResponse

from flask_tracking.ops.jobs import run_billing

PLANS = """
default = "free"

[plans.free]
name = "Free"
events_per_month = 10
sites = 1
api_access = false
grace_percent = 20

[plans.growth]
name = "Growth"
events_per_month = 20
sites = 3
seats = 2
trial_days = 14
grace_percent = 0
on_end = "downgrade:free"
prices = [
  { currency = "EUR", interval = "month", amount = 900, stripe_price = "price_growth_eur" },
  { currency = "USD", interval = "year", amount = 9900, stripe_price = "price_growth_usd" },
]

[plans.business]
name = "Business"
events_per_month = 30
sites = 10
over_quota = "hide"
on_end = "lock"
retention_days = 30
prices = [{ currency = "EUR", interval = "month", amount = 4900, stripe_price = "price_biz" }]
"""
CHROME = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/131.0.0.0 Safari/537.36"
)


@pytest.fixture
def plans_file(tmp_path: Path) -> str:
    path = tmp_path / "plans.toml"
    path.write_text(PLANS)
    return str(path)


@pytest.fixture
def app(app_factory: Any, plans_file: str) -> Flask:
    """Billing with the local provider; the collector reloads sites at once (the cache's
    lifetime is the enforcement lag in production: docs/billing.md)."""
    return app_factory(  # type: ignore[no-any-return]
        BILLING_PROVIDER="local", BILLING_PLANS_FILE=plans_file, INGEST_SITE_CACHE_SECONDS=0
    )


def send_events(
    client: FlaskClient, site_id: int, count: int, path: str = "/"
) -> list[TestResponse]:
    return [
        client.post(
            "/api/event",
            data=json.dumps({"site": site_id, "url": f"https://example.com{path}?n={n}"}),
            content_type="application/json",
            headers={"User-Agent": CHROME},
            environ_base={"REMOTE_ADDR": f"8.8.{n % 200}.{n % 250 + 1}"},
        )
        for n in range(count)
    ]


@pytest.fixture
def billing_job() -> Callable[[Flask], str]:
    """Store what was spooled, then run the writer's billing job once."""

    def run(app: Flask) -> str:
        from flask_tracking import ingest

        ingest.drain(app)
        with app.app_context():
            writer = app.extensions["ingest"].writer
            return run_billing(writer, True).summary

    return run
